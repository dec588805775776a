"""Destructive decisions act only on positive evidence (issue #18, rule 1), as a table of what Airflow says.

Airflow's answers are scripted (a fake of the three Task SDK reads: the run's state, whether the run
exists, the task's states), because an API server that blinks on one read cannot be provoked from a
unit test; the sessions are real, on the emulator's loopback socket. Each row says what was read and
whether the janitor, or the stop teardown, may stop the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException

from airflow_provider_arr.operators.janitor import RemoteRenderingSessionJanitorOperator
from airflow_provider_arr.operators.remote_rendering import (
    RemoteRenderingCreateSessionOperator,
    RemoteRenderingStopSessionOperator,
)
from airflow_provider_arr.ownership import evidence
from tests.airflow.conftest import FakeTaskInstance
from tests.helpers import FAST_RETRIES


class Blink(Exception):
    """A read that failed (the API server blinked)."""


class ScriptedAirflow:
    """What Airflow answers: a value, or an exception class to raise."""

    def __init__(self, run_state: Any = "running", exists: Any = True, task_state: Any = "running") -> None:
        self.run_state, self.exists, self.task_state = run_state, exists, task_state

    @staticmethod
    def _answer(value: Any) -> Any:
        if isinstance(value, type) and issubclass(value, BaseException):
            raise value("read failed")
        return value

    def dag_run_state(self, dag_id: str, run_id: str) -> str:
        return evidence.state_name(self._answer(self.run_state))

    def dag_run_exists(self, dag_id: str, run_id: str) -> bool:
        return bool(self._answer(self.exists))

    def task_states(self, dag_id: str, run_id: str, task_id: str) -> dict[int, str]:
        if task_id != "create":  # the stop's own (unmapped) instance
            return {-1: "running"}
        return {-1: evidence.state_name(self._answer(self.task_state))}


@pytest.fixture(params=["v1", "2021-01-01"])
def dialect(request, emu, monkeypatch):
    for name, value in emu.env(**FAST_RETRIES, api_version=request.param).items():
        monkeypatch.setenv(name, value)
    return request.param


@pytest.fixture
def airflow() -> Iterator[ScriptedAirflow]:
    scripted = ScriptedAirflow()
    evidence.use_airflow_state(scripted)
    yield scripted
    evidence.use_airflow_state(None)


def started(emu) -> str:
    create = RemoteRenderingCreateSessionOperator(task_id="create", max_lease_time="1:00:00")
    return create.execute({"ti": FakeTaskInstance("create")})


def active(emu) -> set[str]:
    return {record.session_id for record in emu.state.active_sessions()}


#: (run state, run exists, task state) -> the janitor's bucket. An exception class is a failed read.
JANITOR = {
    "run read fails, the run exists": (Blink, True, "running", "kept"),
    "run read times out, exists read fails": (TimeoutError, ConnectionError, "running", "kept"),
    "run read fails, exists read fails the same": (Blink, Blink, "running", "kept"),
    "run state this code does not know": ("archived", True, "running", "kept"),
    "run state empty": ("", True, "running", "kept"),
    "run state none": (None, True, "running", "kept"),
    "run running, task read fails": ("running", True, Blink, "kept"),
    "run running, task running": ("running", True, "running", "kept"),
    "run running, task up for retry": ("running", True, "up_for_retry", "kept"),
    "run running, task deferred": ("running", True, "deferred", "kept"),
    "run running, task restarting": ("running", True, "restarting", "kept"),
    "run running, task has no state": ("running", True, None, "kept"),
    "run running, task succeeded (its session is in use downstream)": ("running", True, "success", "kept"),
    "run queued, task failed": ("queued", True, "failed", "stopped"),
    "run running, task upstream failed": ("running", True, "upstream_failed", "stopped"),
    "run success": ("success", True, "success", "stopped"),
    "run failed": ("failed", True, "failed", "stopped"),
    "run failed, as an enum's text": ("DagRunState.FAILED", True, "failed", "stopped"),
    "run deleted (Airflow has no such run)": (Blink, False, Blink, "unattributed"),
}


@pytest.mark.parametrize("row", list(JANITOR))
def test_the_janitor_stops_only_on_positive_evidence(emu, dialect, airflow, row):
    airflow.run_state, airflow.exists, airflow.task_state, bucket = JANITOR[row]
    session_id = started(emu)
    report = RemoteRenderingSessionJanitorOperator(task_id="janitor").execute({})
    assert [entry["session_id"] for entry in report[bucket]] == [session_id]
    assert (session_id in active(emu)) is (bucket != "stopped")
    if bucket == "kept":
        assert report["kept"][0]["reason"]  # says why it was kept


def test_a_session_of_a_deleted_run_is_ended_by_max_unowned_age(emu, dialect, airflow):
    airflow.run_state, airflow.exists = Blink, False
    session_id = started(emu)
    report = RemoteRenderingSessionJanitorOperator(task_id="janitor", max_unowned_age="0:00:00").execute({})
    assert [entry["session_id"] for entry in report["stopped"]] == [session_id]
    assert "no longer exists" in report["stopped"][0]["reason"]


#: The create's state as the stop teardown reads it -> whether the teardown stops its recorded session.
TEARDOWN = {
    "create failed": ("failed", "stopped"),
    "create succeeded": ("success", "stopped"),
    "create upstream failed": ("upstream_failed", "stopped"),
    "create running (cleared and re-running)": ("running", "kept"),
    "create up for retry": ("up_for_retry", "kept"),
    "create deferred": ("deferred", "kept"),
    "create queued": ("queued", "kept"),
    "create in a state this code does not know": ("paused_by_a_newer_airflow", "kept"),
    "create's state cannot be read": (Blink, "kept, and the stop fails to be retried"),
}


@pytest.mark.parametrize("row", list(TEARDOWN))
def test_the_teardown_stops_what_a_record_holds_only_once_the_create_try_is_over(emu, dialect, airflow, row):
    airflow.task_state, expected = TEARDOWN[row]
    session_id = started(emu)
    stop = RemoteRenderingStopSessionOperator(task_id="stop", create_task_id="create")
    context = {"ti": FakeTaskInstance("stop")}
    if expected.startswith("kept, and"):
        with pytest.raises(AirflowException, match="kept, not stopped"):
            stop.execute(context)
    else:
        stop.execute(context)
    assert (session_id in active(emu)) is expected.startswith("kept")


class FailingLedger:
    """A ledger whose reads fail (the API server blinked) or return what is given."""

    def __init__(self, inner: Any, answer: Any) -> None:
        self.inner, self.answer = inner, answer

    def get(self, key: str) -> str | None:
        if isinstance(self.answer, type) and issubclass(self.answer, BaseException):
            raise self.answer("read failed")
        return self.answer if isinstance(self.answer, str) else self.inner.get(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


#: What the killed trigger reads of its create's record -> whether it stops the session.
ON_KILL = {
    "record read fails": (Blink, True),
    "record read times out": (TimeoutError, True),
    "record is not JSON": ("{not json", True),
    "record is JSON of something else": ('{"owner": 3}', True),
    "record claimed by a newer try": ("newer", True),
    "record is this try's": (None, False),
}


@pytest.mark.parametrize("row", list(ON_KILL))
async def test_a_killed_trigger_stops_only_when_the_record_says_the_session_is_still_its_own(
    emu, dialect, row
):
    import time

    from airflow_provider_arr import ownership
    from airflow_provider_arr.triggers.remote_rendering import RemoteRenderingSessionTrigger

    answer, kept = ON_KILL[row]
    session_id = await asyncio_to_thread(started, emu)
    owner = ownership.Owner.of(FakeTaskInstance("create"))
    if answer == "newer":
        record = ownership.load(owner)
        record.claimed_by_try = 2
        ownership.save(record)
        answer = None
    store = ownership.ledger()
    ownership.use_ledger(FailingLedger(store, answer))
    try:
        trigger = RemoteRenderingSessionTrigger(
            session_id,
            "arr_default",
            0.05,
            time.time() + 5,
            stop_on_kill=True,
            owner_key=owner.key,
            owner_try=1,
        )
        await trigger.on_kill()
    finally:
        ownership.use_ledger(store)
    assert (session_id in active(emu)) is kept


async def asyncio_to_thread(function: Any, *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(function, *args)
