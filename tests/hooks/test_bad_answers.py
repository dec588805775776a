"""Malformed answers from the service: each gives an error that says what was wrong, never a KeyError."""

from __future__ import annotations

import json

import pytest

from airflow_provider_arr.exceptions import RemoteRenderingError, RemoteRenderingSessionMayExistError
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

SESSION = "e13d2c44-63e0-4591-991e-f9e05e599a93"
GOOD = {
    "message": None,
    "sessionElapsedTime": "00:00:01",
    "sessionHostname": "h.remoterenderingvm.westus2.mixedreality.azure.com",
    "sessionId": SESSION,
    "sessionMaxLeaseTime": "04:00:00",
    "sessionSize": "Standard",
    "sessionStatus": "Ready",
}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("this is not json", "answer is not JSON"),
        ('{"sessionId": "' + SESSION + '", "sessionStat', "answer is not JSON"),  # truncated
        ("[]", "should be a JSON object"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "sessionId"}), "'sessionId' is missing"),
        (json.dumps({**GOOD, "sessionStatus": 3}), "unknown session status 3"),
        (json.dumps({**GOOD, "sessionMaxLeaseTime": 240}), "'sessionMaxLeaseTime'"),
        (json.dumps({**GOOD, "sessionHostname": ["a"]}), "'sessionHostname' should be a string"),
        ("", "'properties' should be a JSON object"),
    ],
)
def test_malformed_properties(arr_conn, body, expected):
    arr_conn.state.add_fault("properties", 200, body=body)
    with pytest.raises(RemoteRenderingError, match="get_session failed: HTTP 200") as error:
        RemoteRenderingHook().get_session(SESSION)
    assert expected in str(error.value)
    assert "MS-CV: " in str(error.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"sessions": {}}', "'sessions' is missing or not a list"),
        ("{}", "'sessions' is missing or not a list"),
        ("nope", "answer is not JSON"),
    ],
)
def test_malformed_list(arr_conn, body, expected):
    arr_conn.state.add_fault("list", 200, body=body)
    with pytest.raises(RemoteRenderingError, match="list_sessions failed") as error:
        RemoteRenderingHook().list_sessions()
    assert expected in str(error.value)


def test_create_accepted_without_an_id_says_the_session_may_exist(arr_conn):
    arr_conn.state.add_fault("create", 202, body='{"id": 7}')
    with pytest.raises(RemoteRenderingSessionMayExistError, match="has no valid sessionId") as error:
        RemoteRenderingHook().create_session("1:0:0")
    # The injected answer was not processed, so no session exists: the listings say so.
    assert "No new session appeared" in str(error.value)
    assert arr_conn.state.sessions() == []


def test_create_id_taken_from_location_when_the_body_is_empty(arr_conn):
    location = f"accounts/{arr_conn.account_id}/sessions/{SESSION}"
    arr_conn.state.add_fault("create", 202, body="", headers={"Location": location})
    assert RemoteRenderingHook().create_session("1:0:0") == SESSION


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, '{"error": "maxLeaseTime is invalid"}', "HTTP 400; service message: maxLeaseTime is invalid"),
        (400, "<html>bad</html>", "HTTP 400; service message: <html>bad</html>"),
        (403, "", "HTTP 403; service message: no message"),
        (409, '{"error": {"code": "Conflict", "message": "too many"}}', "Conflict: too many"),
    ],
)
def test_error_bodies_of_every_shape(arr_conn, status, body, expected):
    arr_conn.state.add_fault("list", status, body=body)
    with pytest.raises(RemoteRenderingError, match="list_sessions failed") as error:
        RemoteRenderingHook().list_sessions()
    assert expected in str(error.value)
    assert arr_conn.state.request_counts["list"] == 1  # 4xx are not retried


def test_token_answer_without_access_token(arr_conn):
    arr_conn.state.add_fault("token", 200, body='{"token": "x"}')
    with pytest.raises(RemoteRenderingError, match=r"get_token failed: HTTP 200.*no 'AccessToken'"):
        RemoteRenderingHook().list_sessions()
