"""What a DAG file's import costs (issue 21): the modules it adds to what ``airflow.sdk`` loaded.

Airflow imports every DAG file again and again. One that only declares tasks must not pay for what runs
them: the HTTP client (``requests``) and the hook's transport, policy and dialect modules are imported
when a task runs. A fresh interpreter imports ``airflow.sdk`` (every DAG file does), notes its modules,
then imports every operator and sensor module, the hook module and the example DAG files, and lists the
modules that were added.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "airflow_provider_arr"

#: Loaded when a task runs, never by a DAG file's import.
NOT_AT_PARSE = (
    "requests",
    "airflow_provider_arr.hooks.transport",
    "airflow_provider_arr.hooks.async_clients",
    "airflow_provider_arr.hooks.policy",
    "airflow_provider_arr.hooks.dialects",
    "airflow_provider_arr.hooks.conversion_dialects",
)


def dag_file_modules() -> list[str]:
    """Every operator and sensor module (the conversion and janitor ones included), and the hook's."""
    names = ["airflow_provider_arr.hooks.remote_rendering", "airflow_provider_arr.links"]
    for package in ("operators", "sensors"):
        names += [
            f"airflow_provider_arr.{package}.{path.stem}"
            for path in sorted((PACKAGE / package).glob("*.py"))
            if path.stem != "__init__"
        ]
    return names


PROBE = """
import importlib.util, json, sys
import airflow.sdk
before = set(sys.modules)
for name in {modules!r}:
    __import__(name)
sys.path.insert(0, {dags!r})
for path in {dag_files!r}:
    spec = importlib.util.spec_from_file_location("dag_" + path.rsplit("/", 1)[-1][:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def added_modules() -> list[str]:
    dags = ROOT / "example_dags"
    code = PROBE.format(
        modules=dag_file_modules(),
        dags=str(dags),
        dag_files=[str(path) for path in sorted(dags.glob("arr_*.py"))],
    )
    answer = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
        timeout=120,
    )
    assert answer.returncode == 0, answer.stderr[-3000:]
    return json.loads(answer.stdout.strip().splitlines()[-1])


def test_a_dag_file_imports_neither_requests_nor_the_hooks_transport_policy_or_dialects():
    added = added_modules()
    assert "airflow_provider_arr.operators.janitor" in added  # the probe did import our modules
    offenders = sorted(
        name for name in added if any(name == bad or name.startswith(bad + ".") for bad in NOT_AT_PARSE)
    )
    assert not offenders, (
        "Importing the operators, sensors, hook module and example DAGs after airflow.sdk imports "
        f"{', '.join(offenders)}: load these when a task runs (an import inside the method, a "
        "TYPE_CHECKING import for annotations), not at a DAG file's import"
    )


def test_the_hooks_public_names_stay_importable_from_its_module():
    from airflow_provider_arr.hooks import remote_rendering, settings, tokens

    assert remote_rendering.clear_token_cache is tokens.clear_token_cache
    assert remote_rendering.ConnectionSettings is settings.ConnectionSettings
    assert remote_rendering.DEFAULT_STS_URL == settings.DEFAULT_STS_URL
    assert remote_rendering.REGION_URL == settings.REGION_URL
    for name in remote_rendering.__all__:
        assert getattr(remote_rendering, name) is not None
