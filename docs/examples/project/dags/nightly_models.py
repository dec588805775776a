"""nightly_models: every night, convert each model and render it on its own session.

One mapped task group per model: convert -> create -> wait Ready -> render -> stop (the teardown).
Airflow keeps the tasks of each model's group apart, so a model whose conversion fails fails only its
own group: the other models still render, and every session that was started is stopped. The DAG
runs unchanged on both API versions (the connection's ``api_version`` extra decides).
"""

import json
import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Connection, Param, TriggerRule, task, task_group

from airflow_provider_arr.operators.conversion import RemoteRenderingConvertAssetOperator
from airflow_provider_arr.operators.remote_rendering import (
    RemoteRenderingCreateSessionOperator,
    RemoteRenderingStopSessionOperator,
)
from airflow_provider_arr.sensors.remote_rendering import RemoteRenderingSessionReadySensor

#: Seconds between two status reads: the service suggests 5 to 10. The tests set 0.1.
POLL_INTERVAL = float(os.environ.get("ARR_EXAMPLE_POLL_INTERVAL", "10"))
MODELS_CONTAINER = "https://arrexamples.blob.core.windows.net/models"
ASSETS_CONTAINER = "https://arrexamples.blob.core.windows.net/assets"

with DAG(
    dag_id="nightly_models",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "models": Param(
            ["atrium/atrium.fbx", "engine/engine.glb", "city/city.gltf"],
            type="array",
            minItems=1,
            description="The models to convert and render, as paths in the models container",
        )
    },
    tags=["azure-remote-rendering"],
) as dag:

    @task
    def list_models(params: dict[str, Any] | None = None) -> list[str]:
        """The models of tonight's run, one task group each."""
        return list((params or {})["models"])

    @task
    def preload(asset_uri: str) -> list[str]:
        """What the session preloads: the asset on v1; nothing on 2021-01-01, which cannot preload."""
        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

        with RemoteRenderingHook() as hook:
            return [asset_uri] if hook.settings.api_version == "v1" else []

    @task
    def render(session: dict[str, Any], asset_uri: str) -> str:
        """Your rendering work, on the Ready session (here it only says what it would render)."""
        print(f"Rendering {asset_uri} on {session['hostname']}")
        return asset_uri

    # Each task instance of a model's group is named after its model in the UI, not 0, 1, 2.
    @task_group(group_id="model", default_args={"map_index_template": "{{ params.models[ti.map_index] }}"})
    def convert_and_render(model_path: str) -> Any:
        """One model, from its source file to a stopped session."""
        convert = RemoteRenderingConvertAssetOperator(
            task_id="convert",
            input_container_uri=MODELS_CONTAINER,
            input_asset_path=model_path,
            output_container_uri=ASSETS_CONTAINER,
            output_blob_prefix="nightly/{{ ds }}",
            deferrable=True,
            poll_interval=POLL_INTERVAL,
            retries=1,
        )
        create = RemoteRenderingCreateSessionOperator(
            task_id="create", max_lease_time="1:00:00", models=preload(convert.output), retries=1
        )
        wait_ready = RemoteRenderingSessionReadySensor(
            task_id="wait_ready",
            session_id=create.output,
            deferrable=True,
            poke_interval=POLL_INTERVAL,
            timeout=30 * 60,
        )
        stop = RemoteRenderingStopSessionOperator(task_id="stop", session_id=create.output)

        create >> wait_ready >> render(wait_ready.output, convert.output) >> stop
        stop.as_teardown(setups=create)
        stop.trigger_rule = TriggerRule.ALL_DONE  # run even if every create try failed
        return stop  # what the billing task below waits for (a group's own leaves skip its teardowns)

    # [billing]
    @task(trigger_rule=TriggerRule.ALL_DONE)  # after every stop, whatever happened to the models
    def billed_total(ti: Any = None) -> dict[str, Any]:
        """The run's billed time and cost: the sum of its stops' billed_time XComs, every map index."""
        billed = [b for b in ti.xcom_pull(task_ids=["model.stop"], key="billed_time") if b]
        seconds = sum(b["billed_seconds"] for b in billed)
        cost: float | None = 0.0
        for b in billed:  # price_per_hour of the session's connection, e.g. {"standard": 2.5}
            prices = Connection.get(b["arr_conn_id"]).extra_dejson.get("price_per_hour") or {}
            prices = json.loads(prices) if isinstance(prices, str) else prices  # JSON text in a URI
            price = {size.lower(): p for size, p in prices.items()}.get(b.get("size", "standard"))
            cost = None if cost is None or price is None else cost + b["billed_seconds"] / 3600 * price
        total = {
            "sessions": len(billed),
            "billed_seconds": round(seconds, 1),
            "billed": str(timedelta(seconds=round(seconds))),
            "cost": None if cost is None else round(cost, 2),  # no price for a session: no cost
        }
        print(f"Run {ti.run_id}: {total['sessions']} sessions billed {total['billed']}, cost {total['cost']}")
        return total

    stops = convert_and_render.expand(model_path=list_models())
    stops >> billed_total()
    # [billing]
