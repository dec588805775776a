"""The plugin costs a DAG file nothing: Airflow imports it in every task process (issue 20).

A task process has already imported ``airflow.sdk.plugins_manager`` when it loads plugins; importing our
plugin after that, and instantiating it as Airflow does, must load neither FastAPI, Starlette, Jinja2,
SQLAlchemy models, Airflow's API server nor our hook: only the plugin's own two modules and the
compat shim that names the plugin base class.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import airflow.sdk.plugins_manager  # a task process has it before it loads any plugin
before = set(sys.modules)
from airflow_provider_arr.plugins.ops import ArrOpsPlugin
ArrOpsPlugin()
print(json.dumps(sorted(set(sys.modules) - before)))
"""
#: What importing the plugin may add to a task process.
ALLOWED = {
    "airflow_provider_arr.plugins",
    "airflow_provider_arr.plugins.ops",
    "airflow.providers.common.compat.sdk",
    "airflow.providers.common.compat._compat_utils",
    "airflow.providers.common.compat.version_compat",
}


def test_importing_the_plugin_loads_nothing_a_task_does_not_already_have():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    added = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert added <= ALLOWED, sorted(added - ALLOWED)
    for heavy in ("fastapi", "starlette", "jinja2", "airflow.api_fastapi", "airflow_provider_arr.hooks"):
        assert not any(name == heavy or name.startswith(heavy + ".") for name in added), heavy


def test_the_plugin_is_registered_through_the_airflow_plugins_entry_point():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["airflow.plugins"] == {
        "arr_ops": "airflow_provider_arr.plugins.ops:ArrOpsPlugin"
    }


def test_the_plugin_adds_a_nav_entry_and_a_dag_run_tab_that_reach_its_app():
    from airflow_provider_arr.plugins.ops import URL_PREFIX, ArrOpsPlugin

    views = {view["destination"]: view for view in ArrOpsPlugin().external_views}
    assert views["nav"]["name"] == "Remote Rendering"
    assert views["nav"]["href"].endswith(URL_PREFIX + "/")
    assert views["dag_run"]["href"].endswith(URL_PREFIX + "/runs/{DAG_ID}/{RUN_ID}")
    assert all(view["url_route"] for view in views.values())  # a tab is shown only with a url_route
