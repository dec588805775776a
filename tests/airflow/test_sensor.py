"""The Ready sensor in poke, reschedule and deferrable modes, against the emulator."""

from __future__ import annotations

import time
import uuid

import pytest
from airflow.sdk import PokeReturnValue

from airflow_provider_arr._compat import AirflowException, AirflowFailException, AirflowSensorTimeout
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.sensors.remote_rendering import RemoteRenderingSessionReadySensor
from airflow_provider_arr.triggers.remote_rendering import RemoteRenderingSessionTrigger
from tests.airflow.conftest import session, wait_for_status
from tests.airflow_compat import AirflowRescheduleException, TaskDeferred


def started_session(lease: str = "1:00:00") -> str:
    hook = RemoteRenderingHook()
    try:
        return hook.create_session(lease)
    finally:
        hook.close()


def sensor(session_id: str, **kwargs) -> RemoteRenderingSessionReadySensor:
    kwargs.setdefault("poke_interval", 0.05)
    return RemoteRenderingSessionReadySensor(task_id="wait_ready", session_id=session_id, **kwargs)


def test_template_fields():
    assert RemoteRenderingSessionReadySensor.template_fields == ("session_id", "arr_conn_id")


def test_poke_is_false_while_starting_then_returns_the_properties(emu, context):
    session_id = started_session()
    ready_sensor = sensor(session_id)

    assert ready_sensor.poke(context) is False
    wait_for_status(emu, session_id, "Ready")
    result = ready_sensor.poke(context)

    assert isinstance(result, PokeReturnValue)
    assert result.is_done
    assert result.xcom_value["hostname"] == session(emu, session_id).hostname
    assert result.xcom_value["status"] == "Ready"


def test_poke_mode_waits_and_returns_the_properties(emu, context):
    session_id = started_session()
    properties = sensor(session_id).execute(context)
    assert properties["session_id"] == session_id
    assert properties["hostname"] == session(emu, session_id).hostname


def test_reschedule_mode_frees_the_slot_while_starting(emu, context):
    session_id = started_session()
    ready_sensor = sensor(session_id, mode="reschedule")

    with pytest.raises(AirflowRescheduleException):
        ready_sensor.execute(context)
    wait_for_status(emu, session_id, "Ready")
    assert ready_sensor.execute(context)["status"] == "Ready"


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        ("fail", r"is Error and will not become Ready: GPU pool exhausted"),
        ("expire_session", r"is Expired and will not become Ready: lease ran out early"),
        ("stop_session_externally", r"is Stopped and will not become Ready \(the service gave no message\)"),
    ],
)
@pytest.mark.parametrize("mode", ["poke", "reschedule"])
def test_a_session_that_ended_fails_the_sensor_without_retries(emu, context, end, expected, mode):
    if end == "fail":
        emu.state.fail_next_start("GPU pool exhausted")
        session_id = started_session()
        wait_for_status(emu, session_id, "Error")
    else:
        session_id = started_session()
        getattr(emu.state, end)(session_id, *(["lease ran out early"] if end == "expire_session" else []))

    with pytest.raises(AirflowFailException, match=expected):
        sensor(session_id, mode=mode).execute(context)


def test_an_unknown_session_fails_the_sensor(emu, context):
    with pytest.raises(AirflowFailException, match=r"does not exist.*HTTP 404"):
        sensor(str(uuid.uuid4())).execute(context)


def test_a_bad_session_id_fails_before_any_call(emu, context):
    with pytest.raises(AirflowFailException, match="session_id: must be a session GUID"):
        sensor("{{ not rendered }}").execute(context)
    assert sum(emu.state.request_counts.values()) == 0


def test_poke_mode_times_out(emu, context):
    emu.state.start_delay = 30
    session_id = started_session()
    started = time.monotonic()
    with pytest.raises(AirflowSensorTimeout):
        sensor(session_id, timeout=0.3).execute(context)
    assert time.monotonic() - started < 3
    assert session(emu, session_id).status == "Starting"  # the sensor does not own the session


def test_deferrable_returns_at_once_when_already_ready(emu, context):
    session_id = started_session()
    wait_for_status(emu, session_id, "Ready")
    assert sensor(session_id, deferrable=True).execute(context)["status"] == "Ready"


def test_deferrable_defers_while_starting_with_an_absolute_deadline(emu, context):
    session_id = started_session()
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        sensor(session_id, deferrable=True, poke_interval=5, timeout=900).execute(context)

    trigger = deferred.value.trigger
    assert isinstance(trigger, RemoteRenderingSessionTrigger)
    assert deferred.value.timeout is None
    assert (trigger.session_id, trigger.poll_interval, trigger.stop_on_kill) == (session_id, 5, False)
    assert before + 900 <= trigger.end_time <= time.time() + 900


def test_deferrable_fails_at_once_on_an_ended_session(emu, context):
    session_id = started_session()
    emu.state.stop_session_externally(session_id)
    with pytest.raises(AirflowFailException, match="is Stopped"):
        sensor(session_id, deferrable=True).execute(context)


def event(status: str, **extra) -> dict:
    return (
        {"status": status, "message": f"message for {status}", "session_id": "s", "last_status": None}
        | {"properties": None}
        | extra
    )


def test_execute_complete_returns_the_properties():
    properties = {"session_id": "s", "status": "Ready", "hostname": "h"}
    assert sensor("s").execute_complete({}, event("success", properties=properties)) == properties


@pytest.mark.parametrize(
    ("status", "error"),
    [("failed", AirflowFailException), ("timeout", AirflowSensorTimeout), ("error", AirflowException)],
)
def test_execute_complete_raises_on_failure_events(status, error):
    with pytest.raises(error, match=f"message for {status}"):
        sensor("s").execute_complete({}, event(status))


@pytest.mark.parametrize(
    ("bad_event", "message"),
    [
        (None, "without a trigger event"),
        ("x", "should be a dict, got str"),
        ({}, "lacks the key"),
        ({"status": "weird"}, "lacks the key"),
        (event("weird"), "unknown status 'weird'"),
        (event("success"), "success without session properties"),
    ],
)
def test_execute_complete_fails_closed(bad_event, message):
    with pytest.raises(AirflowException, match=message):
        sensor("s").execute_complete({}, bad_event)
