"""The official Azure Python SDK runs sessions and asset conversions against the emulator, over https.

If Microsoft's own client (``azure-mixedreality-remoterendering``) is happy with the emulator's STS and
2021-01-01 answers, the emulator is a fair stand-in for the service. The SDK sends bearer tokens only
over https, hence the self-signed certificate.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("azure.mixedreality.remoterendering")

from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mixedreality.remoterendering import (
    AssetConversionInputSettings,
    AssetConversionOutputSettings,
    AssetConversionStatus,
    RemoteRenderingClient,
    RenderingSessionSize,
    RenderingSessionStatus,
)

from airflow_provider_arr.emulator import ArrEmulator
from airflow_provider_arr.emulator.tls import make_self_signed_cert


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> None:
    """Override the suite-wide fixture: these tests never use the hook (and need not import Airflow)."""


@pytest.fixture(scope="module")
def tls_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArrEmulator]:
    certfile, keyfile = make_self_signed_cert(tmp_path_factory.mktemp("tls"))
    with ArrEmulator(start_delay=0.2, certfile=certfile, keyfile=keyfile) as emulator:
        yield emulator


@pytest.fixture
def client(tls_emulator: ArrEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[RemoteRenderingClient]:
    tls_emulator.state.reset()
    # The SDK builds its STS client without our transport options, so connection_verify does not
    # reach the token call; requests (azure-core's transport) also trusts REQUESTS_CA_BUNDLE.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_emulator.certfile)
    client = RemoteRenderingClient(
        endpoint=tls_emulator.url,
        account_id=tls_emulator.account_id,
        account_domain="westus2.mixedreality.azure.com",
        credential=AzureKeyCredential(tls_emulator.account_key),
        authentication_endpoint_url=tls_emulator.url,
        polling_interval=0.05,
        connection_verify=tls_emulator.certfile,
    )
    with client:
        yield client


def test_whole_session_life_cycle(client: RemoteRenderingClient, tls_emulator: ArrEmulator) -> None:
    poller = client.begin_rendering_session(
        session_id="sdk-session_1", size=RenderingSessionSize.STANDARD, lease_time_minutes=15
    )
    ready = poller.result(timeout=10)
    assert ready.status == RenderingSessionStatus.READY
    assert ready.id == "sdk-session_1"
    assert ready.size == RenderingSessionSize.STANDARD
    assert ready.lease_time_minutes == 15
    assert ready.hostname.startswith("arrwu2standard")
    assert 49152 <= ready.handshake_port <= 65534
    assert 49152 <= ready.arr_inspector_port <= 65534
    assert ready.teraflops == pytest.approx(8.1)
    assert ready.created_on is not None
    assert ready.error is None

    fetched = client.get_rendering_session("sdk-session_1")
    assert (fetched.status, fetched.hostname) == (RenderingSessionStatus.READY, ready.hostname)

    updated = client.update_rendering_session(session_id="sdk-session_1", lease_time_minutes=20)
    assert updated.lease_time_minutes == 20

    listed = list(client.list_rendering_sessions())
    assert [(s.id, s.status, s.lease_time_minutes) for s in listed] == [
        ("sdk-session_1", RenderingSessionStatus.READY, 20)
    ]

    client.stop_rendering_session("sdk-session_1")
    stopped = client.get_rendering_session("sdk-session_1")
    assert stopped.status == RenderingSessionStatus.STOPPED
    assert stopped.hostname is None
    assert list(client.list_rendering_sessions()) == []

    counts = tls_emulator.state.request_counts
    assert counts["token"] >= 1
    assert counts["create"] == 1
    assert counts["update"] == 1
    assert counts["stop"] == 1
    assert [(r.session_id, r.status) for r in tls_emulator.state.sessions()] == [("sdk-session_1", "Stopped")]


def test_list_follows_next_links(client: RemoteRenderingClient, tls_emulator: ArrEmulator) -> None:
    tls_emulator.state.page_size = 2
    try:
        for index in range(5):
            client.begin_rendering_session(
                session_id=f"paged-{index}", size=RenderingSessionSize.PREMIUM, lease_time_minutes=5
            )
        listed = list(client.list_rendering_sessions())
    finally:
        tls_emulator.state.page_size = 50
    assert [session.id for session in listed] == [f"paged-{index}" for index in range(5)]
    assert tls_emulator.state.request_counts["list"] == 3


def test_negative_lease_is_the_recorded_error(
    client: RemoteRenderingClient, tls_emulator: ArrEmulator
) -> None:
    with pytest.raises(HttpResponseError) as raised:
        client.begin_rendering_session(
            session_id="rr-test-id", size=RenderingSessionSize.STANDARD, lease_time_minutes=-4
        )
    assert raised.value.status_code == 400
    assert raised.value.error.code == "BadRequest"
    assert raised.value.error.message == "The maxLeaseTimeMinutes value cannot be negative."
    assert tls_emulator.state.sessions() == []


def test_unknown_session_is_not_found(client: RemoteRenderingClient) -> None:
    with pytest.raises(ResourceNotFoundError):
        client.get_rendering_session("no-such-session")


def test_a_failed_start_ends_the_poller_with_the_session_error(
    client: RemoteRenderingClient, tls_emulator: ArrEmulator
) -> None:
    tls_emulator.state.fail_next_start("No Standard server is free in westus2.")
    poller = client.begin_rendering_session(
        session_id="doomed", size=RenderingSessionSize.STANDARD, lease_time_minutes=5
    )
    with pytest.raises(HttpResponseError) as raised:
        poller.result(timeout=10)
    assert raised.value.error.message == "No Standard server is free in westus2."
    assert client.get_rendering_session("doomed").status == RenderingSessionStatus.ERROR


def test_an_expired_session_is_returned_not_raised(
    client: RemoteRenderingClient, tls_emulator: ArrEmulator
) -> None:
    # A zero lease counts from Ready: the session expires the moment it is Ready.
    poller = client.begin_rendering_session(
        session_id="short-lived", size=RenderingSessionSize.STANDARD, lease_time_minutes=0
    )
    expired = poller.result(timeout=10)
    assert (expired.id, expired.status, expired.error) == (
        "short-lived",
        RenderingSessionStatus.EXPIRED,
        None,
    )
    assert client.get_rendering_session("short-lived").status == RenderingSessionStatus.EXPIRED


def test_a_session_stopped_while_starting_is_returned_not_raised(
    client: RemoteRenderingClient, tls_emulator: ArrEmulator
) -> None:
    poller = client.begin_rendering_session(
        session_id="stopped-early", size=RenderingSessionSize.STANDARD, lease_time_minutes=5
    )
    client.stop_rendering_session("stopped-early")
    stopped = poller.result(timeout=10)
    assert (stopped.status, stopped.error) == (RenderingSessionStatus.STOPPED, None)


# ------------------------------------------------------------------------------------ conversions

IN = "https://contosoin.blob.core.windows.net/models"
OUT = "https://contosoout.blob.core.windows.net/assets"


@pytest.fixture
def quick_conversions(tls_emulator: ArrEmulator) -> Iterator[None]:
    tls_emulator.state.conversion_delay = 0.3
    yield
    tls_emulator.state.conversion_delay = 5.0


def start(client: RemoteRenderingClient, conversion_id: str, path: str = "house.fbx", **output: str) -> Any:
    return client.begin_asset_conversion(
        conversion_id=conversion_id,
        input_settings=AssetConversionInputSettings(
            storage_container_uri=IN,
            relative_input_asset_path=path,
            blob_prefix="in/",
            storage_container_read_list_sas="sv=2020&sig=SDKSECRET",
        ),
        output_settings=AssetConversionOutputSettings(storage_container_uri=OUT, blob_prefix="out", **output),
    )


def test_asset_conversion_create_poll_get_and_list(
    client: RemoteRenderingClient, tls_emulator: ArrEmulator, quick_conversions: None
) -> None:
    poller = start(client, "sdk-conversion_1", output_asset_filename="house.arrAsset")
    done = poller.result(timeout=10)
    assert done.status == AssetConversionStatus.SUCCEEDED
    assert done.id == "sdk-conversion_1"
    assert done.output.asset_uri == f"{OUT}/out/house.arrAsset"
    assert done.error is None
    assert done.created_on is not None
    assert done.settings.input_settings.relative_input_asset_path == "house.fbx"
    assert done.settings.input_settings.storage_container_read_list_sas is None  # never echoed

    fetched = client.get_asset_conversion("sdk-conversion_1")
    assert (fetched.status, fetched.output.asset_uri) == (done.status, done.output.asset_uri)

    tls_emulator.state.page_size = 2
    try:
        for index in range(2):
            start(client, f"more-{index}")
        listed = list(client.list_asset_conversions())
    finally:
        tls_emulator.state.page_size = 50
    assert [conversion.id for conversion in listed] == ["sdk-conversion_1", "more-0", "more-1"]
    assert tls_emulator.state.request_counts["conversion_list"] == 2  # it followed the @nextLink


def test_asset_conversion_retry_and_conflict(
    client: RemoteRenderingClient, tls_emulator: ArrEmulator, quick_conversions: None
) -> None:
    start(client, "twice").result(timeout=10)
    again = start(client, "twice").result(timeout=10)  # the same settings: 200, the same conversion
    assert again.status == AssetConversionStatus.SUCCEEDED
    with pytest.raises(HttpResponseError) as raised:
        start(client, "twice", output_asset_filename="other.arrAsset")
    assert raised.value.status_code == 409
    assert raised.value.error.code == "Conflict"
    assert len(tls_emulator.state.conversions()) == 1


def test_a_failed_conversion_ends_the_poller_with_its_error(
    client: RemoteRenderingClient, tls_emulator: ArrEmulator, quick_conversions: None
) -> None:
    tls_emulator.state.fail_next_conversion("The input asset could not be found.")
    with pytest.raises(HttpResponseError) as raised:
        start(client, "doomed-conversion").result(timeout=10)
    assert raised.value.error.message == "The input asset could not be found."
    assert client.get_asset_conversion("doomed-conversion").status == AssetConversionStatus.FAILED
    with pytest.raises(HttpResponseError) as unsupported:
        start(client, "obj", path="house.obj").result(timeout=10)
    assert unsupported.value.error.code == "InvalidInputFormat"


def test_unknown_conversion_is_not_found(client: RemoteRenderingClient) -> None:
    with pytest.raises(ResourceNotFoundError):
        client.get_asset_conversion("no-such-conversion")
