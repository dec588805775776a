"""Convert a model into an ``.arrAsset``, render it on a session, and stop the session whatever happens.

``convert`` reads the model from a blob container and waits (deferred) until the service has written the
asset; it returns the asset's URI. ``create`` starts a session that preloads it on ``v1``; the
``2021-01-01`` API does not preload, so there the URI goes to the render step, which loads it. The DAG
runs unchanged on either API version (the connection's ``api_version`` extra decides).

Storage access: with a storage account linked to the ARR account no secret is needed (the default
here). Otherwise put container SAS tokens in a secrets backend or in Airflow Variables
``arr_input_sas`` (read + list on the input container) and ``arr_output_sas`` (write on the output
container): they are rendered into the task, masked in every log, and never pushed to XCom.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, TriggerRule, task

from airflow_provider_arr.operators.conversion import RemoteRenderingConvertAssetOperator
from airflow_provider_arr.operators.remote_rendering import (
    RemoteRenderingCreateSessionOperator,
    RemoteRenderingStopSessionOperator,
)
from airflow_provider_arr.sensors.remote_rendering import RemoteRenderingSessionReadySensor

from _render_manifest import POLL_INTERVAL, write_render_manifest

with DAG(
    dag_id="arr_convert_and_render",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "input_container_uri": Param(
            "https://arrexamples.blob.core.windows.net/models",
            type="string",
            description="The model's container: https://<storage account>.blob.core.windows.net/<container>",
        ),
        "input_asset_path": Param(
            "atrium/atrium.fbx",
            type="string",
            description="The model's path in that container (FBX, glTF/GLB or a point cloud)",
        ),
        "output_container_uri": Param(
            "https://arrexamples.blob.core.windows.net/assets",
            type="string",
            description="The blob container the .arrAsset is written to",
        ),
    },
    doc_md=__doc__,
    tags=["example", "azure-remote-rendering"],
) as dag:
    # [START howto_convert_asset]
    convert = RemoteRenderingConvertAssetOperator(
        task_id="convert",
        input_container_uri="{{ params.input_container_uri }}",
        input_asset_path="{{ params.input_asset_path }}",
        output_container_uri="{{ params.output_container_uri }}",
        output_blob_prefix="converted/{{ dag_run.run_id | replace(':', '-') | replace('+', '-') }}",
        input_sas="{{ var.value.get('arr_input_sas', '') }}",
        output_sas="{{ var.value.get('arr_output_sas', '') }}",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=3 * 3600,
        retries=1,
    )
    # [END howto_convert_asset]

    @task
    def preload(asset_uri: str) -> list[str]:
        """The models the session preloads: the asset on v1; none on 2021-01-01, which cannot."""
        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

        with RemoteRenderingHook() as hook:
            return [asset_uri] if hook.settings.api_version == "v1" else []

    create = RemoteRenderingCreateSessionOperator(
        task_id="create", max_lease_time="1:00:00", size="standard", models=preload(convert.output), retries=1
    )

    wait_ready = RemoteRenderingSessionReadySensor(
        task_id="wait_ready",
        session_id=create.output,
        deferrable=True,
        poke_interval=POLL_INTERVAL,
        timeout=30 * 60,
    )

    @task
    def render(session: dict[str, Any], asset_uri: str) -> str:
        """Render the converted asset on the Ready session (here: write a manifest)."""
        scene = asset_uri.rsplit("/", 1)[-1].removesuffix(".arrAsset")
        return write_render_manifest(scene, session, asset=asset_uri)

    stop = RemoteRenderingStopSessionOperator(task_id="stop", session_id=create.output)

    create >> wait_ready >> render(wait_ready.output, convert.output) >> stop
    stop.as_teardown(setups=create)
    stop.trigger_rule = TriggerRule.ALL_DONE  # run even if every create try failed
