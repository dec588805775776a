"""docs/testing.md: its example files are the project's, its marker table is the plugin's, and the
``EmulatorProcess`` example runs ``airflow dags test`` for real.

The example project's pytest files run in tests/test_pytest_plugin.py; ``run_my_render.py`` runs here,
from a throwaway copy of the project (its DAG only) with a throwaway ``AIRFLOW_HOME``.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from airflow_provider_arr.pytest_plugin import (
    DEFAULT_CONN_ID,
    DEFAULT_CONVERSION_DELAY,
    DEFAULT_START_DELAY,
    DEFAULT_TOKEN_LIFETIME,
    MARKER_ARGUMENTS,
)
from tests.docs._shell import ProcessGroup, migrate, user_env

REPO = Path(__file__).resolve().parents[2]
PAGE = (REPO / "docs" / "testing.md").read_text()
EXAMPLES = ["docs/examples/project/run_my_render.py"]
#: The files the page includes (all run: the pytest ones by tests/test_pytest_plugin.py).
INCLUDED = [
    "examples/project/conftest.py",
    "examples/project/dags/my_render.py",
    "examples/project/test_my_render.py",
    "examples/project/run_my_render.py",
]


def test_the_page_includes_the_project_files_and_has_no_python_block() -> None:
    assert "```python" not in PAGE
    included = re.findall(r"^```\{literalinclude\} (\S+)$", PAGE, re.MULTILINE)
    assert included == INCLUDED


def test_the_marker_table_has_every_argument_with_the_plugins_defaults() -> None:
    rows = {match[1]: match[2] for match in re.finditer(r"^\| `(\w+)` \| ([^|]+) \|", PAGE, re.MULTILINE)}
    assert [name for name in MARKER_ARGUMENTS if name not in rows] == []
    assert rows["start_delay"].strip() == f"`{DEFAULT_START_DELAY:g}`"
    assert rows["conversion_delay"].strip() == f"`{DEFAULT_CONVERSION_DELAY:g}`"
    assert rows["token_lifetime"].strip() == f"`{DEFAULT_TOKEN_LIFETIME:g}`"
    assert rows["conn_id"].strip() == f"`{DEFAULT_CONN_ID}`"


def test_airflow_dags_test_in_a_subprocess(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "dags").mkdir(parents=True)
    shutil.copy(REPO / "docs/examples/project/dags/my_render.py", project / "dags")
    shutil.copy(REPO / EXAMPLES[0], project)
    env = user_env(tmp_path / "airflow-home")
    migrate(env, project)
    with ProcessGroup([sys.executable, "run_my_render.py"], cwd=project, env=env) as example:
        status, output = example.wait(timeout=240)
    assert status == 0, output[-5000:]
    assert output.rstrip().endswith("my_render succeeded")
    assert "state=success" in output  # what `airflow dags test` logs at the end of the run
