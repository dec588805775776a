"""The task-group-per-model and billing-per-run recipes: ``nightly_models`` of the docs' example project.

Two ``dag.test`` runs, one per API dialect, in the DAG runner child of ``tests/airflow`` (Airflow's home
and database are per process), against an emulator on a loopback socket:

- ``v1``, the second of three models cannot be converted: only its own task group fails, the other two
  render and stop their sessions, the run ends failed, no session is left running;
- ``2021-01-01``, every model converts: the run succeeds.

In both, the final ``billed_total`` task's total is the sum of the stops' ``billed_time`` XComs, and
each of those agrees with the emulator's own Ready and stop times.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_arr.emulator import ArrEmulator
from tests.airflow.test_example_dags import start_runner
from tests.helpers import FAST_RETRIES

EXAMPLES = ["docs/examples/project/dags/nightly_models.py"]

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "docs" / "examples" / "project" / "dags"
GOOD = ["atrium/atrium.fbx", "engine/engine.glb", "city/city.gltf"]
#: The engine model's conversion reaches the service and ends Failed with this message (the emulator's
#: --fail-conversion rule; an unsupported file would be refused by the operator before any call).
BAD = "engine/*"
FAILURE = "The model has no geometry."
#: One currency unit per second, so that the cost is the billed seconds (a real price is per hour); the
#: size as the UI writes it (sessions report "standard": sizes are matched without regard to case).
PRICES = {"Standard": 3600.0}
GROUP_TASKS = ("convert", "preload", "create", "wait_ready", "render", "stop")


@pytest.fixture(scope="module")
def emulator() -> Iterator[ArrEmulator]:
    with ArrEmulator(start_delay=0.3, token_lifetime=3600) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def runner(emulator: ArrEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One DAG runner child for the module, its DAGs folder the docs' example project's."""
    runner = start_runner(emulator, tmp_path_factory.mktemp("airflow-home"), DAGS)
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def nightly(
    emulator: ArrEmulator, runner: Any, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Any]:
    """Run ``nightly_models`` once per (models, dialect) for the whole module: a run takes ~12 s."""
    done: dict[tuple[tuple[str, ...], str], tuple[dict[str, Any], list[Any], str]] = {}

    def run(failing: str | None, api_version: str) -> tuple[dict[str, Any], list[Any], str]:
        key = (failing, api_version)
        if key not in done:
            emulator.state.reset()
            emulator.state.start_delay, emulator.state.conversion_delay = 0.3, 0.5
            if failing:
                emulator.state.fail_conversions(failing, FAILURE)
            started = time.monotonic()
            result = runner.request(
                command="run",
                dag_id="nightly_models",
                conf={"models": GOOD},
                deferrable=True,
                output_dir=str(tmp_path_factory.mktemp("renders")),
                env=emulator.env(api_version=api_version, price_per_hour=PRICES, **FAST_RETRIES),
                inspect=True,
                dag_folder=str(DAGS),
            )
            print(f"nightly_models on {api_version}: {time.monotonic() - started:.1f} s")
            done[key] = (result, emulator.state.sessions(), runner.tail(400))
        return done[key]

    return run


def groups(result: dict[str, Any]) -> dict[int, dict[str, str]]:
    """Each model's task states by map index: ``{0: {"convert": "success", ...}, ...}``."""
    by_index: dict[int, dict[str, str]] = {}
    for task_id, map_index, state in result["tasks"]:
        if task_id.startswith("model."):
            by_index.setdefault(map_index, {})[task_id.removeprefix("model.")] = state
    return by_index


def xcoms(result: dict[str, Any], key: str) -> dict[tuple[str, int], Any]:
    return {(task_id, i): json.loads(value) for task_id, i, k, value in result["xcoms"] if k == key}


