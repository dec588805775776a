"""Faults beyond canned answers: dropped connections, truncated and garbled answers, slow starts, chaos.

Each is checked from the outside with both HTTP clients the provider uses (requests for the sync
hook, httpx for the async one), because what matters is what a client sees on the wire.
"""

from __future__ import annotations

import argparse
import ssl
from collections import Counter

import httpx
import pytest
import requests

from airflow_provider_arr.emulator import ArrEmulator, EmulatorState
from airflow_provider_arr.emulator.cli import build_parser, parse_fault
from airflow_provider_arr.emulator.process import EmulatorProcess

CREATE_BODY = {"maxLeaseTime": "1:0:0", "size": "standard"}


def post_create(emulator, auth, library: str) -> requests.Response | httpx.Response:
    url = f"{emulator.url}/v1/accounts/{emulator.account_id}/sessions/create"
    if library == "requests":
        with requests.Session() as http:
            return http.post(url, json=CREATE_BODY, headers=auth, timeout=5)
    with httpx.Client(timeout=5) as http:
        return http.post(url, json=CREATE_BODY, headers=auth)


CLIENT_ERRORS = {"requests": requests.RequestException, "httpx": httpx.HTTPError}


@pytest.mark.parametrize("library", ["requests", "httpx"])
@pytest.mark.parametrize(("action", "processed"), [("drop_before", False), ("drop_after", True)])
def test_dropped_connection_gives_no_answer_at_all(emulator, auth, library, action, processed):
    emulator.state.add_fault("create", action=action)

    with pytest.raises(CLIENT_ERRORS[library]) as raised:
        post_create(emulator, auth, library)

    text = f"{type(raised.value).__name__}: {raised.value}"
    assert any(word in text for word in ("reset", "Disconnected", "disconnected", "aborted")), text
    assert len(emulator.state.sessions()) == (1 if processed else 0)
    assert emulator.state.faults_injected == Counter({action: 1})
    assert post_create(emulator, auth, library).status_code == 202  # the next call is served normally


@pytest.mark.parametrize("library", ["requests", "httpx"])
@pytest.mark.parametrize(("status", "processed"), [(None, True), (202, False)])
def test_truncated_answer_is_an_incomplete_read(emulator, auth, library, status, processed):
    body = {"sessionId": "not-sent-in-full"} if status else ""
    emulator.state.add_fault("create", status, body=body, action="truncate")

    with pytest.raises(CLIENT_ERRORS[library]) as raised:
        post_create(emulator, auth, library)

    assert "IncompleteRead" in repr(raised.value) or "complete message body" in str(raised.value)
    assert len(emulator.state.sessions()) == (1 if processed else 0)


def test_truncated_204_arrives_complete_and_the_connection_closes(
    emulator, auth, sessions_url, create_session
):
    session_id = create_session()
    emulator.state.add_fault("stop", action="truncate")
    with requests.Session() as http:
        url = f"{emulator.url}{sessions_url}/{session_id}"
        answer = http.delete(url, headers=auth, timeout=5)
        assert (answer.status_code, answer.headers["Connection"]) == (204, "close")
        assert http.get(f"{url}/properties", headers=auth, timeout=5).json()["sessionStatus"] == "Stopped"


@pytest.mark.parametrize("library", ["requests", "httpx"])
def test_garbled_answer_keeps_status_and_headers(emulator, auth, library):
    emulator.state.add_fault("create", action="garble")

    answer = post_create(emulator, auth, library)

    (record,) = emulator.state.sessions()  # processed
    assert answer.status_code == 202
    assert answer.headers["Location"].endswith(record.session_id)
    assert answer.text == '{"garbled'
    assert emulator.state.faults_injected == Counter({"garble": 1})


