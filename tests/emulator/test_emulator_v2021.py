"""The 2021-01-01 session API over a real loopback socket, talked to with plain httpx."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from airflow_provider_arr.emulator import ArrEmulator
from airflow_provider_arr.emulator.v2021 import format_creation_time
from tests.emulator.conftest import STARTING_FIELDS

API = {"api-version": "2021-01-01"}
CREATION_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+00:00$")
HOSTNAME = re.compile(r"^arrwu2standard[0-9a-f]{32}\.remoterendering\.vm\.westus2\.mixedreality\.azure\.com$")
READY_FIELDS = [
    "id",
    "creationTime",
    "arrInspectorPort",
    "handshakePort",
    "elapsedTimeMinutes",
    "hostname",
    "maxLeaseTimeMinutes",
    "size",
    "status",
    "teraflops",
]
NEGATIVE_LEASE = {
    "error": {"code": "BadRequest", "message": "The maxLeaseTimeMinutes value cannot be negative."}
}
CONFLICT = {"error": {"code": "Conflict", "message": "A resource already exists under the given ID."}}


@pytest.fixture
def sessions(emulator: ArrEmulator) -> str:
    """``/accounts/{default account}/sessions`` (2021-01-01 paths have no ``/v1``)."""
    return f"/accounts/{emulator.account_id}/sessions"


@pytest.fixture
def put(client, auth, sessions):
    """PUT a session; returns the answer."""

    def create(session_id: str, minutes: object = 15, size: object = "Standard", **kwargs) -> httpx.Response:
        body = {"maxLeaseTimeMinutes": minutes, "size": size}
        return client.put(f"{sessions}/{session_id}", params=API, json=body, headers=auth, **kwargs)

    return create


@pytest.fixture
def get(client, auth, sessions):
    """GET a session's JSON, asserting a 200."""

    def fetch(session_id: str) -> dict:
        response = client.get(f"{sessions}/{session_id}", params=API, headers=auth)
        assert response.status_code == 200, response.text
        return response.json()

    return fetch


def check_dialect_headers(response: httpx.Response, cacheable: bool = True) -> None:
    assert response.headers["api-supported-versions"] == "2021-01-01-preview, 2021-01-01"
    assert re.match(r"^[A-Za-z0-9+/]{22}\.0$", response.headers["MS-CV"])
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    if cacheable:
        assert "Cache-Control" not in response.headers
    else:
        assert (response.headers["Cache-Control"], response.headers["Pragma"]) == (
            "no-store, no-cache",
            "no-cache",
        )


# ------------------------------------------------------------------------------------------- create


def test_put_answers_201_with_the_starting_session(put, emulator):
    response = put("rr-test-id", 15, "Standard")
    assert response.status_code == 201
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    check_dialect_headers(response)
    body = response.json()
    assert list(body) == STARTING_FIELDS
    assert CREATION_TIME.match(body.pop("creationTime"))
    assert body == {
        "id": "rr-test-id",
        "elapsedTimeMinutes": 0,
        "maxLeaseTimeMinutes": 15,
        "size": "Standard",
        "status": "Starting",
    }
    [record] = emulator.state.sessions()
    assert (record.session_id, record.lease_from_ready) == ("rr-test-id", True)


@pytest.mark.parametrize(("size", "answered"), [("standard", "Standard"), ("PREMIUM", "Premium")])
def test_size_is_case_insensitive(put, size, answered):
    assert put("sized", 15, size).json()["size"] == answered


def test_same_put_again_is_an_idempotent_200(put, emulator):
    first = put("retry-me", 15, "Standard").json()
    again = put("retry-me", 15, "standard")
    assert again.status_code == 200
    assert again.json() == first
    assert len(emulator.state.sessions()) == 1


@pytest.mark.parametrize(("minutes", "size"), [(16, "Standard"), (15, "Premium")])
def test_same_id_with_other_settings_is_a_409(put, minutes, size):
    put("taken", 15, "Standard")
    response = put("taken", minutes, size)
    assert response.status_code == 409
    assert response.json() == CONFLICT
    check_dialect_headers(response)


