"""The operations view on Airflow's real API server app: what each role sees, and what it may do.

Sessions run on the emulator (loopback socket); the DAG runs that own them are real rows; users are
the simple auth manager's (admin, user, viewer), with tokens it signed. Every answer of every test is
scanned for the account key, the STS token, the users' tokens and SAS signatures (``Client``).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.plugins.conftest import DAG_ID, PRICES, make_run, push_xcom, record, start_session

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def fleet(accounts):
    """Four live sessions: owned by a running run, orphaned (its run succeeded), its run deleted, unowned."""
    make_run("running_run", "running")
    make_run("done_run", "success")
    sessions = {
        "owned": start_session(accounts),
        "orphaned": start_session(accounts, size="premium"),
        "gone": start_session(accounts),
        "free": start_session(accounts),
    }
    record(sessions["owned"], "running_run", ready_at="2026-12-06T06:00:00+00:00")
    record(sessions["orphaned"], "done_run")
    record(sessions["gone"], "deleted_run")
    yield sessions
    from airflow.models.dagrun import DagRun
    from sqlalchemy import delete

    from tests.plugins.conftest import db

    with db() as session:
        session.execute(delete(DagRun).where(DagRun.dag_id == DAG_ID))


def rows(view, conn_id):
    (section,) = [s for s in view["connections"] if s["conn_id"] == conn_id]
    return section, {row["session_id"]: row for row in section["sessions"]}


def status(emulator, session_id):
    (found,) = [s for s in emulator.state.sessions() if s.session_id == session_id]
    return found.status


def test_the_account_view_gives_each_session_its_owner_the_janitors_verdict_and_its_cost(as_role, fleet):
    view = as_role("admin").get("/arr/api/accounts").json()
    assert view["user"] == "admin"
    section, by_id = rows(view, "arr_priced")
    assert set(by_id) == set(fleet.values())
    owned, orphaned = by_id[fleet["owned"]], by_id[fleet["orphaned"]]
    assert (owned["verdict"], owned["reason"]) == ("owned", "is still running")
    assert owned["owner"]["run_state"] == "running"
    assert owned["owner"]["links"]["task"] == f"/dags/{DAG_ID}/runs/running_run/tasks/create"
    assert (owned["billed_from"], owned["ready_since"]) == ("ready", "2026-12-06T06:00:00+00:00")
    assert owned["hostname"]
    assert owned["lease_left_seconds"] > 0
    assert (orphaned["verdict"], orphaned["reason"]) == ("orphaned", "belongs to a DAG run that is success")
    assert by_id[fleet["gone"]]["verdict"] == "unattributed"
    assert "no longer exists" in by_id[fleet["gone"]]["reason"]
    assert (by_id[fleet["free"]]["verdict"], by_id[fleet["free"]]["reason"]) == (
        "unattributed",
        "no task owns it",
    )
    assert section["priced"]
    # The total prices the billed seconds themselves, not the sum of the rows' rounded costs.
    exact = sum(r["billed_seconds"] / 3600 * section["prices"][r["size"].lower()] for r in by_id.values())
    assert section["total_cost"] == pytest.approx(exact, abs=5.1e-5)  # only its own rounding to 4 decimals
    assert orphaned["cost"] == pytest.approx(orphaned["billed_seconds"] / 3600 * 10, abs=1e-3)
    assert all(row["actions"] for row in by_id.values())
    unpriced, same = rows(view, "arr_db")  # saved in the database, no price: no cost, never a made-up one
    assert set(same) == set(fleet.values())
    assert not unpriced["priced"]
    assert unpriced["total_cost"] is None
    assert all(row["cost"] is None for row in same.values())


def test_the_account_page_is_html_with_a_cost_column_only_where_priced(as_role, fleet):
    page = as_role("admin").get("/arr/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    unpriced, priced = page.text.split('data-conn-id="arr_priced"')  # arr_db's section comes first
    assert 'data-conn-id="arr_db"' in unpriced
    assert '<th class="num">Cost</th>' in priced
    assert '<th class="num">Cost</th>' not in unpriced
    for session_id in fleet.values():
        assert session_id in page.text
    assert "Stop…" in page.text
    assert "orphaned" in page.text


def test_a_viewer_sees_the_pipelines_sessions_without_buttons_and_a_hand_made_post_is_refused(
    as_role, fleet, accounts
):
    viewer = as_role("viewer")
    view = viewer.get("/arr/api/accounts").json()
    _, by_id = rows(view, "arr_priced")
    assert set(by_id) == {fleet["owned"], fleet["orphaned"]}  # not the connection's: only readable DAGs'
    assert all(row["actions"] == {} for row in by_id.values())
    assert "Stop…" not in viewer.get("/arr/").text
    target = f"/arr/connections/arr_priced/sessions/{fleet['orphaned']}/stop"
    assert viewer.get(target).status_code == 403
    answer = viewer.post(target, data={"confirm": fleet["orphaned"]})
    assert answer.status_code == 403
    assert "edit rights on the runs of DAG &#39;arr_ops_dag&#39;" in answer.text
    api = viewer.post("/arr/api" + target.removeprefix("/arr"), json={"confirm": fleet["orphaned"]})
    assert api.status_code == 403
    assert status(accounts, fleet["orphaned"]) == "Ready"


def test_an_admin_stops_an_orphaned_session_from_the_page_audited_and_noted_in_its_record(
    as_role, fleet, accounts
):
    from airflow.models.log import Log
    from airflow.models.variable import Variable
    from sqlalchemy import select

    from airflow_provider_arr.ownership import Owner
    from tests.plugins.conftest import db

    admin = as_role("admin")
    target = f"/arr/connections/arr_priced/sessions/{fleet['orphaned']}/stop"
    confirm = admin.get(target)
    assert confirm.status_code == 200
    for named in (fleet["orphaned"], f"{DAG_ID}/done_run/create", "Billed so far", 'method="post"'):
        assert named in confirm.text
    done = admin.post(target, data={"confirm": fleet["orphaned"]})
    assert done.status_code == 200, done.text
    assert "by <strong>admin</strong>" in done.text
    assert status(accounts, fleet["orphaned"]) in ("Stopping", "Stopped")
    with db() as session:
        (entry,) = session.scalars(select(Log).where(Log.event == "arr_session_stop")).all()
        assert (entry.owner, entry.dag_id, entry.run_id) == ("admin", DAG_ID, "done_run")
        assert json.loads(entry.extra)["session_id"] == fleet["orphaned"]
    note = json.loads(Variable.get(Owner(DAG_ID, "done_run", "create").key))["sessions"][fleet["orphaned"]]
    assert note["stopped_from_ui"]["by"] == "admin"


def test_a_user_may_stop_what_their_dags_own_but_not_a_session_nobody_owns(as_role, fleet, accounts):
    user = as_role("user")
    free = user.post(
        f"/arr/api/connections/arr_priced/sessions/{fleet['free']}/stop", json={"confirm": fleet["free"]}
    )
    assert free.status_code == 403
    assert "edit rights on the connection 'arr_priced'" in free.json()["detail"]
    assert status(accounts, fleet["free"]) == "Ready"
    owned = user.post(
        f"/arr/api/connections/arr_priced/sessions/{fleet['owned']}/stop", json={"confirm": fleet["owned"]}
    )
    assert owned.status_code == 200, owned.text
    assert (owned.json()["outcome"], owned.json()["by"]) == ("Stopped", "user")


def test_extend_lease_needs_a_valid_duration_named_in_the_error(as_role, fleet, accounts):
    admin = as_role("admin")
    path = f"/arr/api/connections/arr_priced/sessions/{fleet['free']}/extend"
    bad = admin.post(path, json={"confirm": fleet["free"], "extend_by": "2h"})
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("extend_by:")
    done = admin.post(path, json={"confirm": fleet["free"], "extend_by": "1:00:00"})
    assert done.status_code == 200, done.text
    assert done.json()["max_lease_time"] == "03:00:00"
    (session,) = [s for s in accounts.state.sessions() if s.session_id == fleet["free"]]
    assert session.max_lease_time.total_seconds() == 3 * 3600


def test_requests_without_a_user_confirmation_or_from_another_site_are_refused(as_role, fleet, accounts):
    assert as_role(None).get("/arr/api/accounts").status_code == 401
    assert as_role(None).post(f"/arr/connections/arr_priced/sessions/{fleet['free']}/stop").status_code == 401
    admin = as_role("admin")
    path = f"/arr/connections/arr_priced/sessions/{fleet['free']}/stop"
    assert admin.post(path, data={}).status_code == 400  # no confirmation
    assert admin.post(path, data={"confirm": fleet["owned"]}).status_code == 400  # another session's
    evil = admin.post(path, data={"confirm": fleet["free"]}, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    assert admin.post("/arr/connections/nope/sessions/x/stop", data={"confirm": "x"}).status_code == 404
    assert status(accounts, fleet["free"]) == "Ready"


def test_the_dag_run_tab_shows_the_runs_sessions_billed_minutes_and_cost(as_role, accounts):
    make_run("billed_run", "success")
    live = start_session(accounts)
    record(live, "billed_run", ready_at="2026-12-06T06:00:00+00:00")
    push_xcom("billed_run", "create", "session_id", "finished-session")
    push_xcom(
        "billed_run", "create", "session_properties", {"session_id": "finished-session", "size": "Premium"}
    )
    billed = {
        "session_id": "finished-session",
        "billed_seconds": 600.0,
        "ready_at": "2026-12-06T06:00:00+00:00",
        "stopped_at": "2026-12-06T06:10:00+00:00",
        "arr_conn_id": "arr_priced",
    }
    push_xcom("billed_run", "stop", "billed_time", billed)
    viewer = as_role("viewer")
    view = viewer.get(f"/arr/api/runs/{DAG_ID}/billed_run").json()
    by_id = {row["session_id"]: row for row in view["sessions"]}
    assert set(by_id) == {"finished-session", live}
    finished = by_id["finished-session"]
    assert (finished["billed_seconds"], finished["billed_final"], finished["status"]) == (
        600.0,
        True,
        "Stopped",
    )
    assert finished["cost"] == pytest.approx(600 / 3600 * 10, abs=1e-3)
    assert by_id[live]["status"] == "Ready"
    assert not by_id[live]["billed_final"]
    assert view["priced"]
    assert view["total_billed_seconds"] >= 600
    page = viewer.get(f"/arr/runs/{DAG_ID}/billed_run")
    assert page.status_code == 200
    assert "10.0" in page.text
    assert "finished-session" in page.text
    assert viewer.get(f"/arr/api/runs/{DAG_ID}/no_such_run").status_code == 404


@pytest.mark.parametrize("size", ["Premium", "standard"])
def test_a_finished_session_is_priced_by_the_size_its_billed_time_carries(as_role, accounts, size):
    """No ``session_properties`` XCom (a create that did not wait): ``billed_time`` carries the size."""
    run_id = f"sized_run_{size}"
    make_run(run_id, "success")
    billed = {
        "session_id": "sized-session",
        "billed_seconds": 1800.0,
        "ready_at": "2026-12-06T06:00:00+00:00",
        "stopped_at": "2026-12-06T06:30:00+00:00",
        "arr_conn_id": "arr_priced",
        "size": size,
    }
    push_xcom(run_id, "stop", "billed_time", billed)

    view = as_role("viewer").get(f"/arr/api/runs/{DAG_ID}/{run_id}").json()

    (row,) = view["sessions"]
    assert row["size"] == size
    assert row["cost"] == pytest.approx(0.5 * PRICES[size.lower()], abs=1e-3)  # half an hour
    assert view["total_cost"] == row["cost"]


def test_each_connection_can_be_tested_from_the_view_where_airflow_allows_testing(
    as_role, accounts, monkeypatch
):
    from airflow.models.connection import Connection

    from tests.plugins.conftest import db

    conn = json.loads(os.environ["AIRFLOW_CONN_ARR_PRICED"])
    wrong_key = "wrong-" + conn["password"][::-1]
    with db() as session:
        session.add(
            Connection(
                conn_id="arr_wrong_key",
                conn_type="azure_remote_rendering",
                host=conn["host"],
                login=conn["login"],
                password=wrong_key,
                extra=json.dumps({"sts_url": conn["extra"]["sts_url"]}),
            )
        )
    admin = as_role("admin")
    disabled = admin.post("/arr/api/connections/arr_priced/test")  # Airflow's default: Disabled
    assert disabled.status_code == 403
    assert disabled.json()["detail"].startswith("Testing connections is disabled")
    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    assert "Test connection</button>" in admin.get("/arr/").text
    passed = admin.post("/arr/api/connections/arr_priced/test").json()
    assert passed["status"] is True
    assert passed["message"].startswith("Connected")
    failed = admin.post("/arr/connections/arr_wrong_key/test")
    assert failed.status_code == 200
    assert "test failed" in failed.text
    assert wrong_key not in failed.text
    viewer = as_role("viewer")
    assert "Test connection</button>" not in viewer.get("/arr/").text
    assert viewer.post("/arr/api/connections/arr_priced/test").status_code == 403
    assert admin.post("/arr/api/connections/nope/test").status_code == 404


def test_recent_conversions_are_listed_where_the_dialect_can_and_never_with_a_sas(
    as_role, accounts, monkeypatch
):
    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

    monkeypatch.setenv("AIRFLOW_CONN_ARR_2021", json.dumps(accounts.connection(api_version="2021-01-01")))
    with RemoteRenderingHook("arr_2021") as hook:
        conversion_id = hook.create_conversion(
            "https://contosoin.blob.core.windows.net/models",
            "house.fbx",
            "https://contosoout.blob.core.windows.net/assets",
            input_sas="sv=2020-08-04&sr=c&sp=rl&sig=READLISTSECRET",
            output_sas="sv=2020-08-04&sr=c&sp=w&sig=WRITESECRET",
        )
    admin = as_role("admin")
    view = admin.get("/arr/api/accounts").json()
    (section,) = [s for s in view["connections"] if s["conn_id"] == "arr_2021"]
    assert [c["conversion_id"] for c in section["conversions"]] == [conversion_id]
    (v1,) = [s for s in view["connections"] if s["conn_id"] == "arr_priced"]
    assert v1["conversions"] is None
    assert "v1 API cannot list conversions" in v1["conversions_note"]
    page = admin.get("/arr/").text  # the Client scans it for "sig=" too
    assert conversion_id in page
    assert "SECRET" not in page
    viewer = as_role("viewer").get("/arr/api/accounts").json()
    assert all(s["conversions"] is None for s in viewer["connections"])


def test_a_stop_the_service_refuses_is_reported_and_neither_audited_nor_noted(as_role, fleet, accounts):
    from airflow.models.log import Log
    from airflow.models.variable import Variable
    from sqlalchemy import select

    from airflow_provider_arr.ownership import Owner
    from tests.plugins.conftest import db

    accounts.state.add_fault("stop", 500, count=10)
    answer = as_role("admin").post(
        f"/arr/api/connections/arr_priced/sessions/{fleet['orphaned']}/stop",
        json={"confirm": fleet["orphaned"]},
    )
    accounts.state.clear_faults()
    assert answer.status_code == 502
    assert answer.json()["detail"].startswith(f"The service did not stop session {fleet['orphaned']}")
    assert status(accounts, fleet["orphaned"]) == "Ready"
    with db() as session:
        assert session.scalars(select(Log).where(Log.event == "arr_session_stop")).all() == []
    entry = json.loads(Variable.get(Owner(DAG_ID, "done_run", "create").key))["sessions"][fleet["orphaned"]]
    assert "stopped_from_ui" not in entry


def test_an_account_that_fails_its_list_call_shows_the_error_in_its_section_only(as_role, fleet, accounts):
    accounts.state.add_fault("list", 403, count=1)  # the first connection listed: arr_db
    view = as_role("admin").get("/arr/api/accounts").json()
    accounts.state.clear_faults()
    failed, _ = rows(view, "arr_db")
    assert failed["error"]
    assert failed["sessions"] == []
    _, fine = rows(view, "arr_priced")
    assert set(fine) == set(fleet.values())
