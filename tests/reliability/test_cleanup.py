"""Cleanup on every path, also when the cleanup's own calls meet faults.

The plain paths are tested elsewhere and not repeated here: a blocking create killed while waiting
(``tests/airflow/test_operators.py::test_create_killed_while_waiting_stops_the_session``), the
trigger's ``on_kill`` (``tests/airflow/test_trigger.py::test_on_kill_stops_the_session_when_asked``), a
wait that times out or cannot reach the service, a failing render (``test_example_dags.py``), and a
sensor that times out (``test_dag_runs.py`` here). These tests put faults on the calls the cleanup
makes (the status read, the stop) and check that every session the task created ends stopped.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from airflow_provider_arr._compat import AirflowException
from airflow_provider_arr.operators.remote_rendering import RemoteRenderingCreateSessionOperator
from airflow_provider_arr.triggers.remote_rendering import RemoteRenderingSessionTrigger
from tests.airflow_compat import TaskDeferred
from tests.reliability.conftest import V1, V2021, TaskInstance, active_ids, context_for

DIALECTS = pytest.mark.parametrize("conn_id", [V1, V2021], ids=["v1", "2021"])
#: Faults on the cleanup's calls: its status read is throttled, its stop's answer is lost (processed).
CLEANUP_FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("properties", {"status": 503}),
    ("properties", {"action": "drop_before"}),
    ("stop", {"status": 500}),
    ("stop", {"action": "drop_after"}),
]


def create(conn_id: str, **kwargs: Any) -> RemoteRenderingCreateSessionOperator:
    kwargs.setdefault("poll_interval", 5)
    return RemoteRenderingCreateSessionOperator(
        task_id="create", arr_conn_id=conn_id, max_lease_time="1:00:00", wait_for_ready=True, **kwargs
    )


def add_cleanup_faults(emu) -> None:
    for operation, fault in CLEANUP_FAULTS:
        emu.state.add_fault(operation, **fault)


def run_in_thread(
    operator: RemoteRenderingCreateSessionOperator, ti: TaskInstance
) -> tuple[threading.Thread, list]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(operator.execute(context_for(ti)))
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@DIALECTS
def test_kill_while_waiting_stops_the_session_through_faults(emu, conn_id):
    emu.state.slow_next_start(60)
    operator, ti = create(conn_id), TaskInstance()
    thread, outcome = run_in_thread(operator, ti)
    wait_until(lambda: operator._waiting_for is not None and emu.state.request_counts["properties"] >= 1)
    time.sleep(0.2)  # the first status read has been answered; the wait sleeps until its next poll
    add_cleanup_faults(emu)

    operator.on_kill()
    thread.join(10)

    assert "killed" in str(outcome[0])
    assert [record.status for record in emu.state.sessions()] == ["Stopped"]
    assert emu.state.faults_injected.total() == len(CLEANUP_FAULTS) + 1  # + the slow start


@DIALECTS
def test_wait_timeout_stops_the_session_through_faults(emu, conn_id):
    emu.state.slow_next_start(60)
    add_cleanup_faults(emu)  # the first status read of the wait meets them too; retried

    with pytest.raises(AirflowException, match=r"not Ready after 0\.5 s"):
        create(conn_id, timeout=0.5, poll_interval=0.1).execute(context_for(TaskInstance()))

    assert [record.status for record in emu.state.sessions()] == ["Stopped"]


@DIALECTS
async def test_deferred_kill_stops_the_session_through_faults(emu, conn_id):
    emu.state.slow_next_start(60)
    with pytest.raises(TaskDeferred) as deferred:
        create(conn_id, deferrable=True).execute(context_for(TaskInstance()))
    _, kwargs = deferred.value.trigger.serialize()
    trigger = RemoteRenderingSessionTrigger(**kwargs)  # as the triggerer rebuilds it
    add_cleanup_faults(emu)

    await trigger.on_kill()

    assert [record.status for record in emu.state.sessions()] == ["Stopped"]


@DIALECTS
@pytest.mark.parametrize("status", ["timeout", "error", "failed"])
def test_deferred_wait_that_ends_badly_stops_the_session_through_faults(emu, conn_id, status):
    emu.state.slow_next_start(60)
    operator, ti = create(conn_id, deferrable=True), TaskInstance()
    with pytest.raises(TaskDeferred):
        operator.execute(context_for(ti))
    session_id = ti.xcom["session_id"]
    add_cleanup_faults(emu)
    event = {"status": status, "message": f"wait ended: {status}", "session_id": session_id}

    with pytest.raises(AirflowException, match=f"wait ended: {status}"):
        operator.execute_complete(context_for(ti), event={**event, "last_status": None, "properties": None})

    assert [record.status for record in emu.state.sessions()] == ["Stopped"]


@DIALECTS
def test_kill_while_the_create_call_is_in_flight_stops_what_it_started(emu, conn_id):
    emu.state.add_fault("create", delay=3)  # processed at once, answered 3 s later
    operator = create(conn_id)
    thread, _ = run_in_thread(operator, TaskInstance())
    wait_until(lambda: emu.state.sessions())  # the service started the session; the answer is pending

    operator.on_kill()  # Airflow ends the task process right after this returns

    assert active_ids(emu) == set(), "the session started by the killed create call is still running"
    thread.join(10)
