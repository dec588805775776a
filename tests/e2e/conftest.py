"""Fixtures of the deployment test: PostgreSQL, the emulator, and a running Airflow per executor.

Nothing here runs unless ``ARR_E2E=1`` (``make e2e`` sets it): the test needs PostgreSQL and, for
the Celery variant, Redis installed, which ``scripts/e2e.sh`` does (as root).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

E2E = os.environ.get("ARR_E2E") == "1"
#: Executors to deploy; ``ARR_E2E_EXECUTORS=local`` skips the Celery variant.
#: Seconds the three DAG runs of one deployment may take, all together.
RUNS_TIMEOUT = 300
EXECUTORS = [name.strip() for name in os.environ.get("ARR_E2E_EXECUTORS", "local,celery").split(",") if name]

if E2E:
    from e2e_deployment import (
        AirflowDeployment,
        Emulator,
        Postgres,
        Redis,
        RunWatcher,
        log,
        workdir,
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if E2E:
        return
    skip = pytest.mark.skip(reason="the deployment test runs with ARR_E2E=1 (make e2e)")
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(skip)


@dataclass
class Deployed:
    """A running deployment, its emulator, and the DAG runs triggered on it at start."""

    name: str
    airflow: AirflowDeployment
    emulator: Emulator
    watcher: RunWatcher
    started_at: float
    timings: dict[str, float] = field(default_factory=dict)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def e2e_root() -> Iterator[Path]:
    """The test's temporary directory; SIGTERM and SIGHUP now unwind like Ctrl-C, so teardown runs."""
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with workdir("arr-e2e-") as path:
            yield path
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@pytest.fixture(scope="session")
def postgres(e2e_root: Path) -> Iterator[Postgres]:
    started = time.monotonic()
    server = Postgres(e2e_root / "postgres")
    try:
        server.start()
        log(f"PostgreSQL on 127.0.0.1:{server.port} in {time.monotonic() - started:.1f} s")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session", params=EXECUTORS)
def deployed(request: pytest.FixtureRequest, postgres: Postgres, e2e_root: Path) -> Iterator[Deployed]:
    """Start one deployment (``local`` or ``celery``), trigger the DAG runs, stop it all after.

    The runs go at once: ``arr_render_pipeline`` (deferrable sensor), the same with ``fail_render``,
    ``arr_render_fanout`` (three sessions), and ``arr_render_pipeline`` once more, marked failed
    through the API while its sensor is deferred; the tests then wait for and inspect them.
    """
    name = request.param
    started = time.monotonic()
    base = e2e_root / name
    base.mkdir()
    failed_before = request.session.testsfailed
    emulator = redis = airflow = watcher = None
    try:
        emulator = Emulator(base)
        log(f"{name}: emulator at {emulator.url}")
        broker_url = None
        executor = "LocalExecutor"
        if name == "celery":
            redis = Redis(base)
            broker_url, executor = redis.url, "CeleryExecutor"
            log(f"{name}: Redis on 127.0.0.1:{redis.port}")
        database_url = postgres.create_database(f"airflow_{name}")
        airflow = AirflowDeployment(name, base, database_url, emulator.connection, executor, broker_url)
        airflow.start()
        for dag_id in ("arr_render_pipeline", "arr_render_fanout", "arr_convert_and_render"):
            airflow.wait_for_dag(dag_id)
        runs = {
            "pipeline": ("arr_render_pipeline", airflow.trigger("arr_render_pipeline")),
            "pipeline_fail": (
                "arr_render_pipeline",
                airflow.trigger("arr_render_pipeline", {"fail_render": True}),
            ),
            "fanout": ("arr_render_fanout", airflow.trigger("arr_render_fanout")),
            "pipeline_marked_failed": ("arr_render_pipeline", airflow.trigger("arr_render_pipeline")),
            "convert": ("arr_convert_and_render", airflow.trigger("arr_convert_and_render")),
        }
        log(f"{name}: triggered {', '.join(f'{label}={run[1]}' for label, run in runs.items())}")
        watcher = RunWatcher(
            airflow, runs, timeout=RUNS_TIMEOUT, fail_when_deferred={"pipeline_marked_failed": "wait_ready"}
        )
        deployed = Deployed(name, airflow, emulator, watcher, started)
        deployed.timings["ready"] = time.monotonic() - started
        yield deployed
    finally:
        if watcher is not None:
            watcher.stop()
        if airflow is not None and request.session.testsfailed > failed_before:
            print(f"\n===== {name}: component logs =====\n{airflow.log_tails()}", file=sys.__stderr__)
            if watcher is not None:
                print(unfinished_task_logs(airflow, watcher), file=sys.__stderr__)
        for component in (airflow, redis, emulator):
            if component is not None:
                component.stop()
        log(f"{name}: stopped; {time.monotonic() - started:.1f} s from start to stop")


def unfinished_task_logs(airflow: AirflowDeployment, watcher: RunWatcher, lines: int = 60) -> str:
    """The last lines of every try of every task of the runs that did not finish (for CI's log)."""
    parts = []
    for label, (dag_id, run_id) in watcher.runs.items():
        if label in watcher.final:
            continue
        parts.append(f"===== unfinished run {watcher.describe(label)} =====")
        try:
            for ti in airflow.task_instances(dag_id, run_id):
                if ti["map_index"] >= 0:
                    continue  # the log route of a mapped task differs; its states are in the line above
                for try_number in range(1, int(ti.get("try_number") or 0) + 1):
                    text = airflow.task_log(dag_id, run_id, ti["task_id"], try_number=try_number)
                    tail = "\n".join(text.splitlines()[-lines:])
                    parts.append(f"--- {ti['task_id']} try {try_number} ({ti['state']}) ---\n{tail}")
        except Exception as error:  # a diagnostic must not hide the failure it explains
            parts.append(f"(could not read the task logs: {error!r})")
    return "\n".join(parts)
