"""What a new user sees of the provider in Airflow's UI, in a real browser (issue 14).

Debian's Chromium, headless, driven by Playwright through the LocalExecutor deployment's UI after its
DAG runs have finished: the connection form of our type (labels, descriptions, what it saves), the Test
icon of the connection list, and task logs of DAG runs that used a connection saved from the form (no
masking warning, no secret). Screenshots go to ``<e2e temp dir>/screenshots`` (``ARR_E2E_KEEP=1`` keeps
them); their paths are logged. ``browser.py`` has the helpers, including one that clicks a task page's
extra link.
"""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Any

import pytest
from browser import AirflowUI
from e2e_deployment import log, wait_for
from test_deployment import finished, only_local

pytestmark = pytest.mark.timeout(600)

FORM_ID = "arr_ui"  # saved from the form
WRITTEN_OUT_ID = "arr_ui_v1"  # the same, with "api_version": "v1" as the form used to save it
MASKING_WARNING = "Skipping masking for a secret as it's too short"
#: What the form shows for our type: label -> a phrase of its description.
FORM_FIELDS = {
    "Region": "Instead of the Service URL",
    "Token service URL": "Point it at the emulator too",
    "API version": "v1 (empty)",
    "Connect timeout (s)": "Empty: 10",
    "Read timeout (s)": "Empty: 30",
    "Attempts per call": "Empty: 6",
    "Retry budget per call (s)": "Empty: 120",
    "Shortest wait between tries (s)": "Empty: 1",
    "Longest wait between tries (s)": "Empty: 30",
}


@pytest.fixture(scope="module")
def ui(deployed, e2e_root):
    only_local(deployed)
    finished(deployed)  # the runs are done: the browser does not compete with them for two cores
    started = time.monotonic()
    with AirflowUI(deployed.airflow, e2e_root / "screenshots") as ui:
        ui.login()
        yield ui
    log(f"browser test: {time.monotonic() - started:.1f} s wall time, Chromium included")


@pytest.fixture(scope="module")
def saved(ui, deployed):
    """Fill in and save the form as a user would; return the form's text and the body it posted."""
    connection = json.loads(deployed.airflow.env["AIRFLOW_CONN_ARR_DEFAULT"])
    dialog = ui.open_connection_form(FORM_ID, "Azure Remote Rendering")
    dialog.get_by_label("Service URL").fill(connection["host"])
    dialog.get_by_label("Account ID").fill(connection["login"])
    dialog.get_by_label("Account key").fill(connection["password"])
    form_text = dialog.inner_text()
    ui.shot("1-connection-form-standard-fields")
    ui.open_extra_fields(dialog)
    dialog.locator("input[name=element_sts_url]").fill(connection["extra"]["sts_url"])
    form_text += "\n" + dialog.inner_text()
    ui.shot("1-connection-form-extra-fields")
    with ui.page.expect_response(lambda r: r.url.endswith("/api/v2/connections")) as answer:
        dialog.get_by_role("button", name="Save").click()
    assert answer.value.status == 201, answer.value.text()
    body = json.loads(answer.value.request.post_data)
    return {"form_text": form_text, "body": body, "connection": connection}


def test_the_connection_form_labels_describes_and_saves_our_fields(saved):
    text = saved["form_text"]
    for label in ("Service URL", "Account ID", "Account key"):
        assert label in text
    for hidden in ("Port", "Schema"):
        assert hidden not in text.splitlines()
    for label, description in FORM_FIELDS.items():
        assert label in text, f"no field labelled {label!r} in the form"
        assert description in text, f"{label!r} lacks its description ({description!r})"
    body = saved["body"]
    assert body["conn_type"] == "azure_remote_rendering"
    assert body["password"] == saved["connection"]["password"]
    assert "port" not in body
    extra = json.loads(body["extra"])
    assert extra["api_version"] is None  # v1, saved as the form's empty choice
    assert extra["retry_limit"] == 6
    # No extra string Airflow's masker would call too short (its warning opened every task log).
    assert [v for v in extra.values() if isinstance(v, str) and len(v) < 5] == []


def test_the_test_icon_is_refused_by_airflow_3_3_2_as_the_readme_says(ui, saved):
    # Pinned upstream behaviour (docs/connection.md, "Testing the connection"): the list's Test icon
    # sends port 0 (the UI's Number(null)) and the masked password; Airflow 3.3.2's test route compares
    # that port with the stored null, finds them different, and refuses to test the stored credentials
    # against "another endpoint" - for every connection without a port, whatever its type. Fixed upstream
    # (apache/airflow#73298, not in 3.3.2); when this fails, the docs' note can go.
    row = ui.connection_row(FORM_ID)
    with ui.page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as answer:
        row.get_by_role("button", name="Test Connection").click()
    sent = json.loads(answer.value.request.post_data)
    toasts = ui.toasts()
    ui.shot("2-test-icon")
    assert sent["connection_id"] == FORM_ID
    assert sent["port"] == 0
    assert sent["password"] == "***"
    assert answer.value.status == 400, (
        f"Airflow now answers the Test icon with {answer.value.status} {answer.value.text()}: "
        "update the Test connection note in docs/connection.md and this test"
    )
    assert "differs from the stored connection" in answer.value.json()["detail"]
    assert any("Test Connection Failed" in toast and "Bad Request" in toast for toast in toasts), toasts