def test_a_model_that_fails_to_convert_fails_only_its_own_group(nightly, emulator):
    result, sessions, log = nightly(BAD, "v1")
    (failed,) = [c for c in emulator.state.conversions() if c.status == "Failed"]

    assert result["state"] == "failed", log  # the bad model fails the run...
    by_index = groups(result)
    assert by_index[1] == {
        "convert": "failed",
        "preload": "upstream_failed",
        "create": "upstream_failed",
        "wait_ready": "upstream_failed",
        "render": "upstream_failed",
        "stop": "success",  # the teardown ran (all_done) and found nothing to stop
    }
    for index in (0, 2):  # ...but not the other models: each rendered on its own session
        assert by_index[index] == dict.fromkeys(GROUP_TASKS, "success"), by_index
    assert len(sessions) == 2
    assert {s.status for s in sessions} == {"Stopped"}, "no session is left running"
    rendered = xcoms(result, "return_value")
    assert [rendered[("model.render", i)].rsplit("/", 1)[-1] for i in (0, 2)] == [
        "atrium.arrAsset",
        "city.arrAsset",
    ]
    # v1 preloads each converted asset on its model's own session.
    preloaded = sorted(model.rsplit("/", 1)[-1] for s in sessions for model in s.models)
    assert preloaded == ["atrium.arrAsset", "city.arrAsset"]
    # The UI names the task instances after their models (the group's map_index_template).
    assert [result["map_names"][f"model.convert[{i}]"] for i in (0, 1, 2)] == GOOD
    # The conversion failed at the service, and the task says why, without retries.
    assert failed.input.asset == "engine/engine.glb"
    assert failed.error_message == FAILURE
    assert f"ConversionFailed: {FAILURE}" in log
    # The error-level "XCom not found" line comes from the failed model's stop resolving create.output
    # (create never ran), just before it says there is nothing to stop: see docs/patterns.md.
    assert "XCom not found" in log
    assert "Task model.create[1] recorded no session; nothing to stop" in log


def test_every_model_renders_on_the_2021_dialect(nightly):
    result, sessions, log = nightly(None, "2021-01-01")

    assert result["state"] == "success", log
    assert groups(result) == {i: dict.fromkeys(GROUP_TASKS, "success") for i in (0, 1, 2)}
    assert len(sessions) == 3
    assert {s.status for s in sessions} == {"Stopped"}
    assert [list(s.models) for s in sessions] == [[], [], []]  # 2021-01-01 cannot preload
    assert "XCom not found" not in log


@pytest.mark.parametrize(("failing", "api_version"), [(BAD, "v1"), (None, "2021-01-01")], ids=["bad", "good"])
def test_the_run_total_is_the_sum_of_the_stops_billed_times(nightly, failing, api_version):
    result, sessions, log = nightly(failing, api_version)

    billed = xcoms(result, "billed_time")
    assert sorted(i for _, i in billed) == ([0, 2] if failing else [0, 1, 2])  # one per stopped session
    total = xcoms(result, "return_value")[("billed_total", -1)]
    seconds = [b["billed_seconds"] for b in billed.values()]
    assert total["sessions"] == len(sessions) == len(billed)
    assert total["billed_seconds"] == pytest.approx(sum(seconds), abs=0.05)
    assert total["cost"] == pytest.approx(sum(seconds) * PRICES["Standard"] / 3600, abs=0.01 * len(seconds))
    assert f"{total['sessions']} sessions billed {total['billed']}, cost {total['cost']}" in log
    # Each stop's figure agrees with the emulator: Ready (as a task first saw it) -> stopped.
    by_id = {s.session_id: s for s in sessions}
    for b in billed.values():
        record = by_id[b["session_id"]]
        assert record.ready_at is not None
        assert record.ended_at is not None
        emulator_ready = record.creation_time + (record.ready_at - record.created_at)
        emulator_stopped = record.creation_time + (record.ended_at - record.created_at)
        ready_at, stopped_at = (datetime.fromisoformat(b[k]).timestamp() for k in ("ready_at", "stopped_at"))
        # Never counted from before Ready; the times are whole seconds, so up to 1 s early.
        assert emulator_ready - 1 <= ready_at
        assert emulator_stopped - 1 <= stopped_at <= emulator_stopped + 2
        assert b["billed_seconds"] <= record.ended_at - record.ready_at + 1.5
        # Seen Ready within a poll (0.1 s) of the emulator's Ready, or when dag.test, which runs one task
        # at a time, first got to the sensor: a few seconds at most here.
        assert b["billed_seconds"] >= record.ended_at - record.ready_at - 5


def test_every_dag_of_the_docs_imports_without_errors_or_warnings(runner: Any):
    """What a user copies from the site parses cleanly: no import error, and no warning (a deprecated
    Airflow 2 import such as ``airflow.decorators`` or ``airflow.utils.task_group`` warns in Airflow 3)."""
    result = runner.request(command="import-check", dag_folder=str(DAGS))

    assert result["dag_ids"] == sorted(path.stem for path in DAGS.glob("[!_]*.py"))
    assert result["import_errors"] == {}
    assert result["dag_warnings"] == []
    assert result["warnings"] == []
