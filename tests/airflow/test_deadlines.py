"""Every deadline the user set bounds every mode (reported: execution_timeout=4 s did not bound a
deferred create, which succeeded after 26.6 s; Airflow does not enforce execution_timeout while a task
is deferred). A create that gives up stops its session."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from airflow_provider_arr._compat import AirflowException
from airflow_provider_arr.operators.remote_rendering import RemoteRenderingCreateSessionOperator
from airflow_provider_arr.sensors.remote_rendering import RemoteRenderingSessionReadySensor
from tests.airflow.conftest import wait_for_status
from tests.airflow_compat import TaskDeferred


def deferred(task, context) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as caught:
        task.execute(context)
    return caught.value


def waiting_task(kind: str, **deadlines):
    """A deferrable create that waits, or a deferrable sensor on a Starting session."""
    if kind == "create":
        return RemoteRenderingCreateSessionOperator(
            task_id="create", max_lease_time="1:00:00", wait_for_ready=True, deferrable=True, **deadlines
        )
    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

    with RemoteRenderingHook() as hook:
        session_id = hook.create_session("1:00:00")
    return RemoteRenderingSessionReadySensor(
        task_id="wait", session_id=session_id, deferrable=True, **deadlines
    )


@pytest.mark.parametrize("kind", ["create", "sensor"])
@pytest.mark.parametrize(
    ("timeout", "execution_timeout", "bound"),
    [(600, timedelta(seconds=4), 4), (3, timedelta(minutes=10), 3), (600, None, 600)],
    ids=["execution_timeout-nearer", "timeout-nearer", "timeout-only"],
)
def test_a_deferred_wait_lasts_until_the_nearer_deadline(
    emu, context, kind, timeout, execution_timeout, bound
):
    emu.state.start_delay = 60
    task = waiting_task(kind, timeout=timeout, execution_timeout=execution_timeout)
    before = time.time()
    trigger = deferred(task, context).trigger
    assert before + bound - 1 <= trigger.end_time <= time.time() + bound


def test_a_deferred_create_that_hits_execution_timeout_stops_its_session_and_says_which_deadline(
    emu, context
):
    import asyncio

    emu.state.start_delay = 60
    create = RemoteRenderingCreateSessionOperator(
        task_id="create",
        max_lease_time="1:00:00",
        wait_for_ready=True,
        deferrable=True,
        poll_interval=0.2,
        timeout=600,
        execution_timeout=timedelta(seconds=1),
    )
    started = time.monotonic()
    trigger = deferred(create, context).trigger

    async def first_event():
        async for event in trigger.run():
            return event.payload
        return None

    payload = asyncio.run(first_event())
    assert payload["status"] == "timeout"
    assert time.monotonic() - started < 30  # far below timeout=600: the execution_timeout applied
    with pytest.raises(AirflowException, match=r"execution_timeout 1 s"):
        create.execute_complete(context, payload)
    wait_for_status(emu, trigger.session_id, "Stopped")
