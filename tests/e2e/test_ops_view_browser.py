"""The operations view in a real deployment and a real browser (issue 20), as an admin and as a viewer.

The LocalExecutor deployment of ``make e2e`` loads the plugin through its ``airflow.plugins`` entry point
(the editable install of .venv). Its pipeline runs have finished; then this module sets the scene a
pager would find: a pipeline run that is really running (``render_seconds`` keeps its render task busy
on the Ready session its create task started and recorded), and an orphan, a live session recorded by
the create task of a pipeline run that has already failed (its teardown "could not run"; that record is
written through the REST API as the create operator writes it, an Airflow Variable). A second
connection to the same account, ``arr_priced``, carries ``price_per_hour``. At the end the render task
is marked success through the API, and the run's own teardown stops its session.

Admin and viewer both see the sessions with owner links, billed time and cost; the admin stops the
orphan from the page (Stopped at the emulator, the audit log names the admin); the viewer has no Stop
button and a hand-made POST with the viewer's token is refused (403) with the session still running;
the DAG-run tab of the finished pipeline run shows its session and the billed total its stop teardown
logged. Every page is scanned for the account key. Screenshots go to ``<e2e temp dir>/screenshots``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from browser import AirflowUI
from e2e_deployment import log, wait_for
from test_deployment import finished, only_local

pytestmark = pytest.mark.timeout(600)

PRICES = {"standard": 2.5, "premium": 10}
#: How long the live run's render task holds its session: longer than this module's tests take; the last
#: test ends it sooner by marking the task success.
RENDER_SECONDS = 900


def start_session(emulator: Any) -> str:
    """A session started on the deployment's account through the provider's hook (a client like any)."""
    os.environ["AIRFLOW_CONN_ARR_E2E_OPS"] = emulator.connection
    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

    return RemoteRenderingHook("arr_e2e_ops").create_session("2:00:00")


def write_record(airflow: Any, dag_id: str, run_id: str, session_id: str, account_id: str) -> None:
    """The create task's ownership record naming ``session_id``, as the create operator writes it."""
    from airflow_provider_arr.ownership import Owner, OwnershipRecord

    owner = Owner(dag_id, run_id, "create")
    # No "ready_at": no task of this scene saw the session Ready, so its billed time counts from its start.
    entry = {"try": 1, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())}
    record = OwnershipRecord(owner, "arr_default", "v1", {session_id: entry}, account_id=account_id)
    answer = airflow.api.post(
        "/variables", json={"key": owner.key, "value": record.to_json(), "description": f"test: {owner}"}
    )
    assert answer.status_code == 201, answer.text


def emulator_status(emulator: Any, session_id: str) -> str:
    (found,) = [s for s in emulator.sessions() if s.get("session_id", s.get("sessionId")) == session_id]
    return str(found.get("status") or found.get("sessionStatus"))


@pytest.fixture(scope="module")
def scene(deployed: Any) -> dict[str, Any]:
    only_local(deployed)
    finished(deployed)
    airflow = deployed.airflow
    connection = json.loads(deployed.emulator.connection)
    extra = {**connection["extra"], "price_per_hour": PRICES}
    answer = airflow.api.post(
        "/connections",
        json={
            "connection_id": "arr_priced",
            "conn_type": "azure_remote_rendering",
            "host": connection["host"],
            "login": connection["login"],
            "password": connection["password"],
            "extra": json.dumps(extra),
        },
    )
    assert answer.status_code == 201, answer.text
    # A run that is really running: its render task holds the Ready session for the tests of this module.
    live_run_id = airflow.trigger("arr_render_pipeline", {"render_seconds": RENDER_SECONDS})
    account = connection["login"].lower()

    def rendering() -> str | None:
        states = {
            ti["task_id"]: ti["state"] for ti in airflow.task_instances("arr_render_pipeline", live_run_id)
        }
        if states.get("render") != "running":
            return None
        return str(airflow.xcom("arr_render_pipeline", live_run_id, "create"))

    live = wait_for("the live run's render task to run on its Ready session", rendering, 180, interval=1)
    assert emulator_status(deployed.emulator, live) == "Ready"
    orphan = start_session(deployed.emulator)
    failed_run = deployed.watcher.runs["pipeline_fail"][1]
    write_record(airflow, "arr_render_pipeline", failed_run, orphan, account)
    log(
        f"ops view scene: live {live} (run {live_run_id}, rendering), "
        f"orphan {orphan} (run {failed_run}, failed)"
    )
    return {
        "live": live,
        "orphan": orphan,
        "live_run": live_run_id,
        "failed_run": failed_run,
        "key": connection["password"],
    }


