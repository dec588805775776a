"""Issue 18 in the sensors: a poke's read in flight at the sensor's timeout is abandoned (rule 3), and a
session or conversion in a status this client does not know is poked on, not failed (rule 4)."""

from __future__ import annotations

import time

import pytest

from airflow_provider_arr._compat import AirflowSensorTimeout
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.hooks.steps import DEADLINE_GRACE
from airflow_provider_arr.sensors.conversion import RemoteRenderingConversionSensor
from airflow_provider_arr.sensors.remote_rendering import RemoteRenderingSessionReadySensor

PATIENT = {"retry_min_wait": 0.05, "retry_max_wait": 0.2, "retry_max_time": 60, "read_timeout": 30}
HANGS = {
    "late-answer": {"delay": 30},
    "retry-after-30": {"status": 503, "headers": {"Retry-After": "30"}, "count": 3},
}


def sensor_for(kind: str, item_id: str, **kwargs):
    if kind == "session":
        return RemoteRenderingSessionReadySensor(task_id="wait", session_id=item_id, **kwargs)
    return RemoteRenderingConversionSensor(task_id="wait", conversion_id=item_id, **kwargs)


def started(kind: str, emu) -> tuple[str, str]:
    emu.state.start_delay = emu.state.conversion_delay = 60
    with RemoteRenderingHook() as hook:
        if kind == "session":
            return hook.create_session("1:00:00"), "properties"
        conversion_id = hook.create_conversion(
            "https://in0.blob.core.windows.net/models",
            "house.fbx",
            "https://out0.blob.core.windows.net/assets",
        )
        return conversion_id, "conversion_properties"


@pytest.mark.parametrize("hang", sorted(HANGS))
@pytest.mark.parametrize("kind", ["session", "conversion"])
def test_a_poke_in_flight_at_the_timeout_is_abandoned(emu, monkeypatch, context, kind, hang):
    for name, value in emu.env(**PATIENT).items():
        monkeypatch.setenv(name, value)
    item_id, operation = started(kind, emu)
    emu.state.add_fault(operation, status=None, delay=0.0)  # the first poke answers
    emu.state.add_fault(operation, **({"count": 50} | HANGS[hang]))
    sensor = sensor_for(kind, item_id, poke_interval=0.1, timeout=1.0, mode="poke")
    started_at = time.monotonic()
    with pytest.raises(AirflowSensorTimeout, match="while a read was in flight"):
        sensor.execute(context)
    assert time.monotonic() - started_at < 1.0 + DEADLINE_GRACE + 8  # not the 30 s the read would take


@pytest.mark.parametrize("text", ["Hibernating", "Unknown", "Paused"])
@pytest.mark.parametrize("kind", ["session", "conversion"])
def test_an_unknown_status_is_poked_on_until_the_timeout(emu, context, kind, text):
    item_id, operation = started(kind, emu)
    emu.state.report_status(item_id, text)
    emu.state.reset_counts()
    sensor = sensor_for(kind, item_id, poke_interval=0.1, timeout=0.8, mode="poke")
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute(context)
    assert emu.state.request_counts[operation] >= 3
