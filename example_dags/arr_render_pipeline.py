"""Render one scene on one Azure Remote Rendering session, and stop the session whatever happens.

``create`` is the setup and ``stop`` its teardown: the session is stopped even when rendering fails
(try the ``fail_render`` param), and the run is still marked failed. The teardown's trigger rule is
``all_done``, so it also runs when every try of ``create`` failed: it then stops whatever those tries
recorded as started (a try killed mid-create, say). The ``arr_session_janitor`` DAG is the net under it.

The session is billed from Ready until it stops, so nothing stands between them and the work: the
render starts as soon as the sensor sees Ready (``extend`` runs beside it), and the teardown right
after. ``make bench-billed`` measures the idle seconds that remain.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, TriggerRule, task

from airflow_provider_arr.operators.remote_rendering import (
    RemoteRenderingCreateSessionOperator,
    RemoteRenderingExtendSessionOperator,
    RemoteRenderingStopSessionOperator,
)
from airflow_provider_arr.sensors.remote_rendering import RemoteRenderingSessionReadySensor

from _render_manifest import POLL_INTERVAL, write_render_manifest

with DAG(
    dag_id="arr_render_pipeline",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "scene": Param("atrium", type="string", description="The scene the render step renders"),
        "fail_render": Param(False, type="boolean", description="Fail the render on purpose"),
        "render_seconds": Param(
            0, type="integer", minimum=0, description="Seconds the stand-in render takes (0: at once)"
        ),
    },
    tags=["example", "azure-remote-rendering"],
    doc_md=__doc__,
) as dag:
    # [START howto_create_session]
    create = RemoteRenderingCreateSessionOperator(
        task_id="create", max_lease_time="1:00:00", size="standard", retries=1
    )
    # [END howto_create_session]

    # [START howto_session_ready_sensor]
    wait_ready = RemoteRenderingSessionReadySensor(
        task_id="wait_ready",
        session_id=create.output,
        deferrable=True,
        poke_interval=POLL_INTERVAL,
        timeout=30 * 60,
    )
    # [END howto_session_ready_sensor]

    # [START howto_extend_session]
    extend = RemoteRenderingExtendSessionOperator(
        task_id="extend", session_id=create.output, extend_by=timedelta(minutes=30)
    )
    # [END howto_extend_session]

    @task
    def render(session: dict[str, Any], params: dict[str, Any] | None = None) -> str:
        """Render the scene on the Ready session (here: write a manifest)."""
        params = params or {}
        return write_render_manifest(
            params["scene"], session, fail=params["fail_render"], seconds=params.get("render_seconds", 0)
        )

    # [START howto_stop_session]
    # session_id=create.output also tells the stop which create task's records to read (every try).
    stop = RemoteRenderingStopSessionOperator(task_id="stop", session_id=create.output)

    # The session is billed from Ready: render starts at once, and the lease is extended alongside.
    rendered = render(wait_ready.output)
    create >> wait_ready >> [extend, rendered] >> stop
    stop.as_teardown(setups=create)
    stop.trigger_rule = TriggerRule.ALL_DONE  # run even if every create try failed
    # [END howto_stop_session]
