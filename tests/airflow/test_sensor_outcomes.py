"""Every way a wait ends gives the same task outcome in poke, reschedule and deferrable mode.

Reported: ``soft_fail=True, deferrable=True`` on a session already in Error at the first check ended
*failed*, while poke mode (or Error arriving while deferred) ended *skipped*. The table runs each
outcome in each mode, with ``soft_fail`` off and on, through the real paths: ``execute`` (and, when it
defers, the trigger on an event loop and Airflow's ``resume_execution``).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest

from airflow_provider_arr._compat import AirflowFailException, AirflowSensorTimeout, AirflowSkipException
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.sensors.remote_rendering import RemoteRenderingSessionReadySensor
from tests.airflow.conftest import wait_for_status
from tests.airflow_compat import AirflowRescheduleException, TaskDeferred

MODES = ["poke", "reschedule", "deferrable"]


def started_session() -> str:
    with RemoteRenderingHook() as hook:
        return hook.create_session("1:00:00")


def stopping_answer(session_id: str) -> dict:
    return {
        "sessionId": session_id,
        "sessionStatus": "Stopping",
        "sessionMaxLeaseTime": "01:00:00",
        "sessionElapsedTime": "00:01:00",
        "sessionSize": "Standard",
    }


def arrange(emu, outcome: str, when: str) -> tuple[str, float]:
    """A session that will end as ``outcome``, already at the first check or while waiting; the timeout."""
    timeout = 30.0
    if outcome == "not_found" and when == "first":
        return str(uuid.uuid4()), timeout
    if outcome == "not_found":  # Starting, until the service no longer knows it (later_event)
        emu.state.start_delay = 60
        return started_session(), timeout
    if outcome == "timeout":
        emu.state.start_delay = 60
        return started_session(), 0.6
    if outcome == "error":
        emu.state.fail_next_start("GPU pool exhausted")
    if when == "later":
        emu.state.start_delay = 0.6
    session_id = started_session()
    if outcome == "expired":
        emu.state.expire_session(session_id, "lease ran out") if when == "first" else None
    elif outcome == "stopped":
        emu.state.stop_session_externally(session_id) if when == "first" else None
    elif outcome == "stopping":
        emu.state.add_fault("properties", 200, body=stopping_answer(session_id), count=100)
    elif when == "first":
        wait_for_status(emu, session_id, {"ready": "Ready", "error": "Error"}[outcome])
    return session_id, timeout


def run(
    sensor: RemoteRenderingSessionReadySensor, context: dict, emu, outcome: str, when: str, session_id: str
):
    """Run the sensor as Airflow would in its mode; return the task outcome."""
    from airflow.sdk import timezone

    later = threading.Timer(0.3, later_event, (emu, outcome, when, session_id))
    later.start()
    first_reschedule = None
    ti = context["ti"]
    ti.get_first_reschedule_date = lambda _context: first_reschedule  # what Airflow's database keeps
    try:
        for _ in range(400):
            try:
                sensor.execute(context)
                return "success"
            except AirflowRescheduleException:
                first_reschedule = first_reschedule or timezone.utcnow()
                time.sleep(0.05)
                continue
            except TaskDeferred as deferred:
                payload = asyncio.run(_first_event(deferred.trigger))
                sensor.resume_execution(deferred.method_name, {"event": payload}, context)
                return "success"
        raise AssertionError("the sensor never finished")
    except AirflowSkipException:
        return "skipped"
    except (AirflowFailException, AirflowSensorTimeout):
        return "failed"
    finally:
        later.join()


def later_event(emu, outcome: str, when: str, session_id: str) -> None:
    """What happens to the session while the task waits (the 'later' column)."""
    if when != "later":
        return
    if outcome == "expired":
        emu.state.expire_session(session_id, "lease ran out")
    elif outcome == "stopped":
        emu.state.stop_session_externally(session_id)
    elif outcome == "not_found":  # gone: its own reads answer 404, and listings no longer show it
        emu.state.add_fault("properties", 404, count=1000)
        emu.state.add_fault("list", 200, body={"sessions": []}, count=1000)


async def _first_event(trigger):
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger yielded nothing")


EXPECTED = {
    "ready": "success",
    "error": "failed",
    "expired": "failed",
    "stopped": "failed",
    "stopping": "failed",
    "not_found": "failed",
    "timeout": "failed",
}
CASES = [
    (outcome, when)
    for outcome in EXPECTED
    for when in (["first"] if outcome in ("timeout", "stopping") else ["first", "later"])
]


@pytest.mark.parametrize("soft_fail", [False, True], ids=["hard", "soft_fail"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("outcome", "when"), CASES, ids=[f"{o}-{w}" for o, w in CASES])
def test_each_outcome_is_the_same_in_every_mode(emu, context, mode, outcome, when, soft_fail):
    session_id, timeout = arrange(emu, outcome, when)
    sensor = RemoteRenderingSessionReadySensor(
        task_id="wait_ready",
        session_id=session_id,
        poke_interval=0.1,
        timeout=timeout,
        mode="reschedule" if mode == "reschedule" else "poke",
        deferrable=mode == "deferrable",
        soft_fail=soft_fail,
    )
    expected = EXPECTED[outcome]
    if soft_fail and expected == "failed":
        expected = "skipped"
    assert run(sensor, context, emu, outcome, when, session_id) == expected