def test_negative_lease_is_the_recorded_400(put, emulator):
    response = put("rr-test-id", -4)
    assert response.status_code == 400
    assert response.json() == NEGATIVE_LEASE
    check_dialect_headers(response)
    assert emulator.state.sessions() == []


@pytest.mark.parametrize("minutes", [0, 1, 1440])
def test_lease_bounds_are_inclusive(put, minutes):
    assert put(f"lease-{minutes}", minutes).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"maxLeaseTimeMinutes": 1441, "size": "Standard"}, "1440"),
        ({"maxLeaseTimeMinutes": "15", "size": "Standard"}, "maxLeaseTimeMinutes"),
        ({"maxLeaseTimeMinutes": 15.5, "size": "Standard"}, "maxLeaseTimeMinutes"),
        ({"maxLeaseTimeMinutes": True, "size": "Standard"}, "maxLeaseTimeMinutes"),
        ({"maxLeaseTimeMinutes": "0:15:0", "size": "Standard"}, "maxLeaseTimeMinutes"),
        ({"size": "Standard"}, "maxLeaseTimeMinutes"),
        ({"maxLeaseTimeMinutes": 15}, "size"),
        ({"maxLeaseTimeMinutes": 15, "size": "large"}, "size"),
        ({"maxLeaseTimeMinutes": 15, "size": 1}, "size"),
    ],
)
def test_bad_create_body_is_a_400_naming_the_field(client, auth, sessions, emulator, body, field):
    response = client.put(f"{sessions}/bad-body", params=API, json=body, headers=auth)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BadRequest"
    assert field in error["message"]
    assert emulator.state.sessions() == []


@pytest.mark.parametrize("content", [b"", b"[]", b"null", b"not json"])
def test_create_body_that_is_no_json_object_is_a_400(client, auth, sessions, content):
    response = client.put(f"{sessions}/no-json", params=API, content=content, headers=auth)
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


@pytest.mark.parametrize("session_id", ["a.b", "x" * 257, "caf%C3%A9", "a%20b", "%2E%2E"])
def test_bad_session_id_is_a_400(put, emulator, session_id):
    response = put(session_id)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "BadRequest"
    assert "session ID" in response.json()["error"]["message"]
    assert emulator.state.sessions() == []


def test_session_ids_are_case_sensitive_and_up_to_256_characters(put, get):
    long_id = "Aa0_-" * 51 + "z"
    assert len(long_id) == 256
    assert put(long_id).status_code == 201
    assert put("Case", 15).status_code == 201
    assert put("case", 20).status_code == 201
    assert (get("Case")["maxLeaseTimeMinutes"], get("case")["maxLeaseTimeMinutes"]) == (15, 20)


# --------------------------------------------------------------------------------------- properties


def test_ready_session_has_ports_hostname_and_teraflops(put, get, clock, client, auth, sessions):
    put("ready-one", 15, "Standard")
    put("premium-one", 15, "Premium")
    clock.advance(5)
    response = client.get(f"{sessions}/ready-one", params=API, headers=auth)
    check_dialect_headers(response, cacheable=False)
    body = response.json()
    assert list(body) == READY_FIELDS
    assert HOSTNAME.match(body["hostname"])
    assert 49152 <= body["arrInspectorPort"] <= 65534
    assert 49152 <= body["handshakePort"] <= 65534
    assert body["arrInspectorPort"] != body["handshakePort"]
    assert (body["status"], body["elapsedTimeMinutes"], body["teraflops"]) == ("Ready", 0, 8.1)
    assert get("ready-one") == body  # ports and hostname are stable
    premium = get("premium-one")
    assert (premium["teraflops"], premium["hostname"].startswith("arrwu2premium")) == (33.0, True)


def test_stopped_session_drops_ports_and_hostname_but_keeps_teraflops(
    put, get, clock, client, auth, sessions
):
    put("to-stop", 15)
    clock.advance(5)
    response = client.post(f"{sessions}/to-stop/:stop", params=API, headers=auth)
    assert (response.status_code, response.content) == (204, b"")
    assert "Content-Type" not in response.headers
    check_dialect_headers(response)
    stopped = get("to-stop")
    assert list(stopped) == [*STARTING_FIELDS, "teraflops"]
    assert (stopped["status"], stopped["teraflops"]) == ("Stopped", 8.1)
    again = client.post(f"{sessions}/to-stop/:stop", params=API, headers=auth)
    assert again.status_code == 204


