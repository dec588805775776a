"""
The README's first command: run the example DAG ``arr_render_pipeline`` against the bundled emulator.

It starts the emulator in its own process on a free loopback port (``EmulatorProcess``), runs
``airflow dags test`` in a throwaway ``AIRFLOW_HOME`` (sqlite) with the ``arr_default`` connection
pointing at it, and ends with a summary read from the emulator: sessions created, time to Ready, final
states, HTTP calls, and whether any session was left running. Exit status 0 only if the run succeeded
and none was left.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from airflow_provider_arr.emulator.process import EmulatorProcess

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".demo"
DAG_ID = "arr_render_pipeline"
BIN = Path(sys.executable).parent


def emulator_json(url: str, path: str) -> object:
    with urllib.request.urlopen(f"{url}{path}", timeout=10) as answer:
        return json.load(answer)


def run(command: list[str], env: dict[str, str], log: Path | None = None) -> int:
    print("$", " ".join(command), flush=True)
    if log is None:
        return subprocess.call(command, env=env, cwd=WORK)
    with log.open("w") as out:
        return subprocess.call(command, env=env, cwd=WORK, stdout=out, stderr=subprocess.STDOUT)


def summarise(url: str, returncode: int, seconds: float) -> int:
    sessions = emulator_json(url, "/_emulator/sessions")
    counts = emulator_json(url, "/_emulator/counts")
    assert isinstance(sessions, list)
    assert isinstance(counts, dict)
    running = [s for s in sessions if s["status"] in ("Starting", "Ready", "Stopping")]
    print()
    print(f"=== {DAG_ID}: {'succeeded' if returncode == 0 else 'FAILED'} in {seconds:.1f} s ===")
    print(f"sessions created: {len(sessions)}")
    for session in sessions:
        ready_at, created_at = session.get("readyAt"), session.get("createdAt")
        ready_text = f"Ready after {ready_at - created_at:.1f} s" if ready_at is not None else "never Ready"
        print(
            f"  {session['sessionId']}  {session['size']:<8} {ready_text:<18} "
            f"final state: {session['status']}"
        )
    calls = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()) if count)
    print(f"HTTP calls to the service: {sum(counts.values())} ({calls})")
    if running:
        print(f"LEFT RUNNING: {len(running)} session(s) - {', '.join(s['sessionId'] for s in running)}")
    else:
        print("sessions left running: none")
    return 0 if returncode == 0 and not running and sessions else 1


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "renders").mkdir(parents=True)
    try:
        emulator = EmulatorProcess(start_delay=3.0, log_path=WORK / "emulator.log").start()
    except RuntimeError as error:
        raise SystemExit(f"the emulator did not start: {error}") from None
    with emulator:
        url = emulator.url
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(WORK / "airflow-home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_ARR_DEFAULT": emulator.connection_json(),
            "ARR_EXAMPLE_POLL_INTERVAL": "1",
            "ARR_RENDER_OUTPUT_DIR": str(WORK / "renders"),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        print(f"emulator at {url}; Airflow home {env['AIRFLOW_HOME']}", flush=True)
        if run([str(BIN / "airflow"), "db", "migrate"], env, log=WORK / "db-migrate.log") != 0:
            print((WORK / "db-migrate.log").read_text()[-3000:])
            return 1
        started = time.monotonic()
        returncode = run([str(BIN / "airflow"), "dags", "test", DAG_ID], env)
        seconds = time.monotonic() - started
        for manifest in sorted((WORK / "renders").glob("**/*.json")):
            print(f"render manifest: {manifest.relative_to(ROOT)}")
        return summarise(url, returncode, seconds)


if __name__ == "__main__":
    sys.exit(main())
