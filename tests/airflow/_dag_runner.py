"""Run the example DAGs with ``dag.test()`` in a separate interpreter, one request at a time.

Used by ``test_example_dags.py``. Airflow reads ``AIRFLOW_HOME`` and its database settings once per
process, and importing it costs seconds, so one child process with a throwaway home serves every
run of the module: it reads one JSON request per line on stdin and prints ``RESULT <json>`` on stdout.
The emulator keeps running in the pytest process, which checks what each run did to the sessions.

Requests: ``{"command": "import-check"}`` (optionally with ``"dag_folder"``) or
``{"command": "run", "dag_id": ..., "conf": {...}, "deferrable": bool, "output_dir": path}``, with
optional ``"env": {...}`` (set before the run), ``"task_overrides": {task_id: {attribute: value}}``
(set on the tasks after the deferrable switch, e.g. a sensor's ``timeout``) and ``"inspect": true``
(the result then also holds every XCom and rendered template field of the run, as JSON text), and
``"dag_folder"`` (a folder of test DAGs instead of ``example_dags/``).
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
# Airflow puts a DAG bundle's folder on sys.path where it parses or runs its DAGs (the DAGs import
# their helper module from it); this runner loads the folder with a plain DagBag, so it does that itself.
sys.path.append(str(EXAMPLE_DAGS))


def dag_bag_class() -> Any:
    """Airflow's DagBag: in ``airflow.dag_processing.dagbag`` since 3.2, ``airflow.models.dagbag`` in 3.1."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag
    return DagBag


def import_check(dag_folder: str | None = None) -> dict[str, Any]:
    DagBag = dag_bag_class()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=dag_folder or str(EXAMPLE_DAGS))
    return {
        "dag_ids": sorted(bag.dag_ids),
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "dag_warnings": [str(w) for w in bag.dag_warnings],
        "warnings": [f"{w.category.__name__}: {w.message} ({w.filename})" for w in caught],
    }


def run(
    dag_id: str,
    run_conf: dict[str, Any],
    deferrable: bool,
    output_dir: str,
    env: dict[str, str],
    task_overrides: dict[str, dict[str, Any]] | None = None,
    inspect_run: bool = False,
    dag_folder: str | None = None,
) -> dict[str, Any]:
    DagBag = dag_bag_class()
    from airflow.sdk import BaseOperator
    from airflow.sdk._shared.secrets_masker import reset_secrets_masker

    from airflow_provider_arr.triggers.remote_rendering import RemoteRenderingSessionTrigger

    # Each run starts with Airflow's secrets masker empty, as a task process does: the masker recompiles
    # one regex of every secret it holds on each new one, and this process serves the whole suite.
    reset_secrets_masker()
    os.environ["ARR_RENDER_OUTPUT_DIR"] = output_dir
    os.environ.update(env)  # e.g. this run's connection (tasks read it when they run)
    trigger_runs: list[str] = []
    original_run = RemoteRenderingSessionTrigger.run

    def counting_run(self: RemoteRenderingSessionTrigger) -> Any:
        trigger_runs.append(self.session_id)
        return original_run(self)

    RemoteRenderingSessionTrigger.run = counting_run  # type: ignore[method-assign]
    try:
        dag = DagBag(dag_folder=dag_folder or str(EXAMPLE_DAGS)).dags[dag_id]
        for task in dag.tasks:  # switch every waiting task between deferrable and blocking
            if isinstance(task, BaseOperator):
                if hasattr(task, "deferrable"):
                    task.deferrable = deferrable
            elif "deferrable" in inspect.signature(task.operator_class.__init__).parameters:
                task.partial_kwargs["deferrable"] = deferrable
        for task_id, attributes in (task_overrides or {}).items():
            for name, value in attributes.items():
                if name == "retry_delay":  # seconds, over JSON
                    value = timedelta(seconds=value)
                setattr(dag.get_task(task_id), name, value)
        dag_run = dag.test(run_conf=run_conf)
    finally:
        RemoteRenderingSessionTrigger.run = original_run  # type: ignore[method-assign]
    result = {
        "state": str(dag_run.state),
        "tasks": [[ti.task_id, ti.map_index, str(ti.state)] for ti in dag_run.get_task_instances()],
        "trigger_runs": trigger_runs,
        "map_names": {
            f"{ti.task_id}[{ti.map_index}]": ti.rendered_map_index
            for ti in dag_run.get_task_instances()
            if ti.map_index >= 0
        },
    }
    if inspect_run:
        result |= stored_results(dag_run.dag_id, dag_run.run_id)
    return result


def stored_results(dag_id: str, run_id: str) -> dict[str, Any]:
    """Every XCom and every rendered template field the run left in the database, as JSON text."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        xcoms = session.scalars(
            select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id)
        ).all()
        rendered = session.scalars(
            select(RenderedTaskInstanceFields).where(
                RenderedTaskInstanceFields.dag_id == dag_id, RenderedTaskInstanceFields.run_id == run_id
            )
        ).all()
        return {
            "xcoms": [[x.task_id, x.map_index, x.key, json.dumps(x.value, default=str)] for x in xcoms],
            "rendered_fields": [
                [r.task_id, r.map_index, json.dumps(r.rendered_fields, default=str)] for r in rendered
            ],
        }


def main() -> None:
    from airflow.utils.db import initdb

    initdb()
    print("READY", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["command"] == "import-check":
                result = import_check(request.get("dag_folder"))
            else:
                result = run(
                    request["dag_id"],
                    request["conf"],
                    request["deferrable"],
                    request["output_dir"],
                    request.get("env", {}),
                    request.get("task_overrides"),
                    request.get("inspect", False),
                    request.get("dag_folder"),
                )
        except Exception as error:
            result = {"exception": f"{type(error).__name__}: {error}"}
        print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
