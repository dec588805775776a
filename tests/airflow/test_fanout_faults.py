"""Mapped fan-outs where any subset of indexes fails, at any step, on both dialects: nothing is left running.

Airflow expands a mapped stop and sensor over the create's return values *by position*: a create index
that fails pushes none, and every value after it shifts by one. These runs use real ``dag.test()``
expansion (``fault_dags/arr_fanout_faults.py``) against the emulator on a loopback socket.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.airflow.test_example_dags import DagRunner, start_runner
from tests.helpers import FAST_RETRIES

FAULT_DAGS = Path(__file__).with_name("fault_dags")

#: (scenes, where each step fails): every class of failing subset, not one example.
CASES = {
    "create-1-of-3": (3, {"create": [1]}),
    "create-0-and-2-of-4": (4, {"create": [0, 2]}),
    "create-every-index": (3, {"create": [0, 1, 2]}),
    "create-answer-lost-1-of-3": (3, {"create_lost": [1]}),
    "create-answer-lost-and-create-fails": (4, {"create_lost": [0], "create": [2]}),
    "ready-0-render-2": (3, {"ready": [0], "render": [2]}),
    "unpushed-1-of-3 (values shift)": (3, {"unpushed": [1]}),
    "unpushed-0-and-3-of-4 (values shift, the last has no stop index)": (4, {"unpushed": [0, 3]}),
    "unpushed-0-create-2-of-3": (3, {"unpushed": [0], "create": [2]}),
    "create-1-ready-1": (3, {"create": [1], "ready": [1]}),
}


@pytest.fixture(scope="module")
def runner(shared_emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagRunner]:
    child = start_runner(shared_emulator, tmp_path_factory.mktemp("airflow-home"), FAULT_DAGS)
    yield child
    child.close()


def run(emu: Any, runner: DagRunner, tmp_path: Path, api_version: str, scenes: int, fail: dict) -> dict:
    emu.state.start_delay = 0.3
    return runner.request(
        command="run",
        dag_id="arr_fanout_faults",
        conf={"scenes": [f"scene{i}" for i in range(scenes)], "fail": fail},
        deferrable=False,
        output_dir=str(tmp_path),
        env=emu.env(api_version=api_version, **FAST_RETRIES),
        dag_folder=str(FAULT_DAGS),
    )


@pytest.mark.parametrize("api_version", ["v1", "2021-01-01"])
@pytest.mark.parametrize("case", list(CASES))
def test_no_session_is_left_running_whichever_indexes_fail(emu, runner, tmp_path, api_version, case):
    scenes, fail = CASES[case]
    result = run(emu, runner, tmp_path, api_version, scenes, fail)
    sessions = emu.state.sessions()
    assert len(sessions) == scenes, "one session per create index, none twice"
    left = [(s.session_id, s.status) for s in sessions if s.status in ("Starting", "Ready")]
    assert left == [], f"left running: {left}; tasks: {result['tasks']}"
    stops = [state for task_id, _, state in result["tasks"] if task_id == "stop"]
    assert stops, result["tasks"]
    assert all(state.endswith("success") for state in stops), result["tasks"]