def test_the_workaround_tests_the_saved_connection(deployed, saved):
    # The docs' alternatives: POST /connections/test with the id and type only (no host or port in
    # the body, so Airflow tests the stored connection), and `airflow connections test`.
    answer = deployed.airflow.api.post(
        "/connections/test", json={"connection_id": FORM_ID, "conn_type": "azure_remote_rendering"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] is True, answer.json()
    result = deployed.airflow.airflow("connections", "test", FORM_ID)  # raises unless it exits 0
    assert "Connection success!" in result.stdout, result.stdout


def janitor_run(airflow: Any, conn_id: str) -> str:
    """Trigger arr_session_janitor, dry run, on one connection (the janitor lists its sessions)."""
    answer = airflow.api.post(
        "/dags/arr_session_janitor/dagRuns",
        json={"logical_date": None, "conf": {"arr_conn_ids": [conn_id], "dry_run": True}},
    )
    answer.raise_for_status()
    return str(answer.json()["dag_run_id"])


def final_state(airflow: Any, run_id: str) -> str | None:
    """A janitor run's state once it has finished, else None."""
    state = airflow.run_state("arr_session_janitor", run_id)
    return state if state in ("success", "failed") else None


def test_task_logs_show_no_masking_warning_and_no_secret(ui, deployed, saved):
    airflow = deployed.airflow
    key = saved["connection"]["password"]
    # The control: the same connection with "v1" written out, as the form used to save it.
    extra = json.loads(saved["body"]["extra"]) | {"api_version": "v1"}
    answer = airflow.api.post(
        "/connections",
        json={**saved["body"], "connection_id": WRITTEN_OUT_ID, "extra": json.dumps(extra)},
    )
    assert answer.status_code == 201, answer.text
    airflow.wait_for_dag("arr_session_janitor")
    # Airflow warns once per process, and a LocalExecutor worker's task processes inherit its "warned"
    # flag: the form's connection goes first, before anything on this deployment used a short extra.
    logs = {}
    airflow.api.patch("/dags/arr_session_janitor", json={"is_paused": False}).raise_for_status()
    try:
        for conn_id in (FORM_ID, WRITTEN_OUT_ID):
            run_id = janitor_run(airflow, conn_id)
            state = wait_for(
                f"the janitor run on {conn_id}", partial(final_state, airflow, run_id), 180, interval=1.0
            )
            assert state == "success", f"the janitor run on {conn_id} ended {state}"
            ui.open_task("arr_session_janitor", run_id, "stop_orphaned_sessions")
            logs[conn_id] = ui.task_log_text(wait_for="Janitor:")
            ui.shot(f"3-task-log-{conn_id}")
    finally:  # no scheduled sweeps while the rest of the suite runs
        airflow.api.patch("/dags/arr_session_janitor", json={"is_paused": True})
    assert "▶" not in logs[FORM_ID], "a log group is still folded"
    assert MASKING_WARNING not in logs[FORM_ID], logs[FORM_ID][-2000:]
    assert MASKING_WARNING in logs[WRITTEN_OUT_ID], "the control shows no warning: the check proves nothing"
    # A pipeline task's log, as the UI shows it: the session's calls, never the account key.
    dag_id, run_id = deployed.watcher.runs["pipeline"]
    ui.open_task(dag_id, run_id, "wait_ready")
    logs["pipeline"] = ui.task_log_text(wait_for="is Ready")
    ui.shot("4-task-log-wait_ready")
    assert MASKING_WARNING not in logs["pipeline"]
    for name, text in logs.items():
        assert key not in text, f"the account key shows in the {name} task log"


def test_the_convert_task_page_links_to_the_converted_asset(ui, deployed):
    """The convert task's extra link leads to the asset the service wrote (its XCom is the same URI)."""
    dag_id, run_id = deployed.watcher.runs["convert"]
    asset = deployed.airflow.xcom(dag_id, run_id, "convert")
    assert asset.endswith(".arrAsset")
    ui.open_task(dag_id, run_id, "convert")
    ui.page.get_by_role("link", name="Details", exact=True).click()  # Airflow 3.3 lists them there
    link = ui.extra_link("Converted asset")
    link.wait_for()
    ui.shot("5-task-page-converted-asset-link")
    assert link.get_attribute("href") == asset
    # Clicking opens it in a new tab. The blob host is not reachable from here: the browser's context
    # answers for it, so the tab shows what it asked for.
    context = ui.page.context
    context.route(asset, lambda route: route.fulfill(status=200, content_type="text/plain", body="the asset"))
    try:
        page = ui.click_extra_link("Converted asset")
        assert page.url == asset
        assert "the asset" in page.inner_text("body")
        page.close()
    finally:
        context.unroute(asset)
