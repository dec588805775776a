"""The convert operator, the conversion sensor and trigger against the emulator on a loopback socket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_arr._compat import AirflowException, AirflowFailException, AirflowSensorTimeout
from airflow_provider_arr.emulator import ArrEmulator
from airflow_provider_arr.emulator.conversions import DEFAULT_CONVERSION_DELAY
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.operators.conversion import RemoteRenderingConvertAssetOperator
from airflow_provider_arr.sensors.conversion import RemoteRenderingConversionSensor
from airflow_provider_arr.triggers.conversion import (
    RemoteRenderingConversionTrigger,
    validate_conversion_event,
)
from tests.airflow.conftest import FakeTaskInstance
from tests.airflow_compat import TaskDeferred
from tests.helpers import FAST_RETRIES

IN = "https://contosoin.blob.core.windows.net/models"
OUT = "https://contosoout.blob.core.windows.net/assets"
SAS = "sv=2020-08-04&sr=c&sig=CONVERSIONSECRET"


@pytest.fixture(params=["v1", "2021-01-01"])
def conv(request, emu: ArrEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[ArrEmulator]:
    """The emulator in each dialect; conversions take 0.3 s."""
    for name, value in emu.env(api_version=request.param, **FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    emu.state.conversion_delay = 0.3
    yield emu
    emu.state.conversion_delay = DEFAULT_CONVERSION_DELAY


def convert_op(**kwargs: Any) -> RemoteRenderingConvertAssetOperator:
    arguments: dict[str, Any] = {
        "input_container_uri": IN,
        "input_asset_path": "house.fbx",
        "output_container_uri": OUT,
        "output_blob_prefix": "run1",
        "poll_interval": 0.05,
        "timeout": 10,
    }
    return RemoteRenderingConvertAssetOperator(task_id="convert", **(arguments | kwargs))


def test_template_fields_cover_the_hook_arguments() -> None:
    assert set(RemoteRenderingConvertAssetOperator.template_fields) == {
        "input_container_uri",
        "input_asset_path",
        "output_container_uri",
        "input_blob_prefix",
        "output_blob_prefix",
        "output_asset_filename",
        "input_sas",
        "output_sas",
        "conversion_id",
        "arr_conn_id",
    }


def test_convert_returns_the_output_uri_in_both_dialects(conv, context, ti, debug_logs):
    uri = convert_op(input_sas=SAS, output_sas=SAS).execute(context)
    assert uri == f"{OUT}/run1/house.arrAsset"
    assert ti.xcom["conversion_id"] == conv.state.conversions()[0].conversion_id
    assert "CONVERSIONSECRET" not in repr(ti.xcom)
    assert "CONVERSIONSECRET" not in debug_logs()


def test_without_wait_returns_the_conversion_id(conv, context, ti):
    conversion_id = convert_op(wait_for_completion=False).execute(context)
    assert conversion_id == ti.xcom["conversion_id"]
    assert conv.state.request_counts["conversion_properties"] <= 1  # 2021-01-01: the 404 before the PUT


def test_2021_retry_reconnects_to_the_earlier_conversion(emu, monkeypatch):
    for name, value in emu.env(api_version="2021-01-01", **FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    emu.state.conversion_delay = 1.5
    first = FakeTaskInstance(try_number=1)
    with pytest.raises(AirflowException, match="goes on in the service and is billed"):
        convert_op(timeout=0.2).execute({"ti": first})
    emu.state.conversion_delay = 0.3
    second = FakeTaskInstance(try_number=2)
    convert_op().execute({"ti": second})
    assert len(emu.state.conversions()) == 1
    assert first.xcom["conversion_id"] == second.xcom["conversion_id"]
    assert "arr_test-task" in first.xcom["conversion_id"]
    emu.state.conversion_delay = DEFAULT_CONVERSION_DELAY


def test_2021_retry_after_a_failed_conversion_uses_a_new_id(emu, monkeypatch):
    for name, value in emu.env(api_version="2021-01-01", **FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    emu.state.conversion_delay = 0.1
    emu.state.fail_next_conversion("Textures are missing.")
    with pytest.raises(AirflowFailException, match=r"Textures are missing\..*MS-CV"):
        convert_op().execute({"ti": FakeTaskInstance(try_number=1)})
    second = FakeTaskInstance(try_number=2)
    convert_op().execute({"ti": second})
    assert second.xcom["conversion_id"].endswith("-2")
    emu.state.conversion_delay = DEFAULT_CONVERSION_DELAY


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"output_asset_filename": "house.fbx"}, "output_asset_filename"),
        ({"output_container_uri": "https://example.com/out"}, "output_container_uri"),
        ({"input_asset_path": ""}, "input_asset_path"),
        ({"input_asset_path": "house.3ds"}, "input_asset_path"),
    ],
)
def test_bad_input_fails_before_any_http(conv, context, kwargs, field):
    with pytest.raises(AirflowFailException, match=f"^{field}: "):
        convert_op(**kwargs).execute(context)
    assert sum(conv.state.request_counts.values()) == 0


def test_v1_refuses_a_conversion_id(emu, context):
    with pytest.raises(AirflowFailException, match=r"^conversion_id: "):
        convert_op(conversion_id="mine").execute(context)
    assert sum(emu.state.request_counts.values()) == 0


def test_deferrable_convert_defers_then_returns_the_uri(conv, context):
    op = convert_op(deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, RemoteRenderingConversionTrigger)

    async def run() -> list[dict]:
        return [validate_conversion_event(event.payload) async for event in trigger.run()]

    (event,) = asyncio.run(run())
    assert event["status"] == "success"
    assert op.execute_complete(context, event) == f"{OUT}/run1/house.arrAsset"


def test_trigger_reports_a_failure_with_the_message(conv):
    conv.state.fail_next_conversion("Bad geometry.")
    conversion_id = RemoteRenderingHook().create_conversion(IN, "house.fbx", OUT)
    trigger = RemoteRenderingConversionTrigger(conversion_id, "arr_default", 0.05, time.time() + 10)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_arr.triggers.conversion.RemoteRenderingConversionTrigger"

    async def run() -> list[dict]:
        return [event.payload async for event in RemoteRenderingConversionTrigger(**kwargs).run()]

    (event,) = asyncio.run(run())
    assert event["status"] == "failed"
    assert "Bad geometry." in event["message"]
    with pytest.raises(AirflowFailException, match="Bad geometry"):
        convert_op().execute_complete({}, event)


@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_sensor_in_every_mode(conv, context, mode):
    conversion_id = RemoteRenderingHook().create_conversion(IN, "house.fbx", OUT, output_blob_prefix="p")
    sensor = RemoteRenderingConversionSensor(
        task_id="wait",
        conversion_id=conversion_id,
        poke_interval=0.05,
        timeout=10,
        mode="poke" if mode == "deferrable" else mode,
        deferrable=mode == "deferrable",
    )
    if mode == "reschedule":
        assert sensor.poke(context) is False
        time.sleep(0.4)
        result = sensor.poke(context).xcom_value  # type: ignore[union-attr]
    elif mode == "deferrable":
        with pytest.raises(TaskDeferred) as deferred:
            sensor.execute(context)

        async def run() -> list[dict]:
            return [event.payload async for event in deferred.value.trigger.run()]

        (event,) = asyncio.run(run())
        result = sensor.execute_complete(context, event)
    else:
        result = sensor.execute(context)
    assert result["status"] == "Succeeded"
    assert result["conversion_id"] == conversion_id


def test_sensor_fails_on_a_failed_or_unknown_conversion(conv, context):
    conv.state.conversion_delay = 0
    conv.state.fail_next_conversion("Broken file.")
    conversion_id = RemoteRenderingHook().create_conversion(IN, "house.fbx", OUT)
    sensor = RemoteRenderingConversionSensor(task_id="wait", conversion_id=conversion_id, poke_interval=0.05)
    with pytest.raises(AirflowFailException, match=r"Broken file\..*MS-CV of the answer: \S+"):
        sensor.poke(context)
    unknown = RemoteRenderingConversionSensor(task_id="w2", conversion_id="nope-0", poke_interval=0.05)
    with pytest.raises(AirflowFailException, match="does not exist"):
        unknown.poke(context)


def test_sensor_timeout_event(conv, context):
    sensor = RemoteRenderingConversionSensor(task_id="wait", conversion_id="x", poke_interval=0.05)
    event = {
        "status": "timeout",
        "message": "goes on",
        "conversion_id": "x",
        "last_status": "Running",
        "properties": None,
    }
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute_complete(context, event)
    with pytest.raises(AirflowException, match="without a trigger event"):
        sensor.execute_complete(context, None)


def test_rendered_sas_tokens_are_masked():
    from airflow.sdk._shared.secrets_masker import redact

    op = convert_op(input_sas="{{ params.sas }}", output_sas="?sv=1&sig=RENDEREDOUT")
    op.render_template_fields({"params": {"sas": "sv=1&sig=RENDEREDIN"}})
    assert op.input_sas == "sv=1&sig=RENDEREDIN"
    assert redact(op.input_sas) == "***"
    assert "RENDEREDOUT" not in str(redact({"output_sas": "sv=1&sig=RENDEREDOUT"}))
