"""The create, extend and stop operators against the emulator on a loopback socket."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from datetime import timedelta

import pytest

from airflow_provider_arr._compat import AirflowException, AirflowFailException
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.models import parse_timespan
from airflow_provider_arr.operators.remote_rendering import (
    RemoteRenderingCreateSessionOperator,
    RemoteRenderingExtendSessionOperator,
    RemoteRenderingStopSessionOperator,
)
from airflow_provider_arr.triggers.remote_rendering import RemoteRenderingSessionTrigger
from tests.airflow.conftest import session, wait_for_status
from tests.airflow_compat import TaskDeferred


def create_op(**kwargs) -> RemoteRenderingCreateSessionOperator:
    kwargs.setdefault("max_lease_time", "1:00:00")
    kwargs.setdefault("poll_interval", 0.05)
    return RemoteRenderingCreateSessionOperator(task_id="create", **kwargs)


def started_session(lease: str = "1:00:00") -> str:
    hook = RemoteRenderingHook()
    try:
        return hook.create_session(lease)
    finally:
        hook.close()


# ---------------------------------------------------------------------------------------- create


def test_template_fields():
    assert RemoteRenderingCreateSessionOperator.template_fields == (
        "max_lease_time",
        "size",
        "models",
        "arr_conn_id",
        "session_id",
    )
    assert RemoteRenderingExtendSessionOperator.template_fields == (
        "session_id",
        "max_lease_time",
        "extend_by",
        "arr_conn_id",
    )
    assert RemoteRenderingStopSessionOperator.template_fields == ("session_id", "arr_conn_id")


def test_create_without_wait_returns_the_id_at_once(emu, context, ti):
    session_id = create_op(size="Premium", models=["https://x/a.arrAsset"]).execute(context)

    assert ti.xcom == {"session_id": session_id, "return_value": session_id}  # pushed before any wait
    record = session(emu, session_id)
    assert (record.status, record.size, record.models) == ("Starting", "Premium", ("https://x/a.arrAsset",))
    assert record.max_lease_time == timedelta(hours=1)
    assert emu.state.request_counts["properties"] == 0  # no waiting


def test_create_and_wait_pushes_the_ready_properties(emu, context, ti):
    session_id = create_op(wait_for_ready=True).execute(context)

    record = session(emu, session_id)
    assert record.status == "Ready"
    assert ti.xcom["session_id"] == session_id
    assert ti.xcom["hostname"] == record.hostname
    assert ti.xcom["session_properties"]["status"] == "Ready"
    assert ti.xcom["session_properties"]["max_lease_time"] == "01:00:00"
    json.dumps(ti.xcom)  # plain JSON values only


def test_create_results_hold_no_secret(emu, context, ti):
    create_op(wait_for_ready=True).execute(context)
    token = RemoteRenderingHook().get_token()
    pushed = json.dumps(ti.xcom)
    assert emu.account_key not in pushed
    assert token not in pushed


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_lease_time": "25:00:00"}, "max_lease_time"),
        ({"max_lease_time": "four hours"}, "max_lease_time"),
        ({"max_lease_time": "0:00:00"}, "max_lease_time"),
        ({"size": "huge"}, "size"),
        ({"models": "https://not-a-list"}, "models"),
        ({"models": ["ok", ""]}, "models[1]"),
    ],
)
def test_create_rejects_bad_input_before_any_call_and_without_retries(emu, context, kwargs, field):
    with pytest.raises(AirflowFailException, match="^" + re.escape(field)):
        create_op(**kwargs).execute(context)
    assert sum(emu.state.request_counts.values()) == 0
    assert emu.state.sessions() == []


def test_create_fails_with_the_service_message_when_the_session_errors(emu, context, ti):
    emu.state.fail_next_start("No GPU capacity in westus2")

    with pytest.raises(AirflowException, match=r"is Error .*No GPU capacity in westus2") as raised:
        create_op(wait_for_ready=True).execute(context)

    assert not isinstance(raised.value, AirflowFailException)  # a new session may work: retries allowed
    assert session(emu, ti.xcom["session_id"]).status == "Error"
    assert emu.state.request_counts["stop"] == 0  # nothing to stop


@pytest.mark.parametrize(
    ("end", "status", "expected"),
    [
        ("expire_session", "Expired", "is Expired .*: lease gone"),
        ("stop_session_externally", "Stopped", "is Stopped"),
    ],
)
def test_create_fails_when_the_session_ends_while_starting(emu, context, ti, end, status, expected):
    emu.state.start_delay = 30

    def end_it() -> None:
        while not emu.state.sessions():
            time.sleep(0.01)
        args = ("lease gone",) if end == "expire_session" else ()
        getattr(emu.state, end)(emu.state.sessions()[0].session_id, *args)

    threading.Thread(target=end_it, daemon=True).start()
    with pytest.raises(AirflowException, match=expected):
        create_op(wait_for_ready=True).execute(context)
    assert session(emu, ti.xcom["session_id"]).status == status


def test_create_wait_timeout_stops_the_session_it_created(emu, context, ti):
    emu.state.start_delay = 30
    started = time.monotonic()

    with pytest.raises(AirflowException, match=r"not Ready after 0\.4 s"):
        create_op(wait_for_ready=True, timeout=0.4).execute(context)

    assert time.monotonic() - started < 3
    assert session(emu, ti.xcom["session_id"]).status == "Stopped"
    assert emu.state.active_sessions() == []


def test_create_stops_its_session_when_the_wait_cannot_reach_the_service(emu, context, ti):
    emu.state.start_delay = 30
    emu.state.add_fault("properties", 500, body="boom", count=50)

    with pytest.raises(AirflowException, match="HTTP 500"):
        create_op(wait_for_ready=True).execute(context)

    emu.state.clear_faults()
    assert session(emu, ti.xcom["session_id"]).status == "Stopped"


def test_create_killed_while_waiting_stops_the_session(emu, context, ti):
    emu.state.start_delay = 30
    operator = create_op(wait_for_ready=True, poll_interval=5)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            operator.execute(context)
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    deadline = time.monotonic() + 5
    while operator._waiting_for is None and time.monotonic() < deadline:
        time.sleep(0.01)
    killed_at = time.monotonic()
    operator.on_kill()
    worker.join(5)

    assert time.monotonic() - killed_at < 3  # no 5 s poll sleep: the kill wakes the wait
    assert not worker.is_alive()
    assert "killed" in str(outcome[0])
    assert session(emu, ti.xcom["session_id"]).status == "Stopped"
    assert emu.state.request_counts["stop"] == 1


def test_on_kill_after_success_leaves_the_session_running(emu, context, ti):
    operator = create_op(wait_for_ready=True)
    session_id = operator.execute(context)
    operator.on_kill()
    assert session(emu, session_id).status == "Ready"


def test_create_deferrable_defers_to_the_trigger_with_an_absolute_deadline(emu, context, ti):
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        create_op(wait_for_ready=True, deferrable=True, timeout=600, poll_interval=7).execute(context)

    trigger = deferred.value.trigger
    assert isinstance(trigger, RemoteRenderingSessionTrigger)
    assert deferred.value.timeout is None  # the trigger times out, so the operator can stop the session
    assert deferred.value.method_name == "execute_complete"
    assert trigger.session_id == ti.xcom["session_id"]  # pushed before deferring
    assert trigger.stop_on_kill is True
    assert trigger.poll_interval == 7
    assert before + 600 <= trigger.end_time <= time.time() + 600


def test_create_deferrable_without_wait_does_not_defer(emu, context, ti):
    assert create_op(deferrable=True).execute(context) == ti.xcom["session_id"]


def ready_event(emu, session_id: str) -> dict:
    wait_for_status(emu, session_id, "Ready")
    properties = RemoteRenderingHook().get_session(session_id).to_dict()
    return {
        "status": "success",
        "message": "Ready",
        "session_id": session_id,
        "last_status": "Ready",
        "properties": properties,
    }


def test_create_execute_complete_success_pushes_properties(emu, context, ti):
    session_id = started_session()
    event = ready_event(emu, session_id)

    assert create_op().execute_complete(context, event) == session_id
    assert ti.xcom["hostname"] == session(emu, session_id).hostname
    assert ti.xcom["session_properties"] == event["properties"]


@pytest.mark.parametrize("status", ["failed", "timeout", "error"])
def test_create_execute_complete_failure_raises_and_stops_the_session(emu, context, status):
    emu.state.start_delay = 30
    session_id = started_session()
    event = {"status": status, "message": f"it went {status}", "session_id": session_id}
    event |= {"last_status": "Starting", "properties": None}

    with pytest.raises(AirflowException, match=f"it went {status}"):
        create_op().execute_complete(context, event)
    assert session(emu, session_id).status == "Stopped"


@pytest.mark.parametrize("event", [None, "x", {}, {"status": "weird"}])
def test_create_execute_complete_fails_closed_and_stops_the_session(emu, context, ti, event):
    emu.state.start_delay = 30
    session_id = started_session()
    ti.xcom_push("session_id", session_id)

    with pytest.raises(AirflowException):
        create_op().execute_complete(context, event)
    assert session(emu, session_id).status == "Stopped"


# ---------------------------------------------------------------------------------------- extend


def extend_op(session_id: str, **kwargs) -> RemoteRenderingExtendSessionOperator:
    return RemoteRenderingExtendSessionOperator(task_id="extend", session_id=session_id, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"extend_by": timedelta(minutes=30)}, "01:30:00"),
        ({"extend_by": "0:45:0"}, "01:45:00"),
        ({"max_lease_time": "2:0:0"}, "02:00:00"),
        ({"max_lease_time": timedelta(hours=24)}, "1.00:00:00"),
    ],
)
def test_extend_sets_the_new_total_lease(emu, context, kwargs, expected):
    session_id = started_session("1:00:00")

    assert extend_op(session_id, **kwargs).execute(context) == expected
    assert session(emu, session_id).max_lease_time == parse_timespan(expected)


def test_extend_by_adds_to_the_lease_the_service_reports(emu, context):
    session_id = started_session("1:00:00")
    extend_op(session_id, max_lease_time="3:00:00").execute(context)  # someone else extended it
    assert extend_op(session_id, extend_by="0:30:00").execute(context) == "03:30:00"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_lease_time": "1:00:00"}, r"max_lease_time: the new lease 01:00:00 is not longer .* 01:00:00"),
        ({"max_lease_time": "0:30:00"}, "not longer than the session's current lease 01:00:00"),
        ({"extend_by": "23:30:00"}, r"extend_by: the new lease 1\.00:30:00 .* exceeds the service's limit"),
        ({"extend_by": "nonsense"}, "extend_by: 'nonsense' is not a TimeSpan"),
        ({"max_lease_time": "-1:00:00"}, "max_lease_time: must be longer than zero"),
    ],
)
def test_extend_rejects_leases_that_do_not_extend(emu, context, kwargs, message):
    session_id = started_session("1:00:00")
    with pytest.raises(AirflowFailException, match=message):
        extend_op(session_id, **kwargs).execute(context)
    assert emu.state.request_counts["update"] == 0
    assert session(emu, session_id).max_lease_time == timedelta(hours=1)


def test_extend_needs_exactly_one_form():
    with pytest.raises(ValueError, match="exactly one"):
        extend_op(str(uuid.uuid4()))
    with pytest.raises(ValueError, match="exactly one"):
        extend_op(str(uuid.uuid4()), max_lease_time="2:0:0", extend_by="1:0:0")


@pytest.mark.parametrize("end", ["stop_session_externally", "expire_session"])
def test_extend_refuses_a_session_that_has_ended(emu, context, end):
    session_id = started_session()
    getattr(emu.state, end)(session_id)
    with pytest.raises(AirflowFailException, match=r"it is (Stopped|Expired), not Starting or Ready"):
        extend_op(session_id, extend_by="0:30:0").execute(context)
    assert emu.state.request_counts["update"] == 0


def test_extend_refuses_an_unknown_session(emu, context):
    with pytest.raises(AirflowFailException, match="HTTP 404"):
        extend_op(str(uuid.uuid4()), extend_by="0:30:0").execute(context)


def test_extend_refuses_a_bad_session_id_before_any_call(emu, context):
    with pytest.raises(AirflowFailException, match="session_id: must be a session GUID"):
        extend_op("../token", extend_by="0:30:0").execute(context)
    assert sum(emu.state.request_counts.values()) == 0


# ------------------------------------------------------------------------------------------ stop


def stop_op(session_id: str) -> RemoteRenderingStopSessionOperator:
    return RemoteRenderingStopSessionOperator(task_id="stop", session_id=session_id)


@pytest.mark.parametrize("ready", [False, True])
def test_stop_stops_an_active_session(emu, context, ready):
    session_id = started_session()
    if ready:
        wait_for_status(emu, session_id, "Ready")
    assert stop_op(session_id).execute(context) == "Stopped"
    assert session(emu, session_id).status == "Stopped"


def test_stop_is_idempotent(emu, context):
    session_id = started_session()
    assert stop_op(session_id).execute(context) == "Stopped"
    assert stop_op(session_id).execute(context) == "Stopped"  # a retry or a second teardown
    assert emu.state.request_counts["stop"] == 1


@pytest.mark.parametrize(
    ("end", "status"),
    [("stop_session_externally", "Stopped"), ("expire_session", "Expired"), ("fail", "Error")],
)
def test_stop_of_an_ended_session_succeeds_without_a_stop_call(emu, context, end, status):
    if end == "fail":
        emu.state.fail_next_start("boom")
        session_id = started_session()
        wait_for_status(emu, session_id, "Error")
    else:
        session_id = started_session()
        getattr(emu.state, end)(session_id)

    assert stop_op(session_id).execute(context) == status
    assert emu.state.request_counts["stop"] == 0


def test_stop_of_an_unknown_session_succeeds(emu, context):
    assert stop_op(str(uuid.uuid4())).execute(context) == "NotFound"


def test_stop_fails_on_a_bad_session_id(emu, context):
    with pytest.raises(AirflowFailException, match="session_id"):
        stop_op("None").execute(context)


def test_no_secret_reaches_the_logs(emu, context, debug_logs):
    session_id = create_op(wait_for_ready=True).execute(context)
    extend_op(session_id, extend_by="0:10:00").execute(context)
    stop_op(session_id).execute(context)
    token = RemoteRenderingHook().get_token()

    logs = debug_logs()
    assert session_id in logs  # the capture works
    assert emu.account_key not in logs
    assert token not in logs


def test_operators_can_be_deep_copied():
    """Airflow deep-copies tasks (e.g. ``dag.partial_subset``); no lock or client may hang off them."""
    import copy

    for operator in (create_op(wait_for_ready=True), extend_op(str(uuid.uuid4()), extend_by="1:0:0")):
        assert copy.deepcopy(operator).task_id == operator.task_id
