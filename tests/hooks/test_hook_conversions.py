"""The hook's asset-conversion calls against the emulator on a real loopback socket, in both dialects."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_arr.exceptions import (
    RemoteRenderingConversionFailedError,
    RemoteRenderingConversionMayExistError,
    RemoteRenderingConversionNotFoundError,
    RemoteRenderingError,
    RemoteRenderingNotFoundError,
    RemoteRenderingWaitTimeoutError,
)
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.models import ArrInputError, ConversionStatus
from tests.helpers import FAST_RETRIES

IN = "https://contosoin.blob.core.windows.net/models"
OUT = "https://contosoout.blob.core.windows.net/assets"
SAS_IN = "sv=2020-08-04&sr=c&sp=rl&sig=READLISTSECRET"
SAS_OUT = "sv=2020-08-04&sr=c&sp=w&sig=WRITESECRET"


@pytest.fixture(params=["v1", "2021-01-01"])
def dialect(request, emulator, monkeypatch):
    """``arr_default`` on the emulator in each dialect; conversions take 0.3 s."""
    for name, value in emulator.env(api_version=request.param, **FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    emulator.state.conversion_delay = 0.3
    return request.param


def test_convert_and_wait_in_both_dialects(emulator, dialect, debug_logs):
    hook = RemoteRenderingHook()
    conversion_id = hook.create_conversion(
        IN,
        "house.fbx",
        OUT,
        input_blob_prefix="in",
        output_blob_prefix="run1",
        input_sas=SAS_IN,
        output_sas=SAS_OUT,
    )
    record = emulator.state.conversions()[0]
    assert record.conversion_id == conversion_id
    assert (record.input.sas, record.output.sas) == (SAS_IN, SAS_OUT)
    assert record.input.blob_prefix == "in"
    first = hook.get_conversion(conversion_id)
    assert first.status in (ConversionStatus.NOT_STARTED, ConversionStatus.RUNNING)
    done = hook.wait_for_conversion(conversion_id, poll_interval=0.05, end_time=time.time() + 10)
    assert done.status is ConversionStatus.SUCCEEDED
    if dialect == "2021-01-01":
        assert done.output_asset_uri == f"{OUT}/run1/house.arrAsset"
        assert done.creation_time
    assert "READLISTSECRET" not in debug_logs()
    assert "WRITESECRET" not in debug_logs()


def test_v1_uses_the_plain_route_without_sas(emulator, dialect):
    conversion_id = RemoteRenderingHook().create_conversion(
        IN, "car.glb", OUT, output_asset_filename="c.arrAsset"
    )
    record = emulator.state.conversions()[0]
    assert record.input.sas is None
    assert record.output.asset == "c.arrAsset"
    assert conversion_id == record.conversion_id


def test_retry_after_is_honoured(emulator, monkeypatch):
    for name, value in emulator.env(api_version="2021-01-01", **FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    emulator.state.conversion_delay = 1.5
    hook = RemoteRenderingHook()
    conversion_id = hook.create_conversion(IN, "house.fbx", OUT, conversion_id="hinted")
    started = time.monotonic()
    hook.wait_for_conversion(conversion_id, poll_interval=0.01, end_time=time.time() + 10)
    # Retry-After (1 s, then 1 s) spaces the reads, not the 10 ms poll interval.
    assert emulator.state.request_counts["conversion_properties"] <= 3
    assert time.monotonic() - started >= 1.0


def test_2021_create_is_retried_under_the_same_id(emulator, monkeypatch):
    for name, value in emulator.env(api_version="2021-01-01", **FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    emulator.state.add_fault("conversion_create", action="drop_after")
    hook = RemoteRenderingHook()
    assert hook.create_conversion(IN, "house.fbx", OUT, conversion_id="retry-me") == "retry-me"
    assert len(emulator.state.conversions()) == 1
    assert emulator.state.request_counts["conversion_create"] == 2
    with pytest.raises(RemoteRenderingError, match=r"HTTP 409.*other settings"):
        hook.create_conversion(IN, "other.fbx", OUT, conversion_id="retry-me")


def test_v1_create_is_not_retried_blindly(emulator, dialect):
    if dialect != "v1":
        pytest.skip("v1 only")
    emulator.state.add_fault("conversion_create", action="drop_after")
    with pytest.raises(RemoteRenderingConversionMayExistError, match="v1 cannot list conversions"):
        RemoteRenderingHook().create_conversion(IN, "house.fbx", OUT)
    assert emulator.state.request_counts["conversion_create"] == 1


def test_throttled_create_is_retried_in_both_dialects(emulator, dialect):
    emulator.state.add_fault("conversion_create", 429, headers={"Retry-After": "0"})
    RemoteRenderingHook().create_conversion(IN, "house.fbx", OUT)
    assert len(emulator.state.conversions()) == 1


def test_failed_conversion_has_the_message_and_ms_cv(emulator, dialect):
    emulator.state.fail_next_conversion("Textures are missing.")
    hook = RemoteRenderingHook()
    conversion_id = hook.create_conversion(IN, "house.fbx", OUT)
    with pytest.raises(
        RemoteRenderingConversionFailedError, match=r"Textures are missing\..*MS-CV of the answer: \S{22}\.0"
    ):
        hook.wait_for_conversion(conversion_id, poll_interval=0.05, end_time=time.time() + 10)


def test_wait_that_gives_up_says_the_conversion_goes_on(emulator, dialect):
    emulator.state.conversion_delay = 60
    hook = RemoteRenderingHook()
    conversion_id = hook.create_conversion(IN, "house.fbx", OUT)
    with pytest.raises(RemoteRenderingWaitTimeoutError, match="goes on in the service and is billed"):
        hook.wait_for_conversion(conversion_id, poll_interval=0.05, end_time=time.time() + 0.2)


def test_unknown_conversion_is_a_conversion_not_found(emulator, dialect):
    with pytest.raises(RemoteRenderingConversionNotFoundError) as caught:
        RemoteRenderingHook().get_conversion("00000000-1111-2222-3333-444444444444")
    assert isinstance(caught.value, RemoteRenderingNotFoundError)
    assert caught.value.http_status == 404


def test_list_conversions(emulator, dialect):
    hook = RemoteRenderingHook()
    if dialect == "v1":
        with pytest.raises(RemoteRenderingError, match="no call that lists conversions"):
            hook.list_conversions()
        return
    emulator.state.page_size = 2
    ids = [hook.create_conversion(IN, "house.fbx", OUT, conversion_id=f"c{i}") for i in range(3)]
    assert [c.conversion_id for c in hook.list_conversions()] == ids


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"output_asset_filename": "house.glb"}, "output_asset_filename"),
        ({"input_container_uri": "http://contosoin.blob.core.windows.net/models"}, "input_container_uri"),
        ({"input_asset_path": ""}, "input_asset_path"),
        ({"input_asset_path": "house.obj"}, "input_asset_path"),
        ({"output_sas": "https://x.blob.core.windows.net/c?sig=WRITESECRET"}, "output_sas"),
    ],
)
def test_bad_input_fails_before_any_http(emulator, dialect, kwargs, field):
    arguments = {
        "input_container_uri": IN,
        "input_asset_path": "house.fbx",
        "output_container_uri": OUT,
        **kwargs,
    }
    with pytest.raises(ArrInputError, match=f"^{field}: ") as caught:
        RemoteRenderingHook().create_conversion(**arguments)
    assert "WRITESECRET" not in str(caught.value)
    assert sum(emulator.state.request_counts.values()) == 0


def test_async_twins(emulator, dialect):
    async def run():
        async with RemoteRenderingHook() as hook:
            conversion_id = await hook.acreate_conversion(IN, "house.fbx", OUT)
            await hook.aget_conversion(conversion_id)
            return await hook.await_conversion(conversion_id, poll_interval=0.05, end_time=time.time() + 10)

    assert asyncio.run(run()).status is ConversionStatus.SUCCEEDED
