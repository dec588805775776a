"""The v1 session API over a real loopback socket, talked to with plain httpx."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import jwt
import pytest

from airflow_provider_arr.emulator import ArrEmulator
from tests.emulator.conftest import PROPERTY_FIELDS

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def properties(client, sessions_url, auth, session_id):
    response = client.get(f"{sessions_url}/{session_id}/properties", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


# ------------------------------------------------------------------------------------------- create


def test_create_answers_202_with_id_and_location(client, emulator, auth, sessions_url, check_headers):
    response = client.post(
        f"{sessions_url}/create",
        json={"maxLeaseTime": "4:0:0", "models": [], "size": "standard"},
        headers=auth,
    )
    assert response.status_code == 202
    body = response.json()
    assert list(body) == ["sessionId"]
    assert GUID.match(body["sessionId"])
    assert response.headers["Location"] == f"accounts/{emulator.account_id}/sessions/{body['sessionId']}"
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.content == b'{"sessionId":"%s"}' % body["sessionId"].encode()
    check_headers(response)


def test_create_accepts_powershell_style(client, auth, sessions_url):
    # Trailing slash, no models, upper-case size, extra fields.
    body = {"maxLeaseTime": "04:00:00", "size": "Premium", "directConnectionSession": "false"}
    response = client.post(f"{sessions_url}/create/", json=body, headers=auth)
    assert response.status_code == 202
    assert properties(client, sessions_url, auth, response.json()["sessionId"])["sessionSize"] == "Premium"


@pytest.mark.parametrize(
    ("lease", "answered"),
    [("4:0:0", "04:00:00"), ("0:30:0", "00:30:00"), ("1.00:00:00", "1.00:00:00"), ("23:59:59", "23:59:59")],
)
def test_lease_is_answered_zero_padded(client, auth, sessions_url, create_session, lease, answered):
    session_id = create_session(lease)
    assert properties(client, sessions_url, auth, session_id)["sessionMaxLeaseTime"] == answered


def post_create(client, sessions_url, auth, **kwargs):
    return client.post(f"{sessions_url}/create", headers=auth, **kwargs)


@pytest.mark.parametrize(
    "lease",
    ["4h", "-1:00:00", "0:61:00", "", "25:00:00", "1.00:00:01", "0:0:0", 0, 4, None, ["4:0:0"], "MISSING"],
)
def test_bad_lease_is_a_400_naming_the_field(client, emulator, auth, sessions_url, check_headers, lease):
    body = {"models": [], "size": "standard"}
    if lease != "MISSING":
        body["maxLeaseTime"] = lease
    response = post_create(client, sessions_url, auth, json=body)
    assert response.status_code == 400
    assert "maxLeaseTime" in response.json()["error"]
    check_headers(response)
    assert emulator.state.sessions() == []


@pytest.mark.parametrize("size", ["large", "", 1, None, "MISSING"])
def test_bad_size_is_a_400_naming_the_field(client, auth, sessions_url, size):
    body = {"maxLeaseTime": "4:0:0"}
    if size != "MISSING":
        body["size"] = size
    response = post_create(client, sessions_url, auth, json=body)
    assert response.status_code == 400
    assert "size" in response.json()["error"]


@pytest.mark.parametrize("models", ["https://x/a.arrAsset", [1], [None], {"a": "b"}])
def test_bad_models_is_a_400_naming_the_field(client, auth, sessions_url, models):
    body = {"maxLeaseTime": "4:0:0", "size": "standard", "models": models}
    response = post_create(client, sessions_url, auth, json=body)
    assert response.status_code == 400
    assert "models" in response.json()["error"]


@pytest.mark.parametrize(
    "content",
    [b"", b"[]", b'"4:0:0"', b"null", b"{'maxLeaseTime': '4:0:0'}", b"not json", b"\xff\xfe", b"[" * 100_000],
)
def test_body_that_is_no_json_object_is_a_400(client, auth, sessions_url, check_headers, content):
    response = post_create(client, sessions_url, auth, content=content)
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]
    check_headers(response)


# --------------------------------------------------------------------------------------- properties


def test_properties_field_order_and_starting_shape(client, auth, sessions_url, create_session, check_headers):
    session_id = create_session()
    response = client.get(f"{sessions_url}/{session_id}/properties", headers=auth)
    check_headers(response)
    body = response.json()
    assert list(body) == PROPERTY_FIELDS
    assert body == {
        "message": None,
        "sessionElapsedTime": "00:00:00",
        "sessionHostname": None,
        "sessionId": session_id,
        "sessionMaxLeaseTime": "04:00:00",
        "sessionSize": "Standard",
        "sessionStatus": "Starting",
    }


def test_elapsed_time_and_hostname_follow_the_clock(client, auth, sessions_url, create_session, clock):
    session_id = create_session("2:0:0")
    clock.advance(5)
    ready = properties(client, sessions_url, auth, session_id)
    assert ready["sessionStatus"] == "Ready"
    assert re.fullmatch(
        r"[0-9a-f-]{36}\.remoterenderingvm\.westus2\.mixedreality\.azure\.com", ready["sessionHostname"]
    )
    assert not ready["sessionHostname"].startswith(session_id)
    clock.advance(3600 + 61.9)
    assert properties(client, sessions_url, auth, session_id)["sessionElapsedTime"] == "01:01:06"


def test_session_ids_are_guids_in_any_case(client, auth, sessions_url, create_session):
    session_id = create_session()
    assert properties(client, sessions_url, auth, session_id.upper())["sessionId"] == session_id


@pytest.mark.parametrize("session_id", [str(uuid.uuid4()), "not-a-guid", "create", "%20", "x" * 300])
def test_unknown_session_is_a_404_everywhere(client, auth, sessions_url, check_headers, session_id):
    answers = [
        client.get(f"{sessions_url}/{session_id}/properties", headers=auth),
        client.patch(f"{sessions_url}/{session_id}", json={"maxLeaseTime": "5:0:0"}, headers=auth),
        client.delete(f"{sessions_url}/{session_id}", headers=auth),
    ]
    for response in answers:
        assert response.status_code == 404, response.text
        assert "No session" in response.json()["error"]
        check_headers(response)


def test_other_accounts_session_is_not_found(client, emulator, get_token, create_session):
    session_id = create_session()
    other_id, other_key = emulator.state.add_account()
    other_auth = {"Authorization": f"Bearer {get_token(other_id, other_key)}"}
    response = client.get(f"/v1/accounts/{other_id}/sessions/{session_id}/properties", headers=other_auth)
    assert response.status_code == 404
    listed = client.get(f"/v1/accounts/{other_id}/sessions", headers=other_auth)
    assert listed.json() == {"sessions": []}


# ----------------------------------------------------------------------------------- life cycle


def test_life_cycle_in_real_time(client, emulator, auth, sessions_url, create_session, check_headers):
    session_id = create_session("1:0:0")
    assert properties(client, sessions_url, auth, session_id)["sessionStatus"] == "Starting"
    deadline = time.monotonic() + 3
    while (status := properties(client, sessions_url, auth, session_id)["sessionStatus"]) == "Starting":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status == "Ready"

    extend = client.patch(f"{sessions_url}/{session_id}", json={"maxLeaseTime": "2:0:0"}, headers=auth)
    assert extend.status_code == 200
    assert extend.content == b""
    check_headers(extend)
    assert properties(client, sessions_url, auth, session_id)["sessionMaxLeaseTime"] == "02:00:00"
    assert [s["sessionId"] for s in client.get(sessions_url, headers=auth).json()["sessions"]] == [session_id]

    stop = client.delete(f"{sessions_url}/{session_id}", headers=auth)
    assert stop.status_code == 204
    assert stop.content == b""
    check_headers(stop)
    stopped = properties(client, sessions_url, auth, session_id)
    assert stopped["sessionStatus"] == "Stopped"
    assert client.get(sessions_url, headers=auth).json() == {"sessions": []}

    again = client.delete(f"{sessions_url}/{session_id}", headers=auth)
    assert again.status_code == 204
    assert properties(client, sessions_url, auth, session_id) == stopped

    late = client.patch(f"{sessions_url}/{session_id}", json={"maxLeaseTime": "3:0:0"}, headers=auth)
    assert late.status_code == 400
    assert "final state" in late.json()["error"]
    assert [record.status for record in emulator.state.sessions()] == ["Stopped"]


def test_lease_runs_out(client, auth, sessions_url, create_session, clock):
    session_id = create_session("0:10:0")
    clock.advance(599)
    assert properties(client, sessions_url, auth, session_id)["sessionStatus"] == "Ready"
    clock.advance(1)
    expired = properties(client, sessions_url, auth, session_id)
    assert expired["sessionStatus"] == "Expired"
    assert "lease" in expired["message"]
    assert expired["sessionElapsedTime"] == "00:10:00"
    clock.advance(3600)
    assert properties(client, sessions_url, auth, session_id)["sessionElapsedTime"] == "00:10:00"
    assert client.get(sessions_url, headers=auth).json() == {"sessions": []}
    assert client.delete(f"{sessions_url}/{session_id}", headers=auth).status_code == 204
    assert properties(client, sessions_url, auth, session_id)["sessionStatus"] == "Expired"


def test_extension_keeps_the_session_alive(client, auth, sessions_url, create_session, clock):
    session_id = create_session("0:10:0")
    clock.advance(500)
    assert (
        client.patch(
            f"{sessions_url}/{session_id}", json={"maxLeaseTime": "0:20:0"}, headers=auth
        ).status_code
        == 200
    )
    clock.advance(200)
    assert properties(client, sessions_url, auth, session_id)["sessionStatus"] == "Ready"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"maxLeaseTime": "4:0:0"}, "larger than the current lease of 04:00:00"),
        ({"maxLeaseTime": "3:0:0"}, "larger"),
        ({"maxLeaseTime": "1.00:00:01"}, "24 hours"),
        ({"maxLeaseTime": "5h"}, "maxLeaseTime"),
        ({}, "maxLeaseTime"),
        ([], "JSON object"),
    ],
)
def test_bad_update_is_a_400(client, auth, sessions_url, create_session, body, fragment):
    session_id = create_session("4:0:0")
    response = client.patch(f"{sessions_url}/{session_id}", json=body, headers=auth)
    assert response.status_code == 400
    assert fragment in response.json()["error"]
    assert properties(client, sessions_url, auth, session_id)["sessionMaxLeaseTime"] == "04:00:00"


def test_update_while_starting_is_allowed(client, auth, sessions_url, create_session, clock):
    session_id = create_session("1:0:0")
    response = client.patch(f"{sessions_url}/{session_id}/", json={"maxLeaseTime": "1:30:0"}, headers=auth)
    assert response.status_code == 200


def test_list_shows_active_sessions_of_the_account(
    client, emulator, auth, sessions_url, create_session, clock
):
    starting = create_session()
    stopped = create_session()
    client.delete(f"{sessions_url}/{stopped}", headers=auth)
    emulator.state.create_session(
        emulator.state.add_account()[0], emulator.state.sessions()[0].max_lease_time
    )
    response = client.get(f"{sessions_url}/", headers=auth)
    assert response.status_code == 200
    sessions = response.json()["sessions"]
    assert [s["sessionId"] for s in sessions] == [starting]
    assert list(sessions[0]) == PROPERTY_FIELDS
    assert len(emulator.state.sessions()) == 3
    assert [r.status for r in emulator.state.active_sessions()] == ["Starting", "Starting"]  # both accounts


def test_failed_start(client, emulator, auth, sessions_url, create_session, clock):
    emulator.state.fail_next_start("No capacity for Standard sessions in westus2.")
    failing = create_session()
    healthy = create_session()
    clock.advance(5)
    failed = properties(client, sessions_url, auth, failing)
    assert (failed["sessionStatus"], failed["message"], failed["sessionHostname"]) == (
        "Error",
        "No capacity for Standard sessions in westus2.",
        None,
    )
    assert properties(client, sessions_url, auth, healthy)["sessionStatus"] == "Ready"
    assert [s["sessionId"] for s in client.get(sessions_url, headers=auth).json()["sessions"]] == [healthy]


def test_external_stop_and_expiry_are_visible(client, emulator, auth, sessions_url, create_session):
    first, second = create_session(), create_session()
    emulator.state.stop_session_externally(first)
    emulator.state.expire_session(second, "Lease ran out (forced).")
    assert properties(client, sessions_url, auth, first)["sessionStatus"] == "Stopped"
    assert properties(client, sessions_url, auth, second)["message"] == "Lease ran out (forced)."


# -------------------------------------------------------------------------------------------- auth


def all_calls(client, sessions_url, headers):
    session_id = str(uuid.uuid4())
    return [
        client.post(
            f"{sessions_url}/create", json={"maxLeaseTime": "4:0:0", "size": "standard"}, headers=headers
        ),
        client.patch(f"{sessions_url}/{session_id}", json={"maxLeaseTime": "5:0:0"}, headers=headers),
        client.get(sessions_url, headers=headers),
        client.get(f"{sessions_url}/{session_id}/properties", headers=headers),
        client.delete(f"{sessions_url}/{session_id}", headers=headers),
    ]


def forged_token(emulator):
    claims = {"iss": "arr-emulator", "accountId": emulator.account_id, "iat": 0, "nbf": 0, "exp": 2**31}
    return jwt.encode(claims, b"x" * 32, algorithm="HS256")


@pytest.mark.parametrize("case", ["missing", "empty", "garbage", "forged", "account key", "basic"])
def test_bad_token_is_a_401_with_challenge(client, emulator, sessions_url, check_headers, case):
    headers = {
        "missing": {},
        "empty": {"Authorization": "Bearer"},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
        "forged": {"Authorization": f"Bearer {forged_token(emulator)}"},
        "account key": {"Authorization": f"Bearer {emulator.account_id}:{emulator.account_key}"},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
    }[case]
    for response in all_calls(client, sessions_url, headers):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert response.json()["error"]
        check_headers(response)
    assert emulator.state.sessions() == []


def test_expired_token_is_a_401():
    wall = [1_700_000_000.0]
    with (
        ArrEmulator(token_lifetime=60, wall_clock=lambda: wall[0]) as emulator,
        httpx.Client(base_url=emulator.url) as client,
    ):
        token = client.get(
            f"/accounts/{emulator.account_id}/token",
            headers={"Authorization": f"Bearer {emulator.account_id}:{emulator.account_key}"},
        ).json()["AccessToken"]
        sessions_url = f"/v1/accounts/{emulator.account_id}/sessions"
        headers = {"Authorization": f"Bearer {token}"}
        wall[0] += 59
        assert client.get(sessions_url, headers=headers).status_code == 200
        wall[0] += 1
        response = client.get(sessions_url, headers=headers)
        assert response.status_code == 401
        assert "expired" in response.json()["error"]


def test_revoked_tokens_are_401_until_a_new_one_is_fetched(client, emulator, auth, sessions_url, get_token):
    assert client.get(sessions_url, headers=auth).status_code == 200
    emulator.state.revoke_tokens()
    assert client.get(sessions_url, headers=auth).status_code == 401
    fresh = {"Authorization": f"Bearer {get_token(emulator.account_id, emulator.account_key)}"}
    assert client.get(sessions_url, headers=fresh).status_code == 200


def test_other_accounts_token_is_a_403(client, emulator, get_token, sessions_url, check_headers):
    other_id, other_key = emulator.state.add_account()
    headers = {"Authorization": f"Bearer {get_token(other_id, other_key)}"}
    for response in all_calls(client, sessions_url, headers):
        assert response.status_code == 403
        assert emulator.account_id in response.json()["error"]
        check_headers(response)


# ---------------------------------------------------------------------------------- other answers


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 404),
        ("GET", "/v2/accounts/x/sessions", 404),
        ("GET", "/v1/accounts/x/sessions/y", 405),
        ("PUT", "/v1/accounts/x/sessions/create", 405),
        ("POST", "/accounts/x/token", 405),
        ("GET", "/docs", 404),
    ],
)
def test_unknown_routes_answer_json_with_headers(client, check_headers, method, path, status):
    response = client.request(method, path)
    assert response.status_code == status
    assert response.json()["error"]
    check_headers(response)