def test_fault_without_body_answers_in_the_dialects_error_shape(client, emulator, auth, sessions_url):
    emulator.state.add_fault("list", 503, body=None)
    emulator.state.add_fault("list", 429, body=None, headers={"Retry-After": "1"})
    assert client.get(sessions_url, headers=auth).json() == {
        "error": "The service is temporarily unavailable; retry later."
    }
    throttled = client.get(f"/accounts/{emulator.account_id}/sessions?api-version=2021-01-01", headers=auth)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert throttled.json() == {
        "error": {"code": "TooManyRequests", "message": "Too many requests; retry later."}
    }
    assert throttled.headers["api-supported-versions"]


def test_dropped_connection_over_tls(tmp_path):
    from airflow_provider_arr.emulator.tls import make_self_signed_cert

    certfile, keyfile = make_self_signed_cert(tmp_path)
    with ArrEmulator(certfile=certfile, keyfile=keyfile) as emulator:
        emulator.state.add_fault("token", action="drop_after")
        url = f"{emulator.url}/accounts/{emulator.account_id}/token"
        headers = {"Authorization": f"Bearer {emulator.account_id}:{emulator.account_key}"}
        with httpx.Client(verify=ssl.create_default_context(cafile=certfile), timeout=5) as http:
            with pytest.raises(httpx.HTTPError):
                http.get(url, headers=headers)
            assert http.get(url, headers=headers).status_code == 200
        assert len(emulator.state.issued_tokens()) == 2  # the lost answer's token was issued too


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"action": "explode"}, "action must be one of"),
        ({"status": 500, "action": "drop_before"}, "sends no status"),
        ({"status": 200, "action": "garble"}, "sends no status"),
    ],
)
def test_add_fault_rejects_contradictions(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        EmulatorState().add_fault("create", **kwargs)


def test_slow_next_start(client, emulator, clock, auth, sessions_url, create_session):
    emulator.state.slow_next_start(60)
    slow, normal = create_session(), create_session()
    clock.advance(10)
    status = {
        session_id: client.get(f"{sessions_url}/{session_id}/properties", headers=auth).json()[
            "sessionStatus"
        ]
        for session_id in (slow, normal)
    }
    assert status == {slow: "Starting", normal: "Ready"}
    clock.advance(50)
    assert client.get(f"{sessions_url}/{slow}/properties", headers=auth).json()["sessionStatus"] == "Ready"
    assert emulator.state.faults_injected == Counter({"slow_start": 1})


def test_issued_tokens_are_recorded_and_reset(emulator, get_token):
    first = get_token(emulator.account_id, emulator.account_key)
    second = get_token(emulator.account_id, emulator.account_key)
    assert emulator.state.issued_tokens() == [first, second]
    emulator.state.reset()
    assert emulator.state.issued_tokens() == []


# ------------------------------------------------------------------------------------------- chaos


def draw(state: EmulatorState, calls: int = 400) -> list[str | None]:
    kinds = []
    for index in range(calls):
        fault = state.begin_request(sorted(["list", "create", "properties", "stop"])[index % 4])
        kinds.append(fault.kind if fault else None)
    return kinds


def test_chaos_is_reproducible_for_a_seed_and_counts_what_it_injects():
    first, second, other = EmulatorState(), EmulatorState(), EmulatorState()
    for state, seed in ((first, 7), (second, 7), (other, 8)):
        state.enable_chaos(rate=0.25, seed=seed)
    kinds = draw(first)
    assert kinds == draw(second)
    assert kinds != draw(other)
    injected = [kind for kind in kinds if kind]
    assert 60 < len(injected) < 140  # about a quarter of 400
    assert set(injected) == {"429", "503", "500", "drop_before", "drop_after", "delay"}
    assert first.faults_injected == Counter(injected)


def test_chaos_respects_operations_kinds_rate_and_scripted_faults_first():
    state = EmulatorState()
    state.enable_chaos(rate=1.0, seed=1, operations=["stop"], kinds=["503"])
    state.add_fault("stop", 418)
    assert state.begin_request("list") is None
    assert state.begin_request("stop").status == 418
    assert state.begin_request("stop").status == 503
    state.disable_chaos()
    assert state.begin_request("stop") is None
    state.enable_chaos(rate=0.0, seed=1)
    assert draw(state, 50) == [None] * 50
    with pytest.raises(ValueError, match="kinds"):
        state.enable_chaos(kinds=["teapot"])
    with pytest.raises(ValueError, match="between 0 and 1"):
        state.enable_chaos(rate=1.5)


def test_chaos_session_faults():
    from datetime import timedelta

    clock = [0.0]
    state = EmulatorState(start_delay=1, clock=lambda: clock[0])
    state.enable_chaos(rate=0.0, session_rate=1.0, seed=3, slow_start=10)
    sessions = [state.create_session(state.account_id, timedelta(hours=1)).session_id for _ in range(40)]
    clock[0] = 2.0
    statuses = Counter(state.get_session(session_id).status for session_id in sessions)
    assert statuses["Error"] == state.faults_injected["fail_start"] > 0
    assert statuses["Starting"] == state.faults_injected["slow_start"] > 0  # 5 to 10 s late
    assert statuses["Ready"] == 0
    clock[0] = 11.0
    assert {state.get_session(session_id).status for session_id in sessions} == {"Error", "Ready"}
    errored = next(s for s in state.sessions() if s.status == "Error")
    assert "chaos" in errored.message


def test_chaos_over_http_and_the_faults_route(client, emulator, auth, sessions_url):
    emulator.state.enable_chaos(rate=1.0, seed=5, operations=["list"], kinds=["drop_before", "503"])
    seen = Counter()
    for _ in range(12):
        try:
            seen[str(client.get(sessions_url, headers=auth).status_code)] += 1
        except httpx.HTTPError:
            seen["dropped"] += 1
    assert seen == Counter({"503": emulator.state.faults_injected["503"], "dropped": seen["dropped"]})
    assert seen["dropped"] == emulator.state.faults_injected["drop_before"] > 0
    assert client.get("/_emulator/faults").json() == dict(emulator.state.faults_injected)


# --------------------------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("create:503", {"operation": "create", "status": 503}),
        ("list:429:3", {"operation": "list", "status": 429, "count": 3}),
        ("stop:drop_after", {"operation": "stop", "action": "drop_after"}),
        ("token:truncate:2", {"operation": "token", "action": "truncate", "count": 2}),
    ],
)
def test_parse_fault(text, expected):
    assert parse_fault(text) == expected


