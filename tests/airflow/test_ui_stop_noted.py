"""A session stopped from the operations view (issue 20): the teardown and the janitor report it, never fail.

The view stops the session and notes ``stopped_from_ui`` (user, time) in its ownership record; the stop
teardown then finds it already ended, says who stopped it, and still pushes the billed time, counted to
the page's stop. The janitor forgets the record's ended session and says the same.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow_provider_arr import ownership
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.operators.janitor import RemoteRenderingSessionJanitorOperator
from airflow_provider_arr.operators.remote_rendering import (
    RemoteRenderingCreateSessionOperator,
    RemoteRenderingStopSessionOperator,
)
from airflow_provider_arr.ownership import evidence
from tests.airflow.conftest import FakeTaskInstance


def stopped_from_the_page(emu) -> tuple[str, ownership.Owner]:
    """A Ready session of a create task, stopped by "admin" from the view, noted as the view notes it."""
    emu.state.start_delay = 0.05
    create = RemoteRenderingCreateSessionOperator(
        task_id="create", max_lease_time="1:00:00", poll_interval=0.05, wait_for_ready=True
    )
    ti = FakeTaskInstance("create")
    session_id = create.execute({"ti": ti})
    owner = ownership.Owner.of(ti)
    RemoteRenderingHook().stop_session(session_id)
    record = ownership.load(owner)
    assert record is not None
    record.sessions[session_id][ownership.UI_STOP] = {"by": "admin", "at": datetime.now(UTC).isoformat()}
    ownership.save(record)
    return session_id, owner


def test_the_teardown_reports_a_stop_from_the_page_and_pushes_its_billed_time(emu, debug_logs):
    session_id, _owner = stopped_from_the_page(emu)
    ti = FakeTaskInstance("stop")
    outcome = RemoteRenderingStopSessionOperator(
        task_id="stop", session_id=session_id, create_task_id="create"
    ).execute({"ti": ti})
    assert outcome in ("Stopping", "Stopped")
    assert f"Session {session_id} was stopped from the Remote Rendering view by admin" in debug_logs()
    assert ti.xcom["billed_time"]["session_id"] == session_id
    assert ti.xcom["billed_time"]["arr_conn_id"] == "arr_default"


def test_the_janitor_forgets_a_session_stopped_from_the_page_and_says_who(emu, debug_logs):
    session_id, owner = stopped_from_the_page(emu)

    class Finished:
        def dag_run_state(self, dag_id, run_id):
            return "success"

        def dag_run_exists(self, dag_id, run_id):
            return True

        def task_states(self, dag_id, run_id, task_id):
            return {-1: "success"}

    evidence.use_airflow_state(Finished())
    try:
        report = RemoteRenderingSessionJanitorOperator(task_id="janitor").execute({})
    finally:
        evidence.use_airflow_state(None)
    assert not report["stopped"]
    assert f"Session {session_id} was stopped from the Remote Rendering view by admin" in debug_logs()
    assert ownership.load(owner) is None  # its only session ended: the record is gone
