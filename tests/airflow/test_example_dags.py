"""The example DAGs: they import cleanly, and ``dag.test()`` runs them against the emulator.

The runs happen in a child interpreter (``_dag_runner.py``) with a throwaway ``AIRFLOW_HOME``,
because Airflow reads its home and database once per process. The emulator runs here, so the tests
can check what every run did to the sessions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import AIRFLOW_VERSION, FAST_RETRIES

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("_dag_runner.py")
EXAMPLE_DAGS = REPO / "example_dags"


class DagRunner:
    """The child process that runs ``dag.test()`` (see ``_dag_runner.py``)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, str(RUNNER)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._read_until("READY")

    def _read_until(self, prefix: str) -> str:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if line.startswith(prefix):
                return line.removeprefix(prefix).strip()
        raise AssertionError("the DAG runner died:\n" + "".join(self.output[-200:]))

    def request(self, **request: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.output.clear()
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        result = json.loads(self._read_until("RESULT "))
        assert "exception" not in result, "".join(self.output[-200:])
        return result

    def tail(self, lines: int = 200) -> str:
        """The last lines the runner printed for the last request (an assertion's message)."""
        return "".join(self.output[-lines:])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_runner(emulator: Any, home: Path, dags_folder: Path = EXAMPLE_DAGS) -> DagRunner:
    """A DAG runner child with a throwaway Airflow home, its connection pointing at ``emulator``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ARR_"))}
    env |= emulator.env(**FAST_RETRIES) | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "ARR_EXAMPLE_POLL_INTERVAL": "0.1",
        "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
    }
    return DagRunner(env)


@pytest.fixture(scope="module")
def dag_runner(shared_emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagRunner]:
    runner = start_runner(shared_emulator, tmp_path_factory.mktemp("airflow-home"))
    yield runner
    runner.close()


@pytest.fixture
def run_dag(emu, dag_runner: DagRunner, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    def run(
        dag_id: str,
        run_conf: dict | None = None,
        deferrable: bool = False,
        start_delay: float = 1.0,
        api_version: str = "v1",
        inspect: bool = False,
    ) -> dict[str, Any]:
        # Long enough that every sensor still finds its session Starting, so deferrable runs defer.
        emu.state.start_delay = start_delay
        return dag_runner.request(
            command="run",
            dag_id=dag_id,
            conf=run_conf or {},
            deferrable=deferrable,
            output_dir=str(tmp_path / "renders"),
            env=emu.env(api_version=api_version, **FAST_RETRIES),
            inspect=inspect,
        )

    return run


def states(result: dict) -> dict[str, list[str]]:
    by_task: dict[str, list[str]] = {}
    for task_id, _, state in sorted(result["tasks"]):
        by_task.setdefault(task_id, []).append(state)
    return by_task


def manifests(tmp_path: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((tmp_path / "renders").glob("*.json"))]


def test_example_dags_import_without_errors_or_warnings(dag_runner):
    result = dag_runner.request(command="import-check")

    assert result["dag_ids"] == [
        "arr_convert_and_render",
        "arr_render_fanout",
        "arr_render_pipeline",
        "arr_session_janitor",
    ]
    assert result["import_errors"] == {}
    assert result["dag_warnings"] == []
    assert result["warnings"] == []


#: DEFERRED_IN_DAG_TEST: on Airflow 3.1.8 and 3.2.2 the runner counts no trigger run in the deferrable
#: variants (the runs succeed and stop their sessions; why was not established: whether their dag.test keeps
#: the runner's deferrable switch, or runs the trigger elsewhere), so the count is checked from 3.3 on. The
#: demo does defer on 3.1.8.


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "blocking"])
def test_pipeline_renders_and_stops_its_session(emu, run_dag, tmp_path, deferrable, dag_runner):
    result = run_dag("arr_render_pipeline", deferrable=deferrable)

    assert result["state"] == "success", dag_runner.tail()
    assert states(result) == {
        "create": ["success"],
        "wait_ready": ["success"],
        "extend": ["success"],
        "render": ["success"],
        "stop": ["success"],
    }
    (record,) = emu.state.sessions()
    assert record.status == "Stopped"
    assert str(record.max_lease_time) == "1:30:00"  # created with 1 h, extended by 30 min
    if AIRFLOW_VERSION >= (3, 3):  # before 3.3 no trigger run is counted here (see DEFERRED_IN_DAG_TEST)
        assert result["trigger_runs"] == ([record.session_id] if deferrable else [])
    (manifest,) = manifests(tmp_path)
    assert manifest["scene"] == "atrium"
    assert (manifest["session_id"], manifest["hostname"]) == (record.session_id, record.hostname)


def test_pipeline_runs_unchanged_on_the_2021_dialect(emu, run_dag, tmp_path, dag_runner):
    result = run_dag("arr_render_pipeline", deferrable=True, api_version="2021-01-01", inspect=True)

    assert result["state"] == "success", dag_runner.tail()
    (record,) = emu.state.sessions()
    assert record.status == "Stopped"
    assert record.session_id.startswith("arr_render_pipeline-create--1-manual__")  # one id per task instance
    assert emu.state.request_counts["create"] == 1
    (manifest,) = manifests(tmp_path)
    assert manifest["hostname"] == record.hostname
    xcoms = {(task_id, key): json.loads(value) for task_id, _, key, value in result["xcoms"]}
    # The sensor's page links to the session's ARR Inspector, on the port the service gave.
    port = xcoms[("wait_ready", "return_value")]["arr_inspector_port"]
    assert 49152 <= port <= 65534
    assert xcoms[("wait_ready", "_link_RemoteRenderingInspectorLink")] == f"https://{record.hostname}:{port}"
    # The teardown says how long the session was billed, from the sensor seeing it Ready to the stop:
    # the emulator's own times (its clock, shifted to UNIX time by the creation time) bound the figures.
    billed = xcoms[("stop", "billed_time")]
    assert billed["session_id"] == record.session_id
    ready_at, stopped_at = (
        datetime.fromisoformat(billed[key]).timestamp() for key in ("ready_at", "stopped_at")
    )
    assert record.ready_at is not None
    assert record.ended_at is not None
    emulator_ready = record.creation_time + (record.ready_at - record.created_at)
    emulator_stopped = record.creation_time + (record.ended_at - record.created_at)
    assert emulator_ready - 1 <= ready_at <= emulator_ready + 5  # seen within a poll (0.1 s) and a resume
    assert emulator_stopped - 1 <= stopped_at <= emulator_stopped + 2  # ISO seconds: up to 1 s early
    assert billed["billed_seconds"] == pytest.approx(stopped_at - ready_at, abs=1.0)


@pytest.mark.parametrize("api_version", ["v1", "2021-01-01"])
def test_convert_and_render_runs_unchanged_on_both_dialects(emu, run_dag, tmp_path, api_version):
    emu.state.conversion_delay = 1.0
    started = time.monotonic()
    try:
        result = run_dag("arr_convert_and_render", deferrable=True, api_version=api_version, inspect=True)
    finally:
        emu.state.conversion_delay = 5.0
    elapsed = time.monotonic() - started

    assert result["state"] == "success", result
    assert states(result) == {
        task_id: ["success"] for task_id in ("convert", "preload", "create", "wait_ready", "render", "stop")
    }
    (conversion,) = emu.state.conversions()
    asset = "https://arrexamples.blob.core.windows.net/assets/converted/"
    assert conversion.status == "Succeeded"
    assert conversion.output_asset_uri.startswith(asset)
    assert conversion.output_asset_uri.endswith("/atrium.arrAsset")
    (record,) = emu.state.sessions()
    assert record.status == "Stopped"
    # v1 preloads the asset; 2021-01-01 cannot, so the render step gets it.
    assert list(record.models) == ([conversion.output_asset_uri] if api_version == "v1" else [])
    (manifest,) = manifests(tmp_path)
    assert manifest["asset"] == conversion.output_asset_uri
    links = {
        (task_id, key): json.loads(value) for task_id, _, key, value in result["xcoms"] if "_link_" in key
    }
    assert links[("convert", "_link_RemoteRenderingConvertedAssetLink")] == conversion.output_asset_uri
    # v1 properties carry no ARR Inspector port: the link is there, empty (the UI shows it unavailable).
    inspector = links[("wait_ready", "_link_RemoteRenderingInspectorLink")]
    assert inspector.startswith("https://") if api_version == "2021-01-01" else inspector == ""
    counts = emu.state.request_counts
    calls = counts["conversion_create"] + counts["conversion_properties"]
    print(f"{api_version}: {calls} conversion calls ({dict(counts)}), run {elapsed:.1f} s")
    # The run's first call may meet the token the runner cached before the emulator's reset revoked it:
    # a 401, then the same call once more with a new token (the service did not act on the first).
    assert counts["conversion_create"] <= 2
    # The conversion takes 1 s. On 2021-01-01 the status answer's Retry-After (whole seconds) spaces
    # the reads, whatever the 0.1 s poll interval (plus the read that finds no earlier try's
    # conversion before the PUT); v1 sends no Retry-After, so it reads every poll interval.
    assert counts["conversion_properties"] <= (5 if api_version == "2021-01-01" else 16)


def test_pipeline_stops_the_session_when_render_fails(emu, run_dag, tmp_path):
    result = run_dag("arr_render_pipeline", {"fail_render": True}, deferrable=True, start_delay=0.3)

    assert result["state"] == "failed"
    assert states(result)["render"] == ["failed"]
    assert states(result)["stop"] == ["success"]  # the teardown ran anyway
    assert [record.status for record in emu.state.sessions()] == ["Stopped"]
    assert manifests(tmp_path) == []


def test_pipeline_stops_nothing_twice_when_the_session_fails_to_start(emu, run_dag):
    emu.state.fail_next_start("No capacity")
    result = run_dag("arr_render_pipeline", deferrable=True, start_delay=0.3)

    assert result["state"] == "failed"
    assert states(result)["wait_ready"] == ["failed"]
    assert states(result)["stop"] == ["success"]  # idempotent: an Error session needs no stop
    assert [record.status for record in emu.state.sessions()] == ["Error"]
    assert emu.state.request_counts["stop"] == 0


def test_fanout_runs_unchanged_on_the_2021_dialect(emu, run_dag, tmp_path, dag_runner):
    result = run_dag("arr_render_fanout", {"scenes": ["atrium", "engine"]}, True, api_version="2021-01-01")

    assert result["state"] == "success", dag_runner.tail()
    records = emu.state.sessions()
    assert len(records) == 2
    assert {record.status for record in records} == {"Stopped"}
    assert [list(record.models) for record in records] == [[], []]  # 2021-01-01 does not preload
    assert sorted(manifest["scene"] for manifest in manifests(tmp_path)) == ["atrium", "engine"]
    # The UI names each mapped task instance after its scene (map_index_template), not 0 and 1.
    for task_id in ("create", "wait_ready", "render", "stop"):
        assert [result["map_names"][f"{task_id}[{index}]"] for index in (0, 1)] == ["atrium", "engine"]


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "blocking"])
def test_fanout_runs_one_session_per_scene_and_stops_them_all(emu, run_dag, tmp_path, deferrable, dag_runner):
    scenes = {"scenes": ["atrium", "engine", "city", "dock"]}
    result = run_dag("arr_render_fanout", scenes, deferrable, start_delay=3.0)

    assert result["state"] == "success", dag_runner.tail()
    by_task = states(result)
    assert (
        by_task["create"] == by_task["wait_ready"] == by_task["render"] == by_task["stop"] == ["success"] * 4
    )
    records = emu.state.sessions()
    assert len(records) == 4
    assert {record.status for record in records} == {"Stopped"}
    assert sorted(model for record in records for model in record.models) == sorted(
        f"https://example.blob.core.windows.net/arr-models/{scene}.arrAsset"
        for scene in ["atrium", "engine", "city", "dock"]
    )
    # dag.test runs triggers inline, one after another: once the first deferred sensor resumes, the
    # other sessions are Ready and their sensors succeed on the first poke without deferring.
    if AIRFLOW_VERSION >= (3, 3):
        assert bool(result["trigger_runs"]) is deferrable
    assert set(result["trigger_runs"]) <= {record.session_id for record in records}
    rendered = {manifest["scene"]: manifest["session_id"] for manifest in manifests(tmp_path)}
    assert sorted(rendered) == ["atrium", "city", "dock", "engine"]
    assert set(rendered.values()) == {record.session_id for record in records}


def test_a_v1_create_whose_answer_is_lost_and_whose_account_cannot_be_listed_leaves_nothing(
    emu, dag_runner, tmp_path
):
    """The dag.test row of the crash table: try 1's create reaches the service but its answer is lost,
    and listing the account to find the session fails too; Airflow retries the create. The ownership
    record (an Airflow Variable) lets try 2 find the session instead of starting a second one."""
    emu.state.start_delay = 0.3
    # Processed, answered too late for read_timeout 1 (not shorter: every call of the run has that timeout,
    # and on a busy machine a shorter one also cut the run's other calls short).
    emu.state.add_fault("create", None, delay=3.0)

    def break_listing_once_the_create_is_sent() -> None:
        deadline = time.monotonic() + 20
        while emu.state.request_counts.get("create", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        emu.state.add_fault("list", 500, count=6)  # every attempt of try 1's one listing (retry_limit 6)

    breaker = threading.Thread(target=break_listing_once_the_create_is_sent)
    breaker.start()
    extras = FAST_RETRIES | {"read_timeout": 1.0, "retry_limit": 6}
    result = dag_runner.request(
        command="run",
        dag_id="arr_render_pipeline",
        conf={},
        deferrable=True,
        output_dir=str(tmp_path / "renders"),
        env=emu.env(**extras),
        task_overrides={"create": {"retry_delay": 1}},
    )
    breaker.join()

    assert result["state"] == "success", dag_runner.tail()
    assert emu.state.request_counts["create"] == 1  # the retry found the session: no second VM
    assert emu.state.request_counts["list"] >= 8  # before the create, 6 failed attempts, the retry's
    assert [record.status for record in emu.state.sessions()] == ["Stopped"]


def test_the_janitor_dag_stops_a_session_its_finished_run_left_running(emu, dag_runner, tmp_path):
    """A run whose teardown stopped the wrong session (a stand-in for a teardown that never ran) leaves
    its session running; the janitor DAG finds the owner finished in Airflow's database and stops it."""
    common = {"conf": {}, "deferrable": False, "output_dir": str(tmp_path / "renders")}
    env = emu.env(**FAST_RETRIES)
    emu.state.start_delay = 0.3
    unknown = "00000000-0000-4000-8000-000000000000"
    left = dag_runner.request(
        command="run",
        dag_id="arr_render_pipeline",
        env=env,
        task_overrides={"stop": {"session_id": unknown, "create_task_id": "not_the_create"}},
        **common,
    )
    assert left["state"] == "success"
    (record,) = emu.state.sessions()
    assert record.status == "Ready"  # billed, and its run is over

    dry = dag_runner.request(
        command="run", dag_id="arr_session_janitor", env=env, **(common | {"conf": {"dry_run": True}})
    )
    assert dry["state"] == "success"
    assert emu.state.sessions()[0].status == "Ready"
    swept = dag_runner.request(command="run", dag_id="arr_session_janitor", env=env, **common)
    if AIRFLOW_VERSION < (3, 3):  # no Variable.keys: the run fails at once (tests/unit/test_compat.py)
        assert swept["state"] == "failed"
        assert emu.state.sessions()[0].status == "Ready"
        return
    assert swept["state"] == "success"
    assert [record.status for record in emu.state.sessions()] == ["Stopped"]
