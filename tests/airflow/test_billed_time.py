"""The stop teardown's billed time and the records it reads: never a reason to leave a session running.

Found by a session asked to break the billed-time work (issue 14): a damaged record, a damaged entry in
it, a stop of another session placed after a create, and a stop given only ``create_task_id``.
"""

from __future__ import annotations

import json

import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowException

from airflow_provider_arr import ownership
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.operators.remote_rendering import (
    RemoteRenderingCreateSessionOperator,
    RemoteRenderingStopSessionOperator,
)
from tests.airflow.conftest import FakeTaskInstance
from tests.helpers import FAST_RETRIES


@pytest.fixture(params=["v1", "2021-01-01"])
def dialect(request, emu, monkeypatch):
    for name, value in emu.env(**FAST_RETRIES, api_version=request.param).items():
        monkeypatch.setenv(name, value)
    return request.param


def active(emu) -> set[str]:
    return {record.session_id for record in emu.state.active_sessions()}


def ready_session(emu, size: str = "standard") -> tuple[str, ownership.Owner]:
    """A session the create task started and saw Ready (so its record has a Ready time)."""
    emu.state.start_delay = 0.1
    create = RemoteRenderingCreateSessionOperator(
        task_id="create", max_lease_time="1:00:00", size=size, poll_interval=0.05, wait_for_ready=True
    )
    ti = FakeTaskInstance("create")
    return create.execute({"ti": ti}), ownership.Owner.of(ti)


def stop(session_id: str | None = None, **kwargs) -> tuple[str, FakeTaskInstance]:
    operator = RemoteRenderingStopSessionOperator(task_id="stop", session_id=session_id, **kwargs)
    ti = FakeTaskInstance("stop")
    return operator.execute({"ti": ti}), ti


def test_a_damaged_record_does_not_keep_the_given_session_running(emu, dialect, ownership_records):
    session_id, owner = ready_session(emu)
    ownership_records.values[owner.key] = "not json"  # a Variable edited by hand, or cut short

    with pytest.raises(AirflowException, match="cannot be read") as error:
        stop(session_id, create_task_id="create")

    assert session_id not in active(emu)  # stopped first; then the task fails, saying why
    assert "janitor" in str(error.value)


@pytest.mark.parametrize("entry", [1, "x", ["a"], None])
def test_a_damaged_entry_gives_no_billed_time_and_no_error(emu, dialect, ownership_records, entry):
    session_id, owner = ready_session(emu)
    data = json.loads(ownership_records.values[owner.key])
    data["sessions"][session_id] = entry
    ownership_records.values[owner.key] = json.dumps(data)

    outcome, ti = stop(session_id, create_task_id="create")

    assert outcome == "Stopped"
    assert "billed_time" not in ti.xcom
    assert session_id not in active(emu)


def test_a_ready_time_without_offset_is_read_as_utc(emu, dialect, ownership_records):
    session_id, owner = ready_session(emu)
    data = json.loads(ownership_records.values[owner.key])
    data["sessions"][session_id]["ready_at"] = "2026-11-30T12:03:10"
    ownership_records.values[owner.key] = json.dumps(data)

    outcome, ti = stop(session_id, create_task_id="create")

    assert outcome == "Stopped"
    assert ti.xcom["billed_time"]["ready_at"] == "2026-11-30T12:03:10+00:00"


def test_a_stop_given_only_the_create_task_pushes_the_billed_time(emu, dialect, ownership_records):
    session_id, _ = ready_session(emu)

    outcome, ti = stop(create_task_id="create")

    assert outcome == "Stopped"
    assert session_id not in active(emu)
    assert ti.xcom["billed_time"]["session_id"] == session_id
    assert ti.xcom["billed_time"]["billed_seconds"] >= 0


@pytest.mark.parametrize("size", ["standard", "premium"])
@pytest.mark.parametrize("given", ["session_id", "create_task_id only"])
def test_the_billed_time_carries_the_size_so_a_finished_session_can_be_priced(
    emu, dialect, ownership_records, size, given
):
    session_id, _ = ready_session(emu, size)

    outcome, ti = stop(session_id if given == "session_id" else None, create_task_id="create")

    assert outcome == "Stopped"
    assert ti.xcom["billed_time"]["size"] == size


def test_a_stop_of_another_session_after_a_create_leaves_the_creates_session(emu, dialect, ownership_records):
    """Only session_id=create.output (or create_task_id) ties a plain stop to a create's record."""
    with RemoteRenderingHook() as hook:
        old = hook.create_session("1:00:00", session_id=None if dialect == "v1" else "an-older-session")
    with DAG("shape", schedule=None):
        create = RemoteRenderingCreateSessionOperator(task_id="create", max_lease_time="1:00:00")
        stop_old = RemoteRenderingStopSessionOperator(task_id="stop_old", session_id=old)
        create >> stop_old
    created = create.execute({"ti": FakeTaskInstance("create")})

    stop_old.execute({"ti": FakeTaskInstance("stop_old")})

    assert old not in active(emu)
    assert created in active(emu)
