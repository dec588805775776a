"""Getting started, as a new user types it: the five shell lines that run your own DAG against the
command-line emulator (``docs/examples/own_dag_cli_emulator.sh``), run as they are in a fresh project
folder, then the conversion example DAG in the same Airflow home.

The emulator runs on its default port, 8710, as the page says; the recipe leaves it running in the
background, so the test runs the shell in a process group of its own and ends the group.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.docs._shell import ProcessGroup

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "docs" / "examples" / "own_dag_cli_emulator.sh"
PROJECT = REPO / "docs" / "examples" / "project"
EXAMPLES = [
    "docs/examples/own_dag_cli_emulator.sh",
    "docs/examples/project/dags/convert_then_wait.py",
]
EMULATOR = "http://127.0.0.1:8710"


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _emulator(route: str) -> list[dict]:
    with urllib.request.urlopen(f"{EMULATOR}/_emulator/{route}", timeout=10) as answer:
        return json.load(answer)


@pytest.mark.timeout(420)
def test_the_five_lines_run_your_dag_against_the_command_line_emulator(tmp_path: Path):
    assert _port_is_free(8710), "port 8710 (the emulator's default) is taken: the recipe needs it"
    (tmp_path / "dags").mkdir()
    for dag in ("my_render.py", "convert_then_wait.py"):
        shutil.copy(PROJECT / "dags" / dag, tmp_path / "dags" / dag)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "ARR_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # arr-emulator, airflow
    script = f"set -e; source {RECIPE}; airflow dags test convert_then_wait"
    # Leaving the block ends the emulator the recipe left in the background, after it was asked.
    with ProcessGroup(["bash", "-c", script], cwd=tmp_path, env=env) as shell:
        status, output = shell.wait(timeout=400)
        assert status == 0, output[-6000:]
        sessions = _emulator("sessions")
        conversions = _emulator("conversions")
    assert [session["status"] for session in sessions] == ["Stopped"], sessions
    assert [conversion["status"] for conversion in conversions] == ["Succeeded"], conversions
    assert "ARR_EMULATOR_URL=" in (tmp_path / "emulator.out").read_text()
    assert (tmp_path / "airflow-home" / "airflow.db").exists()
    finished = re.findall(r"DagRun Finished: dag_id=(\w+),.*? state=(\w+)", output)
    assert finished == [("my_render", "success"), ("convert_then_wait", "success")], output[-6000:]
