"""Durable ownership, tried the way crashes happen: a try that dies leaves only its record behind.

Each "try" is a new FakeTaskInstance with the same identity (its XComs are gone, as Airflow clears them);
a try that "dies" simply stops running, with nothing cleaned up. The records live in the test's
MemoryLedger (the conftest fixture); dag.test runs and the e2e crash suite use Airflow Variables.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from airflow.sdk.exceptions import AirflowException

from airflow_provider_arr import ownership
from airflow_provider_arr.exceptions import RemoteRenderingSessionMayExistError
from airflow_provider_arr.operators.janitor import RemoteRenderingSessionJanitorOperator
from airflow_provider_arr.operators.remote_rendering import (
    RemoteRenderingCreateSessionOperator,
    RemoteRenderingStopSessionOperator,
)
from airflow_provider_arr.triggers.remote_rendering import RemoteRenderingSessionTrigger
from tests.airflow.conftest import FakeTaskInstance, wait_for_status
from tests.helpers import FAST_RETRIES

DIALECTS = ["v1", "2021-01-01"]


@pytest.fixture(params=DIALECTS)
def dialect(request, emu, monkeypatch):
    for name, value in emu.env(**FAST_RETRIES, api_version=request.param).items():
        monkeypatch.setenv(name, value)
    return request.param


def create_op(**kwargs) -> RemoteRenderingCreateSessionOperator:
    kwargs.setdefault("max_lease_time", "1:00:00")
    kwargs.setdefault("poll_interval", 0.05)
    return RemoteRenderingCreateSessionOperator(task_id="create", **kwargs)


def try_of(number: int, task_id: str = "create") -> dict:
    return {"ti": FakeTaskInstance(task_id, try_number=number)}


def active(emu) -> set[str]:
    return {record.session_id for record in emu.state.active_sessions()}


def created(emu) -> int:
    return len(emu.state.sessions())


def test_a_retry_reconnects_to_the_session_its_dead_try_started(emu, dialect):
    first = create_op().execute(try_of(1))  # try 1 dies right after: its XCom is gone, its session runs
    second = create_op(wait_for_ready=True).execute(try_of(2))
    assert second == first
    assert created(emu) == 1
    assert active(emu) == {first}


def test_a_retry_never_keeps_two_sessions_alive(emu, dialect):
    first = create_op().execute(try_of(1))
    record = ownership.load(ownership.Owner.of(try_of(1)["ti"]))
    assert record is not None
    assert first in record.sessions
    # A second session of this task instance (as a race of an older version could leave): the retry
    # keeps one and stops the other.
    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

    with RemoteRenderingHook() as hook:
        extra = hook.create_session("1:00:00", session_id="extra-one" if dialect != "v1" else None)
    record.add(extra, 1)
    ownership.save(record)
    kept = create_op().execute(try_of(2))
    assert kept in {first, extra}
    assert len(active(emu) & {first, extra}) == 1


def test_a_v1_create_that_died_in_flight_is_settled_by_its_record(emu, monkeypatch):
    for name, value in emu.env(read_timeout=0.3, retry_min_wait=0.05, retry_max_time=2).items():
        monkeypatch.setenv(name, value)
    emu.state.add_fault("create", None, delay=1.0)  # the service starts it; the answer comes too late

    # ...and once the create is in flight, the account cannot be listed to find the session.
    def break_listing_once_the_create_is_sent() -> None:
        deadline = time.monotonic() + 5
        while emu.state.request_counts.get("create", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        emu.state.add_fault("list", 500, count=50)

    broken = threading.Thread(target=break_listing_once_the_create_is_sent)
    broken.start()
    with pytest.raises(RemoteRenderingSessionMayExistError):
        create_op().execute(try_of(1))
    broken.join()
    record = ownership.load(ownership.Owner.of(try_of(1)["ti"]))
    assert record is not None
    assert record.pending is not None  # what was sent is on record
    emu.state.clear_faults()
    time.sleep(1.0)
    session_id = create_op(wait_for_ready=True).execute(try_of(2))  # Airflow's retry
    assert created(emu) == 1  # the retry found the session instead of starting a second VM
    assert active(emu) == {session_id}


def test_the_teardown_stops_what_a_failed_create_started(emu, dialect):
    first = create_op().execute(try_of(1))  # try 1 dies; try 2 dies too, before it could return
    RemoteRenderingStopSessionOperator(task_id="stop", create_task_id="create").execute(try_of(1, "stop"))
    wait_for_status(emu, first, "Stopped")
    assert active(emu) == set()
    assert ownership.load(ownership.Owner.of(try_of(1)["ti"])) is None  # nothing left to watch


def test_the_teardown_takes_the_create_task_from_its_output(emu, dialect):
    from airflow.sdk import DAG

    with DAG("arr_shape", schedule=None):
        create = create_op()
        stop = RemoteRenderingStopSessionOperator(task_id="stop", session_id=create.output)
    assert stop.create_task_id == "create"


def test_a_killed_wait_of_an_old_try_leaves_a_session_the_new_try_claimed(emu, dialect):
    session_id = create_op().execute(try_of(1))
    owner = ownership.Owner.of(try_of(1)["ti"])
    record = ownership.load(owner)
    record.claimed_by_try = 2  # the cleared re-run has started and claimed the record
    ownership.save(record)
    trigger = RemoteRenderingSessionTrigger(
        session_id, "arr_default", 0.05, time.time() + 5, stop_on_kill=True, owner_key=owner.key, owner_try=1
    )
    asyncio.run(trigger.on_kill())
    assert session_id in active(emu)


def test_a_session_an_old_trigger_is_stopping_is_not_adopted(emu, dialect):
    session_id = create_op().execute(try_of(1))
    owner = ownership.Owner.of(try_of(1)["ti"])
    trigger = RemoteRenderingSessionTrigger(
        session_id, "arr_default", 0.05, time.time() + 5, stop_on_kill=True, owner_key=owner.key, owner_try=1
    )
    asyncio.run(trigger.on_kill())  # the kill came first: the session is being stopped
    new = create_op().execute(try_of(2))
    assert new != session_id
    assert active(emu) == {new}


class Janitor(RemoteRenderingSessionJanitorOperator):
    """The janitor with Airflow's answer about owners replaced (no metadata database here)."""

    finished: dict[str, bool] = {}

    def owner_verdict(self, owner):
        from airflow_provider_arr.ownership.evidence import Verdict

        done = self.finished.get(owner.run_id, False)
        return (
            Verdict("finished", "belongs to a DAG run that is failed")
            if done
            else Verdict("in_use", "running")
        )