def test_stopped_while_starting_has_no_teraflops(put, get, client, auth, sessions, clock):
    put("early-stop", 15)
    assert client.post(f"{sessions}/early-stop/:stop", params=API, headers=auth).status_code == 204
    clock.advance(60)
    body = get("early-stop")
    assert list(body) == STARTING_FIELDS
    assert body["status"] == "Stopped"


def test_lease_counts_from_ready(put, get, clock, client, auth, emulator):
    put("lease-from-ready", 10)
    v1 = client.post(
        f"/v1/accounts/{emulator.account_id}/sessions/create",
        json={"maxLeaseTime": "0:10:0", "size": "standard"},
        headers=auth,
    ).json()["sessionId"]
    clock.advance(5)  # both Ready after 5 s
    clock.advance(9 * 60 + 59)
    assert (get("lease-from-ready")["status"], get("lease-from-ready")["elapsedTimeMinutes"]) == ("Ready", 9)
    # The v1 session counts 10 minutes from its creation: it is over, 5 s before the other.
    v1_body = get(v1)
    assert (v1_body["status"], v1_body["elapsedTimeMinutes"], v1_body["maxLeaseTimeMinutes"]) == (
        "Expired",
        10,
        10,
    )
    clock.advance(1)
    expired = get("lease-from-ready")
    assert (expired["status"], expired["elapsedTimeMinutes"], expired["teraflops"]) == ("Expired", 10, 8.1)
    # The contract's ``error`` describes a start-up failure only: an Expired session has none.
    assert "hostname" not in expired
    assert list(expired) == [*STARTING_FIELDS, "teraflops"]


def test_zero_lease_expires_on_ready(put, get, clock):
    put("zero", 0)
    assert get("zero")["status"] == "Starting"
    clock.advance(5)
    assert get("zero")["status"] == "Expired"


def test_failed_start_carries_the_error_object(put, get, clock, emulator):
    emulator.state.fail_next_start("No Standard server is free in westus2.")
    put("doomed", 15)
    clock.advance(5)
    body = get("doomed")
    assert list(body) == [*STARTING_FIELDS, "error"]
    assert body["status"] == "Error"
    assert body["error"] == {
        "code": "SessionStartFailed",
        "message": "No Standard server is free in westus2.",
    }


