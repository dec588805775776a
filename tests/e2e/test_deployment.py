"""The provider on a real Airflow deployment: PostgreSQL, separate scheduler, dag-processor, triggerer
and api-server processes, LocalExecutor (and CeleryExecutor with Redis), the emulator as the service.

Everything goes through what a user has: the REST API (JWT from ``/auth/token``), the ``airflow`` CLI,
and the emulator's record of the sessions. Run with ``make e2e`` (see docs/development.md).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.timeout(900)

PIPELINE_TASKS = {"create", "wait_ready", "extend", "render", "stop"}


def finished(deployed: Any) -> dict[str, str]:
    """Wait until the deployment's DAG runs have finished (once); return their final states."""
    final = deployed.watcher.wait()
    if "runs_finished" not in deployed.timings:
        deployed.timings["runs_finished"] = time.monotonic() - deployed.started_at
    return final


def ti_states(deployed: Any, label: str) -> dict[tuple[str, int], str]:
    """Final state of each task instance of a run, keyed by (task_id, map_index)."""
    dag_id, run_id = deployed.watcher.runs[label]
    return {
        (ti["task_id"], ti["map_index"]): ti["state"]
        for ti in deployed.airflow.task_instances(dag_id, run_id)
    }


def session_status(deployed: Any, session_id: str) -> str:
    """A session's status as the emulator (the service) has it."""
    (record,) = [s for s in deployed.emulator.sessions() if s["sessionId"] == session_id]
    return str(record["status"])


def only_local(deployed: Any) -> None:
    """Provider metadata is the same whatever the executor; check it on one deployment."""
    if deployed.name != "local":
        pytest.skip("provider metadata is checked on the LocalExecutor deployment")


# --- provider metadata, as Airflow shows it (these run while the DAG runs proceed) ---------------------


def test_airflow_providers_list_shows_the_provider(deployed):
    only_local(deployed)
    result = deployed.airflow.airflow("providers", "list", "--output", "json")
    providers = {entry["package_name"]: entry for entry in json.loads(result.stdout)}
    assert "airflow-provider-arr" in providers
    assert providers["airflow-provider-arr"]["version"] == "0.1.0"


def test_connection_type_in_hook_meta(deployed):
    only_local(deployed)
    # What the UI's connection form is built from (in Airflow 3.3 it is served under /ui, not /api/v2).
    hooks = {
        hook["connection_type"]: hook
        for hook in deployed.airflow.get(f"{deployed.airflow.api_url}/ui/connections/hook_meta")
    }
    meta = hooks["azure_remote_rendering"]
    assert meta["hook_name"] == "Azure Remote Rendering"
    assert meta["hook_class_name"] == "airflow_provider_arr.hooks.remote_rendering.RemoteRenderingHook"
    standard = meta["standard_fields"]
    assert standard["host"]["title"] == "Service URL"
    assert standard["login"]["title"] == "Account ID"
    # The account key is the connection's password: a secret field, masked in the UI.
    assert standard["password"]["title"] == "Account key (empty to sign in with Entra ID)"
    assert standard["password"]["hidden"] is False
    assert standard["port"]["hidden"] is True
    assert standard["url_schema"]["hidden"] is True
    extra = meta["extra_fields"]
    assert {"region", "sts_url", "api_version", "connect_timeout", "read_timeout", "retry_limit"} <= set(
        extra
    )
    # Entra ID sign-in (issue 19): the fields are named as Airflow's Azure provider names them.
    entra = {"tenantId", "client_id", "client_secret", "certificate_path", "managed_identity_client_id"}
    assert entra | {"workload_identity_tenant_id", "authority_host", "entra_scope"} <= set(extra)
    assert all(extra[name]["description"] for name in entra)
    assert extra["sts_url"]["schema"]["format"] == "url"
    assert extra["sts_url"]["value"] == "https://sts.mixedreality.azure.com"
    assert extra["region"]["description"]


