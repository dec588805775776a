"""The failed-conversion recipe's shell lines, run for real: the emulator, then ``airflow dags test``.

The script runs in a throwaway project folder (``dags/my_conversion.py`` only) with a throwaway
``AIRFLOW_HOME`` whose database ``airflow db migrate`` creates first, as a user's would exist. The
script starts the emulator in the background; it runs in a process group of its own, which the test
kills at the end whatever happened, so no emulator outlives the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "docs/examples/recipes/failed_conversion.sh"
DAG = "docs/examples/project/dags/my_conversion.py"
EXAMPLES = [SCRIPT]  # the DAG's own test is tests/test_pytest_plugin.py


def test_the_recipe_fails_the_broken_model_only(tmp_path: Path) -> None:
    project, home = tmp_path / "project", tmp_path / "airflow-home"
    (project / "dags").mkdir(parents=True)
    shutil.copy(REPO / DAG, project / "dags" / "my_conversion.py")
    bin_dir = str(Path(sys.executable).parent)  # arr-emulator and airflow, as installed with the provider
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    env.pop("AIRFLOW_CONN_ARR_DEFAULT", None)
    subprocess.run(["airflow", "db", "migrate"], env=env, cwd=project, check=True, capture_output=True)

    script = subprocess.Popen(
        ["bash", str(REPO / SCRIPT)],
        env=env,
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = script.communicate(timeout=240)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group is gone: nothing left running
            os.killpg(script.pid, signal.SIGKILL)  # the script, and the emulator if it still runs
        script.wait()

    assert script.returncode == 0, output[-5000:]
    assert "The model has no geometry." in output  # the task's error, in the failed run's log
    assert "DagRun failed" in output
    conversions = json.loads(output.strip().splitlines()[-1])
    inputs = [c["input"]["relativeInputAssetPath"] for c in conversions]
    assert sorted(inputs) == ["broken/chair.fbx", "chairs/chair.fbx"]  # one each: no retry converted again
    by_input = dict(zip(inputs, conversions, strict=True))
    assert by_input["chairs/chair.fbx"]["status"] == "Succeeded"
    assert (by_input["broken/chair.fbx"]["status"], by_input["broken/chair.fbx"]["errorMessage"]) == (
        "Failed",
        "The model has no geometry.",
    )
