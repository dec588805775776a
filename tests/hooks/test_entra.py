"""Signing in with Microsoft Entra ID (issue 19), against the emulator over https on a loopback socket.

azure-identity talks to the emulator's Entra endpoints (OpenID discovery, client credentials, the App
Service managed-identity endpoint), the hook exchanges the Entra token at the emulator's STS, and the
ARR calls are those of an account-key connection. Both dialects; the emulator tells how the STS was
signed in to, so "the STS never sees <id>:<key>" is asserted from the server's side. Errors, Test
connection, masking and import cost: ``test_entra_errors.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

pytest.importorskip("azure.identity")

from airflow_provider_arr.emulator import ArrEmulator
from airflow_provider_arr.emulator.entra import DEFAULT_TENANT_ID
from airflow_provider_arr.exceptions import RemoteRenderingError
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.sensors.remote_rendering import RemoteRenderingSessionReadySensor
from tests.airflow_compat import TaskDeferred
from tests.helpers import client_assertion, make_rsa_certificate
from tests.hooks.entra_support import (
    CONN_ID,
    DIALECTS,
    SECRET,
    call,
    logged,
    principal_connection,
    secrets_of,
    session_round_trip,
    sts_kinds,
    use,
)

IN = "https://contosoin.blob.core.windows.net/models"
OUT = "https://contosoout.blob.core.windows.net/assets"


# ------------------------------------------------------------------ the sign-in, chosen once

ACCOUNT = "12345678-1234-1234-1234-123456789abc"
PRINCIPAL = {"tenantId": "t1", "client_id": "c1"}

SIGN_INS = [
    pytest.param("key", {}, "account_key", id="key"),
    pytest.param("key", {**PRINCIPAL, "client_secret": SECRET}, "account_key", id="key-wins-over-entra"),
    pytest.param(None, {**PRINCIPAL, "client_secret": SECRET}, "client_secret", id="client-secret"),
    pytest.param(None, {**PRINCIPAL, "certificate_path": "/p.pem"}, "certificate", id="certificate"),
    pytest.param(None, {"managed_identity_client_id": "m1"}, "default_credential", id="mi-alone"),
    pytest.param(None, {"tenantId": "t1"}, "default_credential", id="tenant-alone"),
    pytest.param(None, {"workload_identity_tenant_id": "t1"}, "default_credential", id="workload"),
    pytest.param("", {"authority_host": "login.microsoftonline.us"}, "default_credential", id="form-blank"),
]


@pytest.mark.parametrize(("password", "extra", "sign_in"), SIGN_INS)
def test_the_fields_set_choose_the_sign_in(password, extra, sign_in):
    from airflow_provider_arr.hooks.settings import ConnectionSettings

    settings = ConnectionSettings.from_connection("c", "https://arr.example.com", ACCOUNT, password, extra)
    assert settings.sign_in == sign_in
    assert settings.uses_entra == (sign_in != "account_key")
    assert SECRET not in repr(settings)
    if "authority_host" in extra:
        assert settings.authority_host == "https://login.microsoftonline.us"
    assert settings.entra_scope == "https://sts.mixedreality.azure.com//.default"


# ------------------------------------------------------------------ a service principal, end to end


@pytest.mark.parametrize("api_version", DIALECTS)
@pytest.mark.parametrize("credential", ["client_secret", "certificate"])
def test_a_service_principal_creates_waits_and_stops_a_session(
    entra_emu, monkeypatch, tmp_path, caplog, capsys, api_version, credential
):
    caplog.set_level(logging.DEBUG)
    if credential == "client_secret":
        principal_connection(entra_emu, monkeypatch, "Administrator", api_version)
    else:
        certificate, path, _ = make_rsa_certificate(tmp_path)
        principal = entra_emu.state.add_principal(certificate=certificate)
        use(
            monkeypatch, entra_emu.entra_connection(principal, api_version=api_version, certificate_path=path)
        )
    with RemoteRenderingHook(CONN_ID) as hook:
        session_id = hook.create_session("0:30:00")
        ready = hook.wait_until_ready(session_id, poll_interval=0.05, end_time=time.time() + 10)
        hook.stop_session(session_id)

    assert ready.status == "Ready"
    assert [record.status for record in entra_emu.state.sessions()] == ["Stopped"]
    assert sts_kinds(entra_emu) == {"entra"}  # the STS never saw <id>:<key>
    assert entra_emu.state.request_counts["token"] == 1  # one STS token served every call
    logs = logged(caplog, capsys)
    assert "RemoteRenderingHook" in logs  # the scan means something: the hook logged
    for secret in secrets_of(entra_emu):
        assert secret not in logs


@pytest.mark.parametrize("api_version", DIALECTS)
def test_a_client_principal_waits_by_poking_and_deferred_then_stops(entra_emu, monkeypatch, api_version):
    principal_connection(entra_emu, monkeypatch, "Client", api_version)

    def sensor(session_id: str, **kwargs: Any) -> RemoteRenderingSessionReadySensor:
        return RemoteRenderingSessionReadySensor(
            task_id="wait", session_id=session_id, arr_conn_id=CONN_ID, poke_interval=0.05, **kwargs
        )

    with RemoteRenderingHook(CONN_ID) as hook:
        first = hook.create_session("0:30:00")
        poked = sensor(first).execute({})
        entra_emu.state.slow_next_start(2.0)  # still Starting when the deferrable sensor first looks
        second = hook.create_session("0:30:00")
    with pytest.raises(TaskDeferred) as deferred:
        sensor(second, deferrable=True).execute({})

    async def run_trigger() -> list[Any]:
        return [event.payload async for event in deferred.value.trigger.run()]

    (event,) = asyncio.run(run_trigger())  # the triggerer's side: azure.identity.aio, closed after
    resumed = sensor(second, deferrable=True).execute_complete({}, event)
    with RemoteRenderingHook(CONN_ID) as hook:
        hook.stop_session(first)
        hook.stop_session(second)

    assert poked["session_id"] == first
    assert resumed["session_id"] == second
    assert {record.status for record in entra_emu.state.sessions()} == {"Stopped"}
    assert sts_kinds(entra_emu) == {"entra"}


@pytest.mark.parametrize("api_version", DIALECTS)
async def test_the_async_path_signs_in_on_its_own_loop(entra_emu, monkeypatch, api_version):
    principal_connection(entra_emu, monkeypatch, "Client", api_version)
    async with RemoteRenderingHook(CONN_ID) as hook:
        session_id = await hook.acreate_session("0:30:00")
        await hook.astop_session(session_id)
    assert sts_kinds(entra_emu) == {"entra"}
    assert len(entra_emu.state.issued_entra_tokens()) == 1


def test_each_async_credential_is_made_on_the_loop_that_uses_it_and_closed(entra_emu, monkeypatch):
    from azure.identity import aio

    made: list[tuple[Any, asyncio.AbstractEventLoop]] = []
    closed: list[Any] = []

    class Spy(aio.ClientSecretCredential):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            made.append((self, asyncio.get_running_loop()))  # raises if no loop is running
            super().__init__(*args, **kwargs)

        async def close(self) -> None:
            closed.append(self)
            await super().close()

    monkeypatch.setattr(aio, "ClientSecretCredential", Spy)
    principal_connection(entra_emu, monkeypatch, "Administrator")
    loops = []

    async def fetch_twice() -> None:
        from airflow_provider_arr.hooks.tokens import clear_token_cache

        loops.append(asyncio.get_running_loop())
        async with RemoteRenderingHook(CONN_ID) as hook:
            for _ in range(2):
                clear_token_cache()  # each fetch goes to the STS
                await hook.aget_token()

    asyncio.run(fetch_twice())
    asyncio.run(fetch_twice())  # another event loop, as a triggerer restart or a second test would have
    assert [loop for _, loop in made] == [loops[0], loops[0], loops[1], loops[1]]
    assert closed == [credential for credential, _ in made]  # each closed, in order, before the next


@pytest.mark.parametrize("api_version", DIALECTS)
def test_an_administrator_converts_an_asset(entra_emu, monkeypatch, api_version):
    principal_connection(entra_emu, monkeypatch, "Administrator", api_version)
    with RemoteRenderingHook(CONN_ID) as hook:
        conversion_id = hook.create_conversion(IN, "house.fbx", OUT)
        done = hook.wait_for_conversion(conversion_id, poll_interval=0.05, end_time=time.time() + 10)
    assert done.status == "Succeeded"
    assert sts_kinds(entra_emu) == {"entra"}


# ------------------------------------------------------------------ managed and workload identity


@pytest.mark.parametrize("api_version", DIALECTS)
@pytest.mark.parametrize("assigned", ["system", "user"])
@pytest.mark.parametrize("async_path", [False, True], ids=["sync", "async"])
def test_a_managed_identity_signs_in_through_the_app_service_endpoint(
    entra_emu, monkeypatch, api_version, assigned, async_path
):
    if assigned == "user":
        identity = entra_emu.state.add_managed_identity("7d1e0f2a-3b4c-4d5e-8f60-718293a4b5c6")
        extra = {"managed_identity_client_id": identity.client_id}  # alone: no tenant needed
    else:
        entra_emu.state.add_managed_identity("0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d", role="Client")
        entra_emu.state.add_managed_identity()
        extra = {"tenantId": DEFAULT_TENANT_ID}
    if api_version != "v1":
        extra["api_version"] = api_version
    connection = entra_emu.connection(**extra)
    del connection["password"]
    use(monkeypatch, connection)
    # azure-identity finds App Service's endpoint in these variables; it speaks plain http to it.
    with ArrEmulator(state=entra_emu.state) as plain:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{plain.url}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", entra_emu.state.identity_header)
        session_round_trip(async_path)
    assert [record.status for record in entra_emu.state.sessions()] == ["Stopped"]
    assert sts_kinds(entra_emu) == {"entra"}
    assert entra_emu.state.request_counts["managed_identity"] == 1


@pytest.mark.parametrize("async_path", [False, True], ids=["sync", "async"])
def test_a_managed_identity_that_fails_says_what_each_credential_said(entra_emu, monkeypatch, async_path):
    identity = entra_emu.state.add_managed_identity("7d1e0f2a-3b4c-4d5e-8f60-718293a4b5c6")
    connection = entra_emu.connection(managed_identity_client_id=identity.client_id)
    del connection["password"]
    use(monkeypatch, connection)
    with ArrEmulator(state=entra_emu.state) as plain:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{plain.url}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", "not-the-header")
        with pytest.raises(RemoteRenderingError) as refused:
            call(RemoteRenderingHook(CONN_ID), "get_token", async_path)
    text = str(refused.value)
    assert "DefaultAzureCredential got no token" in text
    assert "ManagedIdentityCredential" in text, text  # what the managed identity endpoint said
    assert "'managed_identity_client_id'" in text
    assert entra_emu.state.request_counts["token"] == 0


@pytest.mark.parametrize("async_path", [False, True], ids=["sync", "async"])
def test_an_aks_workload_identity_signs_in_with_its_federated_token(
    entra_emu, monkeypatch, tmp_path, async_path
):
    certificate, _, key = make_rsa_certificate(tmp_path)
    principal = entra_emu.state.add_principal(certificate=certificate, role="Client")
    token_url = f"{entra_emu.url}/{principal.tenant_id}/oauth2/v2.0/token"
    federated = tmp_path / "azure-identity-token"
    federated.write_text(client_assertion(key, principal.client_id, token_url))
    # What AKS injects into a pod whose service account has a workload identity.
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(federated))
    monkeypatch.setenv("AZURE_CLIENT_ID", principal.client_id)
    monkeypatch.setenv("AZURE_TENANT_ID", principal.tenant_id)
    # DefaultAzureCredential hands its authority (extra authority_host) to the environment credential
    # only; workload identity reads AZURE_AUTHORITY_HOST, which AKS sets.
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", entra_emu.url)
    connection = entra_emu.connection(workload_identity_tenant_id=principal.tenant_id)
    del connection["password"]
    use(monkeypatch, connection)
    session_round_trip(async_path)
    assert entra_emu.state.sts_sign_ins() == [("entra", principal.client_id)]