@pytest.fixture(scope="module")
def admin_ui(deployed: Any, scene: Any, e2e_root: Any):
    with AirflowUI(deployed.airflow, e2e_root / "screenshots") as ui:
        ui.login()
        yield ui


def view_frame(ui: AirflowUI, path: str, wait_for_text: str) -> Any:
    """Open an Airflow UI page that shows our view in its iframe; return the frame, loaded."""
    ui.page.goto(ui.url(path))
    frame = ui.page.frame_locator("iframe")
    frame.get_by_text(wait_for_text).first.wait_for()
    return frame


def no_secret(text: str, key: str) -> None:
    assert key not in text, "the account key is on a page"
    assert "sig=" not in text


def test_an_admin_sees_each_session_with_its_owner_billed_time_cost_and_verdict(admin_ui, scene):
    frame = view_frame(admin_ui, "/plugin/arr-sessions", "Remote Rendering sessions")
    priced = frame.locator('section[data-conn-id="arr_priced"]')
    live_row = priced.locator(f'tr[data-session-id="{scene["live"]}"]')
    orphan_row = priced.locator(f'tr[data-session-id="{scene["orphan"]}"]')
    live_row.wait_for()
    text = priced.inner_text()
    admin_ui.shot("ops-1-account-view-admin")
    assert "owned and running" in live_row.inner_text()
    assert "Ready" in live_row.inner_text()
    assert "run running" in live_row.inner_text()
    assert live_row.get_by_role("link", name=scene["live_run"]).count() >= 1
    assert "orphaned" in orphan_row.inner_text()
    assert "belongs to a DAG run that is failed" in orphan_row.inner_text()
    assert "Cost" in text
    assert (
        live_row.get_by_role("link", name="arr_render_pipeline")
        .first.get_attribute("href")
        .endswith("/dags/arr_render_pipeline")
    )
    assert orphan_row.get_by_role("link", name="Stop…").count() == 1
    no_secret(frame.locator("body").inner_html(), scene["key"])


def test_the_admin_stops_the_orphan_from_the_page_and_the_audit_log_names_the_admin(
    admin_ui, scene, deployed
):
    frame = view_frame(admin_ui, "/plugin/arr-sessions", "Remote Rendering sessions")
    row = frame.locator(f'section[data-conn-id="arr_priced"] tr[data-session-id="{scene["orphan"]}"]')
    row.get_by_role("link", name="Stop…").click()
    frame.get_by_text(f"Stop session {scene['orphan']}?").wait_for()
    confirm = frame.locator("body").inner_text()
    assert f"arr_render_pipeline/{scene['failed_run']}/create" in confirm
    assert "Billed so far" in confirm
    admin_ui.shot("ops-2-stop-confirmation")
    frame.get_by_role("button", name=f"Stop session {scene['orphan']}").click()
    frame.locator("#arr-done").wait_for()
    assert "by admin" in frame.locator("#arr-done").inner_text()
    admin_ui.shot("ops-3-stopped")
    wait_for(
        "the orphan to stop at the emulator",
        lambda: emulator_status(deployed.emulator, scene["orphan"]) in ("Stopping", "Stopped"),
        30,
        interval=0.5,
    )
    events = deployed.airflow.get("/eventLogs", event="arr_session_stop")["event_logs"]
    assert [(e["owner"], e["dag_id"], e["run_id"]) for e in events] == [
        ("admin", "arr_render_pipeline", scene["failed_run"])
    ]


