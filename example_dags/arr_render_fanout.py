"""Render several scenes in parallel: one Azure Remote Rendering session per scene.

Dynamic task mapping creates one session per scene (on v1 each preloads that scene's model; 2021-01-01
cannot preload), waits in the triggerer until each is Ready, renders each scene on its own session, and
stops every session in a mapped teardown, even when a render fails. It runs unchanged on both dialects;
2021-01-01 is the one to use for many concurrent creates (see the README's reliability section).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, TriggerRule, task

from airflow_provider_arr.operators.remote_rendering import (
    RemoteRenderingCreateSessionOperator,
    RemoteRenderingStopSessionOperator,
)
from airflow_provider_arr.sensors.remote_rendering import RemoteRenderingSessionReadySensor

from _render_manifest import POLL_INTERVAL, write_render_manifest

#: Names each mapped task instance after its scene in the UI: every mapped task here follows the order
#: of ``scenes`` (the i-th create, wait, render and stop belong to the i-th scene).
SCENE_NAME = "{{ params.scenes[ti.map_index] }}"


def model_urls(scene: str) -> list[str]:
    """The assets a scene's session preloads: its model on v1; none on 2021-01-01, which cannot preload.

    Runs in each create task (``XComArg.map`` is applied where the value is used), so the connection's
    ``api_version`` decides at run time and the DAG runs unchanged on either dialect.
    """
    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

    with RemoteRenderingHook() as hook:
        preloads = hook.dialect.api_version == "v1"
    return [f"https://example.blob.core.windows.net/arr-models/{scene}.arrAsset"] if preloads else []


with DAG(
    dag_id="arr_render_fanout",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "scenes": Param(
            ["atrium", "engine", "city"],
            type="array",
            minItems=1,
            description="The scenes to render, one session each; the mapped tasks are named after them",
        )
    },
    doc_md=__doc__,
    tags=["example", "azure-remote-rendering"],
) as dag:

    @task
    def list_scenes(params: dict[str, Any] | None = None) -> list[str]:
        """The scenes to render, one session each."""
        return list((params or {})["scenes"])

    @task(map_index_template=SCENE_NAME)
    def render(scene_and_session: tuple[str, dict[str, Any]]) -> str:
        """Render one scene on its own Ready session (here: write a manifest)."""
        scene, session = scene_and_session
        return write_render_manifest(scene, session)

    scenes = list_scenes()
    create = RemoteRenderingCreateSessionOperator.partial(
        task_id="create", max_lease_time="1:00:00", map_index_template=SCENE_NAME
    ).expand(models=scenes.map(model_urls))
    wait_ready = RemoteRenderingSessionReadySensor.partial(
        task_id="wait_ready",
        poke_interval=POLL_INTERVAL,
        timeout=30 * 60,
        deferrable=True,
        map_index_template=SCENE_NAME,
    ).expand(session_id=create.output)
    stop = RemoteRenderingStopSessionOperator.partial(task_id="stop", map_index_template=SCENE_NAME).expand(
        session_id=create.output
    )

    render.expand(scene_and_session=scenes.zip(wait_ready.output)) >> stop
    stop.as_teardown(setups=create)
    stop.trigger_rule = TriggerRule.ALL_DONE  # run even if every create index failed