def started_by(emu, run_id: str) -> str:
    return create_op().execute({"ti": FakeTaskInstance("create", run_id=run_id)})


def test_the_janitor_stops_sessions_of_finished_owners_and_reports_the_rest(emu, dialect):
    finished = started_by(emu, "run_finished")
    running = started_by(emu, "run_running")
    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

    with RemoteRenderingHook() as hook:
        stray = hook.create_session("1:00:00")  # started by hand: nobody's
    Janitor.finished = {"run_finished": True, "run_running": False}
    dry = Janitor(task_id="janitor", dry_run=True).execute({})
    assert [entry["session_id"] for entry in dry["would_stop"]] == [finished]
    assert active(emu) == {finished, running, stray}
    report = Janitor(task_id="janitor").execute({})
    assert [entry["session_id"] for entry in report["stopped"]] == [finished]
    assert [entry["session_id"] for entry in report["kept"]] == [running]
    assert [entry["session_id"] for entry in report["unattributed"]] == [stray]
    wait_for_status(emu, finished, "Stopped")
    assert active(emu) == {running, stray}
    report = Janitor(task_id="janitor", max_unowned_age="0:00:00").execute({})
    assert [entry["session_id"] for entry in report["stopped"]] == [stray]


def test_the_janitor_refuses_bad_input_before_any_call(emu):
    with pytest.raises(AirflowException, match=r"^arr_conn_ids: "):
        Janitor(task_id="janitor", arr_conn_ids=[]).execute({})
    with pytest.raises(AirflowException, match=r"^max_unowned_age: "):
        Janitor(task_id="janitor", max_unowned_age="2h").execute({})


def test_the_janitor_knows_sessions_created_through_another_connection_to_the_account(emu, monkeypatch):
    for name, value in emu.env("arr_alias", **FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    finished = started_by(emu, "run_finished")  # through arr_default
    Janitor.finished = {"run_finished": True}
    report = Janitor(task_id="janitor", arr_conn_ids=["arr_alias"]).execute({})
    assert [entry["session_id"] for entry in report["stopped"]] == [finished]
    assert report["unattributed"] == []


def test_the_janitor_of_one_dialect_leaves_the_other_dialects_sessions_to_its_own_sweep(emu, monkeypatch):
    """v1 and 2021-01-01 connections can share an account; a v1 sweep cannot address 2021 ids."""
    for conn_id, api_version in (("arr_v1", "v1"), ("arr_2021", "2021-01-01")):
        for name, value in emu.env(conn_id, api_version=api_version, **FAST_RETRIES).items():
            monkeypatch.setenv(name, value)
    v1 = create_op(arr_conn_id="arr_v1").execute({"ti": FakeTaskInstance("create", run_id="run_a")})
    named = create_op(arr_conn_id="arr_2021").execute({"ti": FakeTaskInstance("create", run_id="run_b")})
    Janitor.finished = {"run_a": True, "run_b": True}
    report = Janitor(task_id="janitor", arr_conn_ids=["arr_v1"]).execute({})
    assert [entry["session_id"] for entry in report["stopped"]] == [v1]
    assert [entry["session_id"] for entry in report["unattributed"]] == [named]
    assert named in active(emu)
    report = Janitor(task_id="janitor", arr_conn_ids=["arr_2021"]).execute({})
    assert [entry["session_id"] for entry in report["stopped"]] == [named]
    assert active(emu) == set()


def test_outside_the_task_runner_records_stay_in_the_process():
    ownership.use_ledger(None)
    assert isinstance(ownership.ledger(), ownership.MemoryLedger)
    assert ownership.ledger() is ownership.ledger()