@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("PATCH", ""), ("POST", "/:stop")], ids=["get", "update", "stop"]
)
def test_unknown_session_is_a_404(client, auth, sessions, method, suffix):
    response = client.request(
        method,
        f"{sessions}/no-such-session{suffix}",
        params=API,
        json={"maxLeaseTimeMinutes": 20},
        headers=auth,
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NotFound"
    check_dialect_headers(response, cacheable=method != "GET")


# ------------------------------------------------------------------------------------------- update


def test_patch_extends_and_answers_the_session(put, client, auth, sessions, clock):
    put("extend-me", 15)
    response = client.patch(
        f"{sessions}/extend-me", params=API, json={"maxLeaseTimeMinutes": 20}, headers=auth
    )
    assert response.status_code == 200
    assert response.json()["maxLeaseTimeMinutes"] == 20
    assert response.json()["status"] == "Starting"  # a Starting session can be extended
    check_dialect_headers(response)


@pytest.mark.parametrize(("minutes", "status"), [(15, 422), (10, 422), (1441, 422), (-1, 400), ("20", 400)])
def test_patch_that_does_not_extend_is_refused(put, client, auth, sessions, minutes, status):
    put("keep-me", 15)
    response = client.patch(
        f"{sessions}/keep-me", params=API, json={"maxLeaseTimeMinutes": minutes}, headers=auth
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == ("UnprocessableEntity" if status == 422 else "BadRequest")
    assert "maxLeaseTimeMinutes" in error["message"]


def test_patch_of_a_stopped_session_is_a_422(put, client, auth, sessions):
    put("ended", 15)
    client.post(f"{sessions}/ended/:stop", params=API, headers=auth)
    response = client.patch(f"{sessions}/ended", params=API, json={"maxLeaseTimeMinutes": 20}, headers=auth)
    assert response.status_code == 422
    assert "final state" in response.json()["error"]["message"]


# --------------------------------------------------------------------------------------------- list


def test_list_holds_only_starting_and_ready_sessions(put, client, auth, sessions, clock):
    put("ready", 15)
    clock.advance(5)
    put("starting", 15)
    put("stopped", 15)
    client.post(f"{sessions}/stopped/:stop", params=API, headers=auth)
    response = client.get(sessions, params=API, headers=auth)
    assert response.status_code == 200
    check_dialect_headers(response, cacheable=False)
    body = response.json()
    assert list(body) == ["sessions"]
    assert [(s["id"], s["status"]) for s in body["sessions"]] == [
        ("ready", "Ready"),
        ("starting", "Starting"),
    ]
    assert list(body["sessions"][0]) == READY_FIELDS


def test_list_is_paged_with_absolute_next_links(put, client, auth, sessions, emulator):
    emulator.state.page_size = 2
    for index in range(5):
        put(f"s{index}", 15)
    seen, pages = [], 0
    url: str | None = f"{emulator.url}{sessions}?api-version=2021-01-01-preview"
    while url is not None:
        response = client.get(url, headers=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [session["id"] for session in body["sessions"]]
        pages += 1
        url = body.get("@nextLink")
        if url is not None:
            parts = urlsplit(url)
            assert f"{parts.scheme}://{parts.netloc}" == emulator.url
            assert parse_qs(parts.query)["api-version"] == ["2021-01-01-preview"]
    assert seen == ["s0", "s1", "s2", "s3", "s4"]
    assert pages == 3
    assert emulator.state.request_counts["list"] == 3


def test_paging_survives_a_session_ending_between_pages(put, client, auth, sessions, emulator):
    emulator.state.page_size = 2
    for index in range(4):
        put(f"s{index}", 15)
    first = client.get(sessions, params=API, headers=auth).json()
    client.post(f"{sessions}/s1/:stop", params=API, headers=auth)  # the last one of the first page
    second = client.get(first["@nextLink"], headers=auth).json()
    assert [s["id"] for s in second["sessions"]] == ["s2", "s3"]
    assert "@nextLink" not in second


@pytest.mark.parametrize("token", ["bm8tc3VjaA", "!!!", ""])
def test_bad_continuation_token_is_a_400(client, auth, sessions, token):
    response = client.get(sessions, params={**API, "continuationToken": token}, headers=auth)
    assert response.status_code == 400
    assert "continuation" in response.json()["error"]["message"]


# ---------------------------------------------------------------------------- versions, auth, routes


@pytest.mark.parametrize(
    "params", [{}, {"api-version": "2020-01-01"}, {"api-version": ""}, {"api-version": "v1"}]
)
def test_missing_or_unknown_api_version_is_a_400(client, auth, sessions, params, emulator):
    response = client.put(
        f"{sessions}/versioned",
        params=params,
        json={"maxLeaseTimeMinutes": 15, "size": "Standard"},
        headers=auth,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BadRequest"
    assert "api-version" in error["message"]
    assert "2021-01-01" in error["message"]
    assert emulator.state.sessions() == []


def test_preview_api_version_is_accepted(client, auth, sessions):
    body = {"maxLeaseTimeMinutes": 15, "size": "Standard"}
    response = client.put(
        f"{sessions}/preview", params={"api-version": "2021-01-01-preview"}, json=body, headers=auth
    )
    assert response.status_code == 201


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer not-a-jwt", "Basic abc"])
def test_missing_or_bad_token_is_a_401(client, sessions, authorization, emulator):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(f"{sessions}/anything", params=API, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response.json()["error"]["code"] == "Unauthorized"
    check_dialect_headers(response, cacheable=False)


def test_token_of_another_account_is_a_403(client, emulator, get_token):
    other_account, other_key = emulator.state.add_account()
    headers = {"Authorization": f"Bearer {get_token(other_account, other_key)}"}
    response = client.get(f"/accounts/{emulator.account_id}/sessions", params=API, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Forbidden"


def test_accounts_do_not_see_each_others_sessions(put, client, emulator, get_token):
    put("mine", 15)
    other_account, other_key = emulator.state.add_account()
    headers = {"Authorization": f"Bearer {get_token(other_account, other_key)}"}
    other_sessions = f"/accounts/{other_account}/sessions"
    assert client.get(other_sessions, params=API, headers=headers).json() == {"sessions": []}
    assert client.get(f"{other_sessions}/mine", params=API, headers=headers).status_code == 404
    # The id is taken, by another account's session: a conflict, never that session.
    taken = client.put(
        f"{other_sessions}/mine",
        params=API,
        json={"maxLeaseTimeMinutes": 15, "size": "Standard"},
        headers=headers,
    )
    assert (taken.status_code, taken.json()) == (409, CONFLICT)


def test_unknown_route_and_wrong_method_answer_in_this_dialect(client, auth, sessions):
    unknown = client.get(f"{sessions}/x/y", params=API, headers=auth)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "NotFound"
    check_dialect_headers(unknown, cacheable=False)
    wrong = client.delete(f"{sessions}/x", params=API, headers=auth)
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "MethodNotAllowed"
    assert wrong.headers["Allow"] == "GET, PATCH, PUT"


# -------------------------------------------------------------------------- faults and shared state


def test_faults_apply_to_the_new_routes(put, client, auth, sessions, emulator):
    state = emulator.state
    state.add_fault(
        "create", 429, {"error": {"code": "TooManyRequests", "message": "Slow down."}}, {"Retry-After": "15"}
    )
    throttled = put("faulted", 15)
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "15")
    check_dialect_headers(throttled)
    assert state.sessions() == []
    assert put("faulted", 15).status_code == 201
    for operation in ("properties", "update", "list", "stop"):
        state.add_fault(operation, 500, {"error": {"code": "InternalServerError", "message": "Boom."}})
    answers = [
        client.get(f"{sessions}/faulted", params=API, headers=auth),
        client.patch(f"{sessions}/faulted", params=API, json={"maxLeaseTimeMinutes": 20}, headers=auth),
        client.get(sessions, params=API, headers=auth),
        client.post(f"{sessions}/faulted/:stop", params=API, headers=auth),
    ]
    assert [answer.status_code for answer in answers] == [500, 500, 500, 500]
    assert dict(state.request_counts) == {
        "token": 1,
        "create": 2,
        "properties": 1,
        "update": 1,
        "list": 1,
        "stop": 1,
    }


def test_v1_and_2021_sessions_share_one_state(put, get, client, auth, sessions, emulator, clock):
    created = client.post(
        f"/v1/accounts/{emulator.account_id}/sessions/create",
        json={"maxLeaseTime": "1:0:0", "size": "premium"},
        headers=auth,
    )
    v1_id = created.json()["sessionId"]
    put("new-style", 15)
    clock.advance(5)
    listed = client.get(sessions, params=API, headers=auth).json()["sessions"]
    assert [(s["id"], s["maxLeaseTimeMinutes"], s["size"]) for s in listed] == [
        (v1_id, 60, "Premium"),
        ("new-style", 15, "Standard"),
    ]
    # The v1 session's id cannot be reused by a 2021-01-01 client with other settings.
    assert put(v1_id, 15, "Standard").status_code == 409
    v1_list = client.get(f"/v1/accounts/{emulator.account_id}/sessions", headers=auth).json()["sessions"]
    assert [s["sessionId"] for s in v1_list] == [v1_id, "new-style"]
    introspected = client.get("/_emulator/sessions").json()
    assert [(s["sessionId"], s["leaseFromReady"]) for s in introspected] == [
        (v1_id, False),
        ("new-style", True),
    ]


@pytest.mark.parametrize(
    ("unix_time", "text"),
    [
        (1_663_117_532.4773534, "2022-09-14T01:05:32.4773534+00:00"),  # the recorded creationTime
        (1_663_117_532.5, "2022-09-14T01:05:32.5000000+00:00"),
        (1_663_117_532.99999999, "2022-09-14T01:05:33.0000000+00:00"),
    ],
)
def test_creation_time_has_seven_fraction_digits(unix_time, text):
    assert format_creation_time(unix_time) == text
