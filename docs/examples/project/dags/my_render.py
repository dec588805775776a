"""my_render: one session, from create to a teardown stop (the getting-started DAG)."""

from datetime import datetime

from airflow.sdk import DAG, TriggerRule

from airflow_provider_arr.operators.remote_rendering import (
    RemoteRenderingCreateSessionOperator,
    RemoteRenderingStopSessionOperator,
)
from airflow_provider_arr.sensors.remote_rendering import RemoteRenderingSessionReadySensor

with DAG("my_render", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    create = RemoteRenderingCreateSessionOperator(task_id="create", max_lease_time="1:00:00")
    ready = RemoteRenderingSessionReadySensor(
        task_id="ready", session_id=create.output, poke_interval=5, deferrable=True
    )
    stop = RemoteRenderingStopSessionOperator(task_id="stop", session_id=create.output)
    create >> ready >> stop
    stop.as_teardown(setups=create)
    stop.trigger_rule = TriggerRule.ALL_DONE  # also when every create try failed: it may have started one
