"""Stop billed Azure Remote Rendering sessions whose owner has finished: the net under every teardown.

Every 10 minutes, for each connection in ``arr_conn_ids``, it lists the account's sessions and stops
those whose owning create task (from the ownership records the create operator keeps in Airflow
Variables) belongs to a DAG run that has ended, or has failed for good. Sessions nobody owns are
reported in the log and the task's XCom, not stopped, unless ``max_unowned_age`` is set. Trigger it
with ``dry_run`` to see what it would do.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from airflow_provider_arr.operators.janitor import RemoteRenderingSessionJanitorOperator

with DAG(
    dag_id="arr_session_janitor",
    schedule=timedelta(minutes=10),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,  # the params arrive as a list and a bool
    params={
        "arr_conn_ids": Param(
            ["arr_default"],
            type="array",
            items={"type": "string"},
            minItems=1,
            description="Airflow connection ids of the ARR accounts to sweep",
        ),
        "dry_run": Param(False, type="boolean", description="Only report what would be stopped"),
    },
    tags=["example", "azure-remote-rendering"],
    doc_md=__doc__,
) as dag:
    # [START howto_session_janitor]
    RemoteRenderingSessionJanitorOperator(
        task_id="stop_orphaned_sessions",
        arr_conn_ids="{{ params.arr_conn_ids }}",
        dry_run="{{ params.dry_run }}",
    )
    # [END howto_session_janitor]
