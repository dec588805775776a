"""Injected faults, request counts and the emulator-only introspection routes."""

from __future__ import annotations

import httpx
import pytest


def test_429_with_retry_after_then_normal(client, emulator, auth, sessions_url, check_headers):
    emulator.state.add_fault("list", 429, {"error": "Too many requests."}, {"Retry-After": "1"}, count=2)
    answers = [client.get(sessions_url, headers=auth) for _ in range(3)]
    assert [response.status_code for response in answers] == [429, 429, 200]
    for response in answers[:2]:
        assert response.headers["Retry-After"] == "1"
        assert response.json() == {"error": "Too many requests."}
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        check_headers(response)
    assert emulator.state.request_counts["list"] == 3


def test_503_on_the_sts_with_plain_text(client, emulator, get_token, check_headers):
    emulator.state.add_fault("token", 503, "Service Unavailable")
    response = client.get(
        f"/accounts/{emulator.account_id}/token",
        headers={"Authorization": f"Bearer {emulator.account_id}:{emulator.account_key}"},
    )
    assert (response.status_code, response.text) == (503, "Service Unavailable")
    assert response.headers["Content-Type"].startswith("text/plain")
    check_headers(response)
    assert get_token(emulator.account_id, emulator.account_key)
    assert emulator.state.request_counts["token"] == 2


def test_fault_replaces_processing_even_without_auth(client, emulator, sessions_url):
    emulator.state.add_fault("create", 500)
    response = client.post(f"{sessions_url}/create", json={"maxLeaseTime": "4:0:0", "size": "standard"})
    # Without a body of its own a canned 500 carries the v1 error body, as the service's does.
    assert (response.status_code, response.json()) == (500, {"error": "An internal server error occurred."})
    assert emulator.state.sessions() == []


def test_a_fault_only_hits_its_operation(client, emulator, auth, sessions_url, create_session):
    emulator.state.add_fault("stop", 503)
    session_id = create_session()
    assert client.get(f"{sessions_url}/{session_id}/properties", headers=auth).status_code == 200
    assert client.delete(f"{sessions_url}/{session_id}", headers=auth).status_code == 503
    assert client.delete(f"{sessions_url}/{session_id}", headers=auth).status_code == 204


def test_delay_alone_processes_the_call_but_answers_late(emulator, auth, sessions_url, create_session):
    session_id = create_session()
    emulator.state.add_fault("properties", None, delay=0.5)
    emulator.state.add_fault("create", None, delay=0.5)
    with httpx.Client(base_url=emulator.url, timeout=0.1) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            impatient.get(f"{sessions_url}/{session_id}/properties", headers=auth)
        assert impatient.get(f"{sessions_url}/{session_id}/properties", headers=auth).status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            impatient.post(
                f"{sessions_url}/create", json={"maxLeaseTime": "1:0:0", "size": "standard"}, headers=auth
            )
    # The service acted on the create; only its answer was lost: the client must not assume otherwise.
    assert len(emulator.state.sessions()) == 2
    assert emulator.state.request_counts["create"] == 2


def test_request_counts(client, emulator, auth, sessions_url, create_session):
    session_id = create_session()
    client.patch(f"{sessions_url}/{session_id}", json={"maxLeaseTime": "5:0:0"}, headers=auth)
    client.get(sessions_url, headers=auth)
    client.get(f"{sessions_url}/{session_id}/properties", headers=auth)
    client.get(f"{sessions_url}/{session_id}/properties", headers=auth)
    client.delete(f"{sessions_url}/{session_id}", headers=auth)
    expected = {"token": 1, "create": 1, "update": 1, "list": 1, "properties": 2, "stop": 1}
    assert emulator.state.request_counts == expected
    assert client.get("/_emulator/counts").json() == expected
    emulator.state.reset_counts()
    assert emulator.state.request_counts["properties"] == 0


def test_introspection_lists_every_session(
    client, emulator, auth, sessions_url, create_session, check_headers
):
    stopped, running = create_session(), create_session("1:0:0")
    client.delete(f"{sessions_url}/{stopped}", headers=auth)
    response = client.get("/_emulator/sessions")
    check_headers(response)
    sessions = response.json()
    assert [(s["sessionId"], s["status"]) for s in sessions] == [(stopped, "Stopped"), (running, "Starting")]
    assert sessions[1]["accountId"] == emulator.account_id
    assert sessions[1]["maxLeaseTime"] == "01:00:00"
    records = emulator.state.sessions()
    assert [(r.session_id, r.status, r.size) for r in records] == [
        (stopped, "Stopped", "Standard"),
        (running, "Starting", "Standard"),
    ]
    assert records[0].ended_at is not None
    assert records[1].ended_at is None
    assert "list" not in emulator.state.request_counts
