"""The crash suite's DAGs (tests/e2e/test_crash.py): one per scenario and API dialect.

Each is the README's pattern: ``create >> render >> stop`` with ``stop.as_teardown(setups=create)`` and
the teardown's trigger rule ``all_done``,
``retries=1`` on ``create``. The blocking, deferrable or sensor-waited create is the scenario's
(see ``_arr_crash_spec.py``); ``render`` checks that its session is Ready, "renders" for a while
(sleeps), and checks again that the session is still Ready.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timedelta

from airflow.sdk import DAG, TriggerRule, task

from airflow_provider_arr.operators.remote_rendering import (
    RemoteRenderingCreateSessionOperator,
    RemoteRenderingStopSessionOperator,
)
from airflow_provider_arr.sensors.remote_rendering import RemoteRenderingSessionReadySensor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _arr_crash_spec import (
    DIALECTS,
    POLL_INTERVAL,
    RETRY_DELAY_SECONDS,
    SCENARIOS,
    dag_id,
    lease_minutes,
)


def _status(arr_conn_id: str, session_id: str) -> str:
    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

    hook = RemoteRenderingHook(arr_conn_id=arr_conn_id)
    status = hook.get_session(session_id).status
    return str(getattr(status, "value", status))


@task
def render(session_id: str, arr_conn_id: str, seconds: float) -> str:
    """Use the Ready session for ``seconds``; fail if it is not Ready at the start or at the end."""
    status = _status(arr_conn_id, session_id)
    if status != "Ready":
        raise RuntimeError(f"session {session_id} is {status}, not Ready, when the render starts")
    print(f"rendering on session {session_id} for {seconds:g} s")
    time.sleep(seconds)
    status = _status(arr_conn_id, session_id)
    if status != "Ready":
        raise RuntimeError(f"session {session_id} became {status} while the render used it")
    return session_id


for _scenario, _spec in SCENARIOS.items():
    for _dialect, (_conn_id, _api_version) in DIALECTS.items():
        with DAG(
            dag_id=dag_id(_scenario, _dialect),
            schedule=None,
            start_date=datetime(2026, 1, 1),
            catchup=False,
            tags=["arr-crash-suite"],
            # Only create retries (retries=1 below); but a task cleared while it runs (render in
            # scenario 6) comes back as a retry, and the default delay of 5 minutes would stall the run.
            default_args={"retry_delay": timedelta(seconds=RETRY_DELAY_SECONDS)},
            doc_md=f"Crash scenario {_spec['number']} ({_scenario}) on {_api_version}",
        ) as _dag:
            _mode = _spec["create"]
            create = RemoteRenderingCreateSessionOperator(
                task_id="create",
                arr_conn_id=_conn_id,
                max_lease_time=timedelta(minutes=lease_minutes(_scenario, _dialect)),
                size="standard",
                wait_for_ready=_mode != "sensor",
                deferrable=_mode == "deferrable",
                poll_interval=POLL_INTERVAL,
                timeout=600,
                retries=1,
                retry_delay=timedelta(seconds=RETRY_DELAY_SECONDS),
            )
            work = render(create.output, _conn_id, float(_spec["render"]))  # type: ignore[arg-type]
            if _mode == "sensor":
                wait_ready = RemoteRenderingSessionReadySensor(
                    task_id="wait_ready",
                    arr_conn_id=_conn_id,
                    session_id=create.output,
                    deferrable=True,
                    poke_interval=POLL_INTERVAL,
                    timeout=600,
                )
                create >> wait_ready >> work
            stop = RemoteRenderingStopSessionOperator(
                task_id="stop", arr_conn_id=_conn_id, session_id=create.output
            )
            create >> work >> stop
            stop.as_teardown(setups=create)
            stop.trigger_rule = TriggerRule.ALL_DONE  # the README's shape: also when every create try failed
        globals()[_dag.dag_id] = _dag
