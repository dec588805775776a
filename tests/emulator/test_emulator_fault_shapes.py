"""Scripted faults answer as the real service does, on every route of every dialect.

A canned status without a body or headers of its own gets the real service's shape for that status
and dialect: the error body (v1's flat ``{"error": "..."}``, 2021-01-01's ``{"error": {"code",
"message"}}``, nothing from the STS) and the headers the contract names (``Retry-After`` on a 429,
the ``WWW-Authenticate`` challenge on a 401). What a test gives explicitly still wins. Everything is
checked on the wire, over the emulator's loopback socket; the 2021-01-01 and STS expectations also
against an extract of the official contract documents (``data/contract_errors.json``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from airflow_provider_arr.emulator.cli import parse_fault

CONTRACT = json.loads((Path(__file__).parent / "data" / "contract_errors.json").read_text())
STATUSES = (400, 401, 403, 404, 409, 429, 500, 503)
V1_SESSION = "0b6f3c1e-5a7d-4e2b-9c8a-3d1f2e4b5a6c"
V2021_SESSION = "some-session_1"
API = {"api-version": "2021-01-01"}
SESSION_CHALLENGE = 'Bearer error="invalid_token"'
#: The 2021-01-01 ``error.code`` of each status (the codes the service and its SDKs use).
CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}


@dataclass(frozen=True)
class Route:
    """One route of one dialect, and the operation its faults are scripted for."""

    dialect: str
    operation: str
    method: str
    path: str  # with {account} for the account id
    body: dict | None = None

    def call(self, client: httpx.Client, account_id: str, headers: dict[str, str]) -> httpx.Response:
        params = API if self.dialect == "2021-01-01" else None
        path = self.path.format(account=account_id)
        return client.request(self.method, path, params=params, json=self.body, headers=headers)

    def __str__(self) -> str:
        return f"{self.dialect}-{self.operation}"


V1_SESSIONS = "/v1/accounts/{account}/sessions"
V2021_SESSIONS = "/accounts/{account}/sessions"
ROUTES = [
    Route("v1", "create", "POST", V1_SESSIONS + "/create", {"maxLeaseTime": "1:0:0", "size": "standard"}),
    Route("v1", "update", "PATCH", f"{V1_SESSIONS}/{V1_SESSION}", {"maxLeaseTime": "2:0:0"}),
    Route("v1", "list", "GET", V1_SESSIONS),
    Route("v1", "properties", "GET", f"{V1_SESSIONS}/{V1_SESSION}/properties"),
    Route("v1", "stop", "DELETE", f"{V1_SESSIONS}/{V1_SESSION}"),
    Route(
        "2021-01-01",
        "create",
        "PUT",
        f"{V2021_SESSIONS}/{V2021_SESSION}",
        {"maxLeaseTimeMinutes": 15, "size": "Standard"},
    ),
    Route("2021-01-01", "update", "PATCH", f"{V2021_SESSIONS}/{V2021_SESSION}", {"maxLeaseTimeMinutes": 20}),
    Route("2021-01-01", "list", "GET", V2021_SESSIONS),
    Route("2021-01-01", "properties", "GET", f"{V2021_SESSIONS}/{V2021_SESSION}"),
    Route("2021-01-01", "stop", "POST", f"{V2021_SESSIONS}/{V2021_SESSION}/:stop"),
    Route("sts", "token", "GET", "/accounts/{account}/token"),
    Route("sts", "token", "GET", "/Accounts/{account}/token"),  # the Python SDK's spelling
]


@pytest.fixture
def headers_for(emulator, auth) -> Callable[[Route], dict[str, str]]:
    """The credentials a well-behaved client sends on a route (the fault answers before they count)."""

    def headers(route: Route) -> dict[str, str]:
        if route.dialect == "sts":
            return {"Authorization": f"Bearer {emulator.account_id}:{emulator.account_key}"}
        return auth

    return headers


def check_status_headers(response: httpx.Response, dialect: str, status: int) -> None:
    """The headers an error status calls for, and no others of their kind."""
    if status == 429:
        assert response.headers["Retry-After"] == "1"
    else:
        assert "Retry-After" not in response.headers
    challenge = {"sts": "Bearer"}.get(dialect, SESSION_CHALLENGE)
    challenged = (400, 401, 429) if dialect == "sts" else (401,)
    if status in challenged:
        assert response.headers["WWW-Authenticate"] == challenge
    else:
        assert "WWW-Authenticate" not in response.headers


def check_body(response: httpx.Response, dialect: str, status: int) -> None:
    if dialect == "sts":  # the real STS answers its errors without a body
        assert response.content == b""
        assert "Content-Type" not in response.headers
        return
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    if dialect == "v1":
        assert list(body) == ["error"]
        assert isinstance(body["error"], str)
        assert body["error"]
        return
    assert list(body) == ["error"]
    assert list(body["error"]) == ["code", "message"]
    assert body["error"]["code"] == CODES[status]
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]


def check_contract(response: httpx.Response, route: Route, status: int) -> None:
    """What the official contract says of this operation and status, where it says anything."""
    if route.dialect == "v1":
        return  # no contract document describes v1 errors
    promised = CONTRACT[route.dialect][route.operation].get(str(status))
    if promised is None:
        return
    for name in promised["headers"]:
        assert response.headers.get(name), f"the contract promises {name}"
    if "Retry-After" in promised["headers"]:
        assert int(response.headers["Retry-After"]) >= 0  # whole seconds
    if promised["body"]:
        schema = CONTRACT["definitions"]["error_response"]
        body = response.json()
        assert set(schema["required"]) <= set(body)
        error_fields = CONTRACT["definitions"]["error"]
        assert set(error_fields["required"]) <= set(body["error"])
        assert set(body["error"]) <= set(error_fields["properties"])
        assert all(isinstance(body["error"][name], str) for name in error_fields["required"])


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_a_canned_status_answers_as_the_service_does(
    client, emulator, headers_for, check_headers, route, status
):
    emulator.state.add_fault(route.operation, status)

    response = route.call(client, emulator.account_id, headers_for(route))

    assert response.status_code == status
    check_headers(response)  # MS-CV and nosniff, as every answer
    check_status_headers(response, route.dialect, status)
    check_body(response, route.dialect, status)
    check_contract(response, route, status)
    if route.dialect == "2021-01-01":
        assert response.headers["api-supported-versions"] == "2021-01-01-preview, 2021-01-01"
    assert emulator.state.sessions() == []  # canned: nothing was processed
    assert emulator.state.faults_injected == {str(status): 1}


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("v1", {"error": "Too many requests; retry later."}),
        ("2021-01-01", {"error": {"code": "TooManyRequests", "message": "Too many requests; retry later."}}),
    ],
)
def test_the_reported_case_list_429_as_the_cli_scripts_it(client, emulator, auth, dialect, expected):
    emulator.state.add_fault(**parse_fault("list:429"))
    route = next(r for r in ROUTES if (r.dialect, r.operation) == (dialect, "list"))

    throttled = route.call(client, emulator.account_id, auth)

    assert (throttled.status_code, throttled.headers["Retry-After"], throttled.json()) == (429, "1", expected)
    assert route.call(client, emulator.account_id, auth).status_code == 200


@pytest.mark.parametrize("route", [r for r in ROUTES if r.operation == "list"], ids=str)
def test_chaos_faults_take_the_same_path(client, emulator, auth, route):
    emulator.state.enable_chaos(rate=1, seed=7, operations=["list"], kinds=["429"], session_rate=0)

    throttled = route.call(client, emulator.account_id, auth)

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] in ("0", "1")  # chaos draws its own wait
    check_body(throttled, route.dialect, 429)


@pytest.mark.parametrize("dialect", ["v1", "2021-01-01"])
def test_what_the_test_gives_still_wins(client, emulator, auth, dialect):
    route = next(r for r in ROUTES if (r.dialect, r.operation) == (dialect, "list"))
    state = emulator.state
    state.add_fault("list", 429, body="", headers={"retry-after": "7"})
    state.add_fault("list", 500, body={"error": "custom"}, headers={"X-Extra": "yes"})
    state.add_fault("list", 401, body="<html>no</html>", headers={"WWW-Authenticate": "Basic"})

    empty, custom, html = (route.call(client, emulator.account_id, auth) for _ in range(3))

    assert (empty.status_code, empty.content) == (429, b"")
    assert empty.headers.get_list("Retry-After") == ["7"]  # one header, the test's, whatever its case
    assert (custom.json(), custom.headers["X-Extra"]) == ({"error": "custom"}, "yes")
    assert "Retry-After" not in custom.headers
    assert (html.text, html.headers.get_list("WWW-Authenticate")) == ("<html>no</html>", ["Basic"])
    assert html.headers["Content-Type"].startswith("text/plain")


def test_a_canned_success_stays_bodiless_unless_given_one(client, emulator, auth):
    emulator.state.add_fault("create", 202, headers={"Location": "accounts/x/sessions/y"})
    route = ROUTES[0]

    answer = route.call(client, emulator.account_id, auth)

    assert (answer.status_code, answer.content, answer.headers["Location"]) == (
        202,
        b"",
        "accounts/x/sessions/y",
    )
    assert "Retry-After" not in answer.headers