def test_test_connection_from_the_api(deployed):
    only_local(deployed)
    api = deployed.airflow.api
    # The stored connection (here from AIRFLOW_CONN_ARR_DEFAULT), as the UI's "Test" button sends it.
    answer = api.post(
        "/connections/test", json={"connection_id": "arr_default", "conn_type": "azure_remote_rendering"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] is True, answer.json()


def test_test_connection_with_a_wrong_key_fails(deployed):
    only_local(deployed)
    api = deployed.airflow.api
    connection = json.loads(deployed.airflow.env["AIRFLOW_CONN_ARR_DEFAULT"])
    # Make sure the api-server has used the right key first, as it has in any real deployment.
    answer = api.post(
        "/connections/test", json={"connection_id": "arr_default", "conn_type": "azure_remote_rendering"}
    )
    assert answer.json()["status"] is True, answer.json()
    body = {
        "connection_id": "arr_wrong_key",
        "conn_type": "azure_remote_rendering",
        "host": connection["host"],
        "login": connection["login"],
        "password": "not-the-key",
        "extra": json.dumps(connection["extra"]),
    }
    answer = api.post("/connections/test", json=body)
    assert answer.status_code == 200, answer.text
    # The test fails with the service's reason, and the key is not echoed.
    assert answer.json()["status"] is False, answer.json()
    assert "not-the-key" not in answer.json()["message"]


def test_test_connection_with_the_token_service_left_on_azure_answers_at_once(deployed):
    # Only the Service URL pointed at the emulator: the test must answer in seconds, say which field to
    # set, and not name Airflow's random temporary connection id. (A name that cannot resolve stands for
    # Azure's token service: the deployment may have no network.)
    only_local(deployed)
    connection = json.loads(deployed.airflow.env["AIRFLOW_CONN_ARR_DEFAULT"])
    body = {
        "connection_id": "arr_sts_on_azure",
        "conn_type": "azure_remote_rendering",
        "host": connection["host"],
        "login": connection["login"],
        "password": connection["password"],
        "extra": json.dumps({"sts_url": "https://sts.unresolvable.invalid"}),
    }
    started = time.monotonic()
    answer = deployed.airflow.api.post("/connections/test", json=body)
    seconds = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["status"] is False, result
    assert seconds < 10, f"the test took {seconds:.1f} s: {result['message']}"
    assert f"set the Token service URL to {connection['host']}" in result["message"], result
    assert "arr_sts_on_azure" not in result["message"]
    assert "attempt" not in result["message"], result  # one try, no retry budget
    print(f"\n{deployed.name}: a test with the token service unreachable answered in {seconds:.1f} s")


# --- the DAG runs ----------------------------------------------------------------------------------------


def test_pipeline_succeeds_with_the_sensor_deferred_to_the_triggerer(deployed):
    assert finished(deployed)["pipeline"] == "success"
    states = ti_states(deployed, "pipeline")
    assert {task for task, _ in states} == PIPELINE_TASKS
    assert set(states.values()) == {"success"}, states
    # The sensor really waited in the triggerer: its task instance was seen deferred...
    seen = deployed.watcher.states_seen("pipeline", "wait_ready")
    assert "deferred" in seen, f"wait_ready was seen in {seen}, never deferred"
    dag_id, run_id = deployed.watcher.runs["pipeline"]
    session_id = deployed.airflow.xcom(dag_id, run_id, "create")
    # ...and its log, as the API serves it, shows the deferral and the trigger polling in the triggerer.
    expected = (
        "Pausing task as DEFERRED",  # the worker's part
        "triggers.remote_rendering.RemoteRenderingSessionTrigger",  # the triggerer's part
        f"Session {session_id} is Starting",
        f"Session {session_id} is Ready",
    )
    task_log = deployed.airflow.task_log(dag_id, run_id, "wait_ready", expect=expected)
    for part in expected:
        assert part in task_log, f"{part!r} not in the log:\n{task_log[-3000:]}"
    first_look = re.search(rf"Session {session_id} is Starting \(elapsed (\d+):(\d+):(\d+)", task_log)
    if first_look:  # how much of the emulator's start delay was left when the sensor deferred
        hours, minutes, seconds = (int(part) for part in first_look.groups())
        age = hours * 3600 + minutes * 60 + seconds
        print(f"\n{deployed.name}: the sensor first saw its session {age} s old")
    # The render used the Ready session, and the teardown stopped it.
    properties = deployed.airflow.xcom(dag_id, run_id, "wait_ready")
    assert properties["session_id"] == session_id
    assert properties["hostname"]
    assert deployed.airflow.xcom(dag_id, run_id, "stop") == "Stopped"
    assert session_status(deployed, session_id) == "Stopped"


def test_fanout_renders_each_scene_on_its_own_session(deployed):
    assert finished(deployed)["fanout"] == "success"
    states = ti_states(deployed, "fanout")
    assert set(states.values()) == {"success"}, states
    assert sorted(index for task, index in states if task == "render") == [0, 1, 2]
    dag_id, run_id = deployed.watcher.runs["fanout"]
    session_ids = {deployed.airflow.xcom(dag_id, run_id, "create", map_index=index) for index in range(3)}
    assert len(session_ids) == 3
    assert {session_status(deployed, session_id) for session_id in session_ids} == {"Stopped"}


def test_failed_render_fails_the_run_and_the_teardown_stops_the_session(deployed):
    assert finished(deployed)["pipeline_fail"] == "failed"
    states = ti_states(deployed, "pipeline_fail")
    assert states[("render", -1)] == "failed"
    assert states[("stop", -1)] == "success"
    assert states[("create", -1)] == "success"
    dag_id, run_id = deployed.watcher.runs["pipeline_fail"]
    session_id = deployed.airflow.xcom(dag_id, run_id, "create")
    assert session_status(deployed, session_id) == "Stopped"


def test_a_run_marked_failed_while_the_sensor_is_deferred_still_stops_its_session(deployed):
    # The watcher marked the run failed (PATCH dagRuns/{id} state=failed, the UI's "Mark failed")
    # once wait_ready was deferred and its trigger polling in the triggerer: Airflow fails the deferred
    # sensor (the trigger's on_kill runs in the triggerer), skips what had not run, and still runs the
    # teardown.
    final = finished(deployed)["pipeline_marked_failed"]
    assert "pipeline_marked_failed" in deployed.watcher.marked_failed
    states = ti_states(deployed, "pipeline_marked_failed")
    assert states[("wait_ready", -1)] == "failed", states
    assert states[("extend", -1)] == "skipped", states
    assert states[("render", -1)] == "skipped", states
    assert states[("stop", -1)] == "success", states
    # Airflow 3.3 does not set the run's state when a teardown is still to run; the scheduler decides
    # it afterwards from the leaves, which (render skipped, the teardown not counted) look successful.
    assert final == "success", f"the run ended {final}: Airflow's mark-failed semantics changed?"
    dag_id, run_id = deployed.watcher.runs["pipeline_marked_failed"]
    # The trigger's on_kill ran in the triggerer; the sensor leaves stopping to the teardown.
    killed = "Trigger cancelled by user action, invoking on_kill"
    left = "is left running (this wait did not create it; the task that did, or the teardown that stops it"
    task_log = deployed.airflow.task_log(dag_id, run_id, "wait_ready", expect=(killed, left))
    assert killed in task_log, task_log[-3000:]
    assert left in task_log, task_log[-3000:]
    session_id = deployed.airflow.xcom(dag_id, run_id, "create")
    assert session_status(deployed, session_id) == "Stopped"


def test_convert_and_render_converts_renders_and_stops_its_session(deployed):
    final = finished(deployed)["convert"]
    assert final == "success", ti_states(deployed, "convert")
    states = ti_states(deployed, "convert")
    assert {state for state in states.values()} == {"success"}, states
    (conversion,) = httpx.get(f"{deployed.emulator.url}/_emulator/conversions", timeout=10).json()
    assert conversion["status"] == "Succeeded"
    dag_id, run_id = deployed.watcher.runs["convert"]
    assert deployed.airflow.xcom(dag_id, run_id, "convert").endswith(".arrAsset")


def test_no_session_is_left_running(deployed):
    finished(deployed)
    sessions = deployed.emulator.sessions()
    # One per pipeline run, three for the fan-out, one for the convert-and-render run.
    assert len(sessions) == 7
    assert {session["status"] for session in sessions} == {"Stopped"}, sessions
    timings = deployed.timings
    deployed_in, runs_in = timings["ready"], timings["runs_finished"] - timings["ready"]
    print(
        f"\n{deployed.name}: deployment ready in {deployed_in:.0f} s, "
        f"four DAG runs done {runs_in:.0f} s later ("
        + ", ".join(
            f"{label} {secs:.0f} s" for label, secs in sorted(deployed.watcher.finished_after.items())
        )
        + ")"
    )
