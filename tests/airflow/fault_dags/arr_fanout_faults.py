"""A flat fan-out (as ``arr_render_fanout``) whose mapped indexes fail where the run's conf says.

conf: ``{"scenes": [...], "fail": {"create": [i, ...], "create_lost": [...], "ready": [...], ...}}``
- ``create``: the create of index i fails after the service started its session (the id is recorded);
- ``create_lost``: its create call's answer is lost after the service acted (v1: a pending record only);
- ``unpushed``: the create of index i dies after its session started and was recorded, before any XCom
  (so every later value shifts by one position);
- ``ready``, ``render``: the Ready sensor, or the render, of map index i fails.
Airflow then expands the mapped sensor and stop over the create's return values by position.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, TriggerRule, task

from airflow_provider_arr._compat import AirflowFailException
from airflow_provider_arr.exceptions import RemoteRenderingSessionMayExistError
from airflow_provider_arr.operators.remote_rendering import (
    RemoteRenderingCreateSessionOperator,
    RemoteRenderingStopSessionOperator,
)
from airflow_provider_arr.sensors.remote_rendering import RemoteRenderingSessionReadySensor


def _failing(context: Any, step: str) -> bool:
    return int(context["ti"].map_index) in (context["params"]["fail"] or {}).get(step, [])


def standard(scene: str) -> str:
    """Every scene's session is standard: one mapped value per scene."""
    return "standard"


class FaultyCreate(RemoteRenderingCreateSessionOperator):
    """The create, failing where the conf says."""

    def execute(self, context: Any) -> str:
        if _failing(context, "unpushed"):  # killed after its session started, before any XCom
            self._start_unpushed(context)
        if _failing(context, "create_lost"):
            sent = self.hook.create_session

            def lost(*args: Any, **kwargs: Any) -> str:
                sent(*args, **kwargs)
                raise RemoteRenderingSessionMayExistError("create_session", hint="the answer was lost")

            self.hook.create_session = lost  # type: ignore[method-assign]
        session_id = super().execute(context)
        if _failing(context, "create"):
            raise AirflowFailException(f"create fails after starting session {session_id}")
        return session_id

    def _start_unpushed(self, context: Any) -> None:
        """What a try killed at the worst instant leaves: a started session, its record, no XCom."""
        from airflow_provider_arr import ownership
        from airflow_provider_arr.operators.remote_rendering import task_instance_session_id

        owner = ownership.Owner.of(context["ti"])
        record = ownership.OwnershipRecord(owner, self.arr_conn_id, self.hook.dialect.api_version)
        named = task_instance_session_id(context) if self.hook.dialect.client_names_sessions else None
        record.add(self.hook.create_session("1:00:00", session_id=named), 1)
        ownership.save(record)
        raise AirflowFailException("killed before any XCom")


class FaultySensor(RemoteRenderingSessionReadySensor):
    """The sensor, failing where the conf says."""

    def poke(self, context: Any) -> Any:
        result = super().poke(context)
        if _failing(context, "ready"):
            raise AirflowFailException("the sensor fails")
        return result


with DAG(
    dag_id="arr_fanout_faults",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"scenes": Param(["a", "b", "c"], type="array"), "fail": Param({}, type="object")},
) as dag:

    @task
    def list_scenes(params: dict[str, Any] | None = None) -> list[str]:
        return list((params or {})["scenes"])

    @task
    def render(session: dict[str, Any], **context: Any) -> str:
        if _failing(context, "render"):
            raise AirflowFailException("the render fails")
        return str(session["session_id"])

    scenes = list_scenes()
    create = FaultyCreate.partial(task_id="create", max_lease_time="1:00:00", retries=0).expand(
        size=scenes.map(standard)
    )
    ready = FaultySensor.partial(task_id="ready", poke_interval=0.1, timeout=60).expand(
        session_id=create.output
    )
    stop = RemoteRenderingStopSessionOperator.partial(task_id="stop", retries=0).expand(
        session_id=create.output
    )
    render.expand(session=ready.output) >> stop
    stop.as_teardown(setups=create)
    stop.trigger_rule = TriggerRule.ALL_DONE  # run even if every create index failed