def test_a_viewer_sees_the_sessions_without_a_stop_button_and_a_hand_made_post_is_refused(
    admin_ui, deployed, scene
):
    with admin_ui.signed_in_as("viewer") as ui:
        frame = view_frame(ui, "/plugin/arr-sessions", "Remote Rendering sessions")
        row = frame.locator(f'tr[data-session-id="{scene["live"]}"]').first
        row.wait_for()
        assert "owned and running" in row.inner_text()
        assert "Signed in as viewer" in frame.locator("body").inner_text()
        assert frame.get_by_role("link", name="Stop…").count() == 0
        ui.shot("ops-4-account-view-viewer")
        no_secret(frame.locator("body").inner_html(), scene["key"])
    token = deployed.airflow.login("viewer")
    path = f"/arr/connections/arr_priced/sessions/{scene['live']}/stop"
    answer = httpx.post(
        deployed.airflow.api_url + path,
        data={"confirm": scene["live"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 403, answer.text
    time.sleep(1)
    assert emulator_status(deployed.emulator, scene["live"]) in ("Starting", "Ready")


def test_the_dag_run_tab_of_a_finished_run_shows_its_sessions_and_the_billed_total(admin_ui, deployed, scene):
    dag_id, run_id = deployed.watcher.runs["pipeline"]
    billed = deployed.airflow.xcom(dag_id, run_id, "stop", key="billed_time")
    frame = view_frame(
        admin_ui, f"/dags/{dag_id}/runs/{quote(run_id, safe='')}/plugin/arr-run", "sessions of this run"
    )
    row = frame.locator(f'tr[data-session-id="{billed["session_id"]}"]')
    row.wait_for()
    total = frame.locator("#run-total-minutes").inner_text()
    admin_ui.shot("ops-5-dag-run-tab")
    assert total == f"{billed['billed_seconds'] / 60:.1f}"
    assert "Stopped" in row.inner_text()
    no_secret(frame.locator("body").inner_html(), scene["key"])


def test_the_live_run_ends_its_own_session_and_its_tab_shows_the_billed_total(admin_ui, deployed, scene):
    """The live run's render is marked success (as an operator would cut a render short): its teardown
    stops the session it started, and the run's tab shows that session with the billed time it logged."""
    airflow, dag_id, run_id = deployed.airflow, "arr_render_pipeline", scene["live_run"]
    answer = airflow.api.patch(
        f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/render", json={"new_state": "success"}
    )
    assert answer.status_code == 200, answer.text
    wait_for(
        "the live run to finish",
        lambda: airflow.run_state(dag_id, run_id) in ("success", "failed"),
        180,
        interval=1,
    )
    assert emulator_status(deployed.emulator, scene["live"]) in ("Stopping", "Stopped")
    billed = airflow.xcom(dag_id, run_id, "stop", key="billed_time")
    assert billed["session_id"] == scene["live"]
    frame = view_frame(
        admin_ui, f"/dags/{dag_id}/runs/{quote(run_id, safe='')}/plugin/arr-run", "sessions of this run"
    )
    frame.locator(f'tr[data-session-id="{scene["live"]}"]').wait_for()
    assert frame.locator("#run-total-minutes").inner_text() == f"{billed['billed_seconds'] / 60:.1f}"
    no_secret(frame.locator("body").inner_html(), scene["key"])


def test_airflows_test_icon_works_for_a_connection_stored_with_port_443(admin_ui, deployed):
    """Issue 20's question: would a port make Airflow 3.3.2's own Test icon work? A stored 443 does.

    The icon sends the form's port (``Number(443)``); 3.3.2 refuses a test whose port differs from the
    stored one, and our form hides ``port``, so it is stored as null and sent as 0 (test_ui_browser.py).
    A connection saved with port 443 (``airflow connections add --conn-port 443``, a URI with ``:443``)
    passes; the hook never reads ``port``. provider info cannot give a standard field a default (only a
    placeholder), so the form cannot make this the default: docs/connection.md says how to store it.
    """
    connection = json.loads(deployed.emulator.connection)
    answer = deployed.airflow.api.post(
        "/connections",
        json={
            "connection_id": "arr_port443",
            "conn_type": "azure_remote_rendering",
            "host": connection["host"],
            "login": connection["login"],
            "password": connection["password"],
            "port": 443,
            "extra": json.dumps(connection["extra"]),
        },
    )
    assert answer.status_code == 201, answer.text
    row = admin_ui.connection_row("arr_port443")
    with admin_ui.page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as tested:
        row.get_by_role("button", name="Test Connection").click()
    admin_ui.shot("ops-6-test-icon-port-443")
    assert json.loads(tested.value.request.post_data)["port"] == 443
    assert tested.value.status == 200, tested.value.text()
    assert tested.value.json()["status"] is True, tested.value.json()
