"""Older Airflow releases (issue 21): one module of version-dependent imports, and a feature that needs a
newer release says so when used (the feature, the release it needs, what works instead), never at import.

The suites run on each supported minor (scripts/compat.sh); here the capability checks are monkeypatched,
so the messages are tested on any release.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from airflow_provider_arr import _compat, ownership
from airflow_provider_arr.operators.janitor import RemoteRenderingSessionJanitorOperator

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_provider_arr"
#: What only ``_compat`` may import from Airflow: the names whose place moved between 3.1 and 3.3. (The
#: operations view, which runs in the API server, reads the server's ``airflow.configuration.conf``, there
#: on every 3.x.)
MOVED = {("airflow.sdk", "conf"), ("airflow.sdk.log", "amask_secret")}
MOVED_MODULES = {"airflow.sdk.exceptions", "airflow.exceptions"}


def test_only_the_compat_module_imports_the_names_that_moved_between_releases():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "_compat.py" or "emulator" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.module is None:
                continue
            names = {(node.module, alias.name) for alias in node.names}
            if node.module in MOVED_MODULES or names & MOVED:
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} from {node.module}")
    assert not offenders, "import these from airflow_provider_arr._compat: " + ", ".join(offenders)


@pytest.fixture
def airflow_before_3_3(monkeypatch):
    """Airflow without ``Variable.keys``, and the records in Airflow Variables (as in a task)."""
    monkeypatch.setattr(_compat, "has_variable_keys", lambda: False)
    monkeypatch.setattr(_compat, "airflow_version", lambda: "3.1.8")
    ownership.use_ledger(ownership.VariableLedger())


def test_on_airflow_before_3_3_the_janitor_fails_saying_what_it_needs_and_what_works_instead(
    airflow_before_3_3, arr_conn
):
    janitor = RemoteRenderingSessionJanitorOperator(task_id="janitor")
    with pytest.raises(_compat.AirflowFailException) as failure:
        janitor.execute({})
    message = str(failure.value)
    assert message.startswith("The session janitor (RemoteRenderingSessionJanitorOperator) needs Airflow 3.3")
    assert "Variable.keys" in message
    assert "This is Airflow 3.1.8." in message
    assert "What works instead: each DAG's stop teardown stops its own sessions" in message
    assert "dry_run=True" in message
    assert sum(arr_conn.state.request_counts.values()) == 0  # it failed before any call


def test_on_airflow_before_3_3_a_janitor_dry_run_reports_every_session_and_stops_none(
    airflow_before_3_3, arr_conn, debug_logs
):
    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

    with RemoteRenderingHook() as hook:
        session_id = hook.create_session("1:00:00")
    report = RemoteRenderingSessionJanitorOperator(task_id="janitor", dry_run=True).execute({})
    assert [entry["session_id"] for entry in report["unattributed"]] == [session_id]
    assert report["stopped"] == report["would_stop"] == report["kept"] == []
    assert "needs Airflow 3.3 or later" in debug_logs()


def test_listing_records_on_airflow_before_3_3_names_the_release_and_the_alternative(airflow_before_3_3):
    with pytest.raises(NotImplementedError, match=r"^Listing ownership records needs Airflow 3\.3 or later"):
        ownership.all_records()


async def test_amask_secret_falls_back_to_mask_secret_before_3_3(monkeypatch):
    from airflow.sdk import log

    masked = []
    monkeypatch.delattr(log, "amask_secret", raising=False)
    monkeypatch.setattr(log, "mask_secret", lambda secret: masked.append(secret))
    await _compat.amask_secret("s3cret")
    assert masked == ["s3cret"]
