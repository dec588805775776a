"""The official Azure SDK signs in to the emulator with Microsoft Entra ID (issue 19), over https.

``RemoteRenderingClient`` takes any ``TokenCredential``: here azure-identity's ``ClientSecretCredential``
against the emulator's Entra endpoints. If Microsoft's own clients get a token there, exchange it at
the STS and are held to the roles (a Client may not convert), the emulator's Entra side is a fair
stand-in for the service's. The SDK asks Entra for ``{authentication_endpoint_url}/.default``, which
the emulator's STS accepts as the regional form of its resource.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("azure.mixedreality.remoterendering")
pytest.importorskip("azure.identity")

from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.mixedreality.remoterendering import (
    AssetConversionInputSettings,
    AssetConversionOutputSettings,
    RemoteRenderingClient,
    RenderingSessionSize,
    RenderingSessionStatus,
)

from airflow_provider_arr.emulator import ArrEmulator
from airflow_provider_arr.emulator.tls import make_self_signed_cert

SECRET = "sdk-principal-secret-Wq3"


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> None:
    """Override the suite-wide fixture: these tests never use the hook (and need not import Airflow)."""


@pytest.fixture(scope="module")
def tls_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArrEmulator]:
    certfile, keyfile = make_self_signed_cert(tmp_path_factory.mktemp("tls"))
    with ArrEmulator(start_delay=0.2, certfile=certfile, keyfile=keyfile) as emulator:
        yield emulator


def sdk_client(emulator: ArrEmulator, role: str, monkeypatch: pytest.MonkeyPatch) -> RemoteRenderingClient:
    emulator.state.reset()
    principal = emulator.state.add_principal(secret=SECRET, role=role)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emulator.certfile))  # the SDK's own STS client
    credential = ClientSecretCredential(
        principal.tenant_id,
        principal.client_id,
        SECRET,
        authority=emulator.url,
        disable_instance_discovery=True,
        connection_verify=emulator.certfile,
    )
    return RemoteRenderingClient(
        endpoint=emulator.url,
        account_id=emulator.account_id,
        account_domain="westus2.mixedreality.azure.com",
        credential=credential,
        authentication_endpoint_url=emulator.url,
        polling_interval=0.05,
        connection_verify=emulator.certfile,
    )


def test_a_service_principal_runs_a_session_life_cycle(tls_emulator, monkeypatch) -> None:
    with sdk_client(tls_emulator, "Client", monkeypatch) as client:
        poller = client.begin_rendering_session(
            session_id="sdk-entra-1", size=RenderingSessionSize.STANDARD, lease_time_minutes=15
        )
        assert poller.result(timeout=10).status == RenderingSessionStatus.READY
        client.stop_rendering_session("sdk-entra-1")
    assert [record.status for record in tls_emulator.state.sessions()] == ["Stopped"]
    assert {kind for kind, _ in tls_emulator.state.sts_sign_ins()} == {"entra"}


@pytest.mark.parametrize(("role", "allowed"), [("Administrator", True), ("Client", False)])
def test_conversions_need_the_administrator_role(tls_emulator, monkeypatch, role, allowed) -> None:
    def start(client: RemoteRenderingClient) -> Any:
        return client.begin_asset_conversion(
            conversion_id=f"sdk-entra-{role}",
            input_settings=AssetConversionInputSettings(
                storage_container_uri="https://contosoin.blob.core.windows.net/models",
                relative_input_asset_path="house.fbx",
            ),
            output_settings=AssetConversionOutputSettings(
                storage_container_uri="https://contosoout.blob.core.windows.net/assets"
            ),
        )

    with sdk_client(tls_emulator, role, monkeypatch) as client:
        if allowed:
            start(client)
        else:
            with pytest.raises(HttpResponseError) as refused:
                start(client)
            assert refused.value.status_code == 403
            assert "Remote Rendering Administrator" in str(refused.value)
    assert len(tls_emulator.state.conversions()) == (1 if allowed else 0)
