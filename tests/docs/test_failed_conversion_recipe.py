"""The failed-conversion recipe's shell lines, run for real: the emulator, then ``airflow dags test``.

The script runs in a throwaway project folder (``dags/my_conversion.py`` only) with a throwaway
``AIRFLOW_HOME`` whose database ``airflow db migrate`` creates first, as a user's would exist. The
script starts the emulator in the background; it runs in a process group of its own, which the test
kills at the end whatever happened, so no emulator outlives the test.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.docs._shell import ProcessGroup, migrate, user_env

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "docs/examples/recipes/failed_conversion.sh"
DAG = "docs/examples/project/dags/my_conversion.py"
EXAMPLES = [SCRIPT]  # the DAG's own test is tests/test_pytest_plugin.py


def test_the_recipe_fails_the_broken_model_only(tmp_path: Path) -> None:
    project, home = tmp_path / "project", tmp_path / "airflow-home"
    (project / "dags").mkdir(parents=True)
    shutil.copy(REPO / DAG, project / "dags" / "my_conversion.py")
    env = user_env(home)
    migrate(env, project)

    with ProcessGroup(["bash", str(REPO / SCRIPT)], cwd=project, env=env) as script:
        status, output = script.wait(timeout=240)

    assert status == 0, output[-5000:]
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
