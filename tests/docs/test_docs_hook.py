"""The hook page's example script, run as a user runs it: a subprocess with ``AIRFLOW_CONN_ARR_DEFAULT``
pointing at the emulator on loopback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from airflow_provider_arr.emulator import ArrEmulator
from tests.helpers import FAST_RETRIES

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = ["docs/examples/hook_usage.py"]


def test_the_hook_example_runs_a_whole_life_cycle(tmp_path: Path):
    with ArrEmulator(start_delay=0.5) as emulator:
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW_CONN_")}
        env.update(emulator.env(**FAST_RETRIES), AIRFLOW_HOME=str(tmp_path))
        done = subprocess.run(
            [sys.executable, str(REPO / EXAMPLES[0])], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        (session,) = emulator.state.sessions()
        counts = dict(emulator.state.request_counts)
    assert session.status == "Stopped"
    # What the script printed; Airflow logs to stdout too, each line starting with its timestamp.
    lines = [line for line in done.stdout.splitlines() if not re.match(r"\d{4}-\d\d-\d\dT", line)]
    assert lines[0] == f"started {session.session_id}"
    assert lines[1].startswith("Ready at ")
    assert lines[1].endswith("lease 1:00:00")
    assert any(line.startswith(f"{session.session_id}: Ready, running for") for line in lines)
    assert lines[-1] == "stopped: Stopped"
    assert counts["update"] == 1
    assert counts["stop"] == 1