@pytest.mark.parametrize(
    "text", ["create", "delete:503", "create:99", "create:oops", "create:503:0", "a:1:2:3"]
)
def test_parse_fault_refuses_nonsense(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_fault(text)


def test_cli_options_parse():
    args = build_parser().parse_args(
        ["--fault", "create:503", "--fault", "list:drop_before:2", "--chaos-rate", "0.1"]
    )
    assert args.fault == [
        {"operation": "create", "status": 503},
        {"operation": "list", "action": "drop_before", "count": 2},
    ]
    assert (args.chaos_rate, args.chaos_seed) == (0.1, None)


def test_cli_injects_faults_and_chaos():
    options = ["--fault", "token:503:2", "--chaos-rate", "1", "--chaos-seed", "4"]
    with EmulatorProcess(*options) as process:
        url = process.banner[0].strip().removeprefix("ARR_EMULATOR_URL=")
        banner = "".join(process.banner[1:9])
        assert "chaos: 100% of calls" in banner
        with httpx.Client(base_url=url, timeout=5) as http:
            statuses = []
            for _ in range(4):
                try:
                    statuses.append(http.get("/accounts/x/token").status_code)
                except httpx.HTTPError:
                    statuses.append("dropped")
            faults = http.get("/_emulator/faults").json()
        assert statuses[:2] == [503, 503]  # scripted first, then chaos
        assert sum(faults.values()) == 4
        assert faults["503"] >= 2
