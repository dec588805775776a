"""Replay the real service's recorded answers to our hook.

The recordings in ``tests/data/recordings`` are the Azure SDK teams' captures of the real 2021-01-01
service and its STS (vcrpy cassettes and azure test-proxy files; their origin and licence are in the
README there). A tiny HTTP server answers each call of the hook with the next recorded answer of the
same method and path (and api-version), so the hook must parse exactly what the service sent: omitted
fields while Starting, the stale list entry, the error bodies with and without ``details``, the empty
401 of the STS. The server also keeps what the hook sent, to compare it with what the official SDK sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from airflow_provider_arr.exceptions import RemoteRenderingError
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.models import ArrInputError, SessionProperties, SessionStatus
from tests.helpers import FAST_RETRIES

RECORDINGS = Path(__file__).parents[1] / "data" / "recordings"

#: Response headers the replay server writes itself.
_OWN_HEADERS = {"content-length", "date", "transfer-encoding", "connection", "server"}
#: The token the 2022 recordings carry: a fake JWT whose payload is {"exp": 2147483647}.
FAKE_TOKEN = "fake.eyJleHAiOjIxNDc0ODM2NDd9.fake"
ACCOUNT_KEY = "k"
NEGATIVE_LEASE = "BadRequest: The maxLeaseTimeMinutes value cannot be negative."


# ------------------------------------------------------------------------------- the recordings


@dataclass(frozen=True)
class Exchange:
    """One recorded call and its answer."""

    method: str
    path: str  # lower case, without the query
    api_version: str | None
    request_body: Any  # decoded JSON, or None
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def is_token(self) -> bool:
        return self.path.endswith("/token")


def _split(uri: str) -> tuple[str, str | None]:
    parts = urlsplit(uri)
    return parts.path.lower(), parse_qs(parts.query).get("api-version", [None])[0]


def _json_or_none(text: str | None) -> Any:
    return json.loads(text) if text else None


def _from_vcr(interaction: dict[str, Any]) -> Exchange:
    request, response = interaction["request"], interaction["response"]
    path, api_version = _split(request["uri"])
    headers = tuple(
        (name, ", ".join(values))
        for name, values in response["headers"].items()
        if name.lower() not in _OWN_HEADERS
    )
    body = response["body"]["string"] or ""
    return Exchange(
        method=request["method"],
        path=path,
        api_version=api_version,
        request_body=_json_or_none(request["body"]),
        status=response["status"]["code"],
        headers=headers,
        body=body.encode("utf-8") if isinstance(body, str) else body,
    )


def _from_test_proxy(entry: dict[str, Any]) -> Exchange:
    path, api_version = _split(entry["RequestUri"])
    body = entry["ResponseBody"]
    if body is None:
        content = b""
    elif isinstance(body, str):
        content = body.encode("utf-8")
    else:
        content = json.dumps(body, separators=(",", ":")).encode("utf-8")
    headers = tuple(
        (name, value) for name, value in entry["ResponseHeaders"].items() if name.lower() not in _OWN_HEADERS
    )
    return Exchange(
        method=entry["RequestMethod"],
        path=path,
        api_version=api_version,
        request_body=entry["RequestBody"],
        status=entry["StatusCode"],
        headers=headers,
        body=content,
    )


def load_recording(name: str) -> list[Exchange]:
    """Read a vcrpy cassette (``.yaml``) or an azure test-proxy recording (``.json``)."""
    path = RECORDINGS / name
    if path.suffix == ".yaml":
        return [_from_vcr(item) for item in yaml.safe_load(path.read_text("utf-8"))["interactions"]]
    return [_from_test_proxy(item) for item in json.loads(path.read_text("utf-8"))["Entries"]]


def with_token_answer(exchanges: list[Exchange], account_id: str) -> list[Exchange]:
    """Add a (synthetic) STS answer to a recording that starts with the session call (.NET, JS)."""
    if any(exchange.is_token for exchange in exchanges):
        return exchanges
    token = Exchange(
        method="GET",
        path=f"/accounts/{account_id}/token",
        api_version=None,
        request_body=None,
        status=200,
        headers=(("Content-Type", "application/json; charset=utf-8"),),
        body=json.dumps({"AccessToken": FAKE_TOKEN}).encode(),
    )
    return [token, *exchanges]


# ---------------------------------------------------------------------------- the replay server


@dataclass(frozen=True)
class Received:
    """One call the replay server got."""

    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    body: Any


class ReplayServer:
    """Answers each call with the next recorded answer of the same method, path and api-version.

    Paths match case-insensitively, and the STS query is ignored (the hook calls ``/accounts/{id}/token``
    without api-version, the SDK called ``/Accounts/{id}/token?api-version=2019-02-28-preview``).
    A call without a recorded answer gets a 400 and is listed in ``misses``.
    """

    def __init__(self, exchanges: list[Exchange]) -> None:
        self.pending = list(exchanges)
        self.received: list[Received] = []
        self.misses: list[str] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="replay-server",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, method: str, target: str, authorization: str | None, body: bytes) -> Exchange | None:
        path, api_version = _split(target)
        with self._lock:
            self.received.append(
                Received(method, path, parse_qs(urlsplit(target).query), authorization, _json_or_none(body))
            )
            for index, exchange in enumerate(self.pending):
                if (exchange.method, exchange.path) == (method, path) and (
                    exchange.is_token or exchange.api_version == api_version
                ):
                    return self.pending.pop(index)
            self.misses.append(f"{method} {target}")
            return None

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _handler_for(replay: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _replay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            exchange = replay.answer(self.command, self.path, self.headers.get("Authorization"), body)
            if exchange is None:
                status, headers = 400, (("Content-Type", "text/plain"),)
                content = f"replay: nothing recorded for {self.command} {self.path}".encode()
            else:
                status, headers, content = exchange.status, exchange.headers, exchange.body
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            if status != 204:
                self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = _replay

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


# ------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def replay(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``replay(exchanges, account_id)`` starts a replay server and returns it with a hook pointed at it."""
    started: list[tuple[ReplayServer, RemoteRenderingHook]] = []

    def start(exchanges: list[Exchange], account_id: str) -> tuple[ReplayServer, RemoteRenderingHook]:
        server = ReplayServer(exchanges).__enter__()
        connection = {
            "conn_type": "azure_remote_rendering",
            "host": server.url,
            "login": account_id,
            "password": ACCOUNT_KEY,
            "extra": {"sts_url": server.url, "api_version": "2021-01-01", **FAST_RETRIES},
        }
        monkeypatch.setenv("AIRFLOW_CONN_ARR_DEFAULT", json.dumps(connection))
        hook = RemoteRenderingHook()
        started.append((server, hook))
        return server, hook

    yield start
    for server, hook in started:
        hook.close()
        server.__exit__(None, None, None)


def minutes(value: int) -> timedelta:
    return timedelta(minutes=value)


# ------------------------------------------------------------------------- a whole life cycle


@dataclass(frozen=True)
class LifeCycle:
    """What one recorded life cycle holds, and what the hook must make of it."""

    recording: str
    account_id: str
    session_id: str
    token: str
    starting_gets: int
    hostname: str
    listed_lease_minutes: int
    arr_inspector_port: int


LIFE_CYCLES = [
    pytest.param(
        LifeCycle(
            recording="test_client.pyTestRemoteRenderingClienttest_simple_session.json",
            account_id="00000000-0000-0000-0000-000000000000",
            session_id="rr-test-id",
            token=FAKE_TOKEN,
            starting_gets=2,
            hostname="arrwu2standard25246cf9a70f4d6dbd3be7af6dac6bf7.remoterendering.vm.eastus.mixedreality.azure.com",
            listed_lease_minutes=20,
            arr_inspector_port=64487,
        ),
        id="python-sdk-2022-09",
    ),
    pytest.param(
        LifeCycle(
            recording="test_client.test_simple_session.yaml",
            account_id="70a8e4d2-816a-4d03-a800-aeb20126ae51",
            session_id="dcb143c5-31c7-4eba-9a9d-d878444de6e0",
            token="faketoken.eyJleHAiOjIxNDc0ODM2NDd9.faketoken",
            starting_gets=35,
            hostname="823736284-319ed84f-dfbd-4ec6-8ada-643fccd8f978.remoterendering.vm.eastus.mixedreality.azure.com",
            # The service's list answer right after the PATCH still showed the old lease (5, not 20).
            listed_lease_minutes=5,
            arr_inspector_port=55792,
        ),
        id="python-sdk-2021-03",
    ),
]


def expected_states(case: LifeCycle) -> dict[str, SessionProperties]:
    starting = SessionProperties(
        session_id=case.session_id,
        status=SessionStatus.STARTING,
        hostname=None,
        max_lease_time=minutes(15),
        elapsed_time=timedelta(0),
        size="Standard",
        message=None,
    )
    ready = replace(
        starting,
        status=SessionStatus.READY,
        hostname=case.hostname,
        arr_inspector_port=case.arr_inspector_port,
    )
    return {
        "starting": starting,
        "ready": ready,
        "listed": replace(ready, max_lease_time=minutes(case.listed_lease_minutes)),
        "stopped": replace(starting, status=SessionStatus.STOPPED, max_lease_time=minutes(20)),
    }


def check_what_the_hook_sent(server: ReplayServer, recorded: list[Exchange], case: LifeCycle) -> None:
    """The hook made the SDK's calls, in the SDK's order, with the SDK's bodies and the STS token."""
    assert server.misses == []
    assert server.pending == []
    assert [(r.method, r.path) for r in server.received] == [(e.method, e.path) for e in recorded]
    assert [r.body for r in server.received] == [e.request_body for e in recorded]
    token_call, *session_calls = server.received
    assert token_call.authorization == f"Bearer {case.account_id}:{ACCOUNT_KEY}"
    assert {r.authorization for r in session_calls} == {f"Bearer {case.token}"}
    assert all(r.query.get("api-version") == ["2021-01-01"] for r in session_calls)


@pytest.mark.parametrize("case", LIFE_CYCLES)
def test_life_cycle(replay: Any, case: LifeCycle) -> None:
    recorded = load_recording(case.recording)
    server, hook = replay(recorded, case.account_id)
    expected = expected_states(case)

    assert hook.create_session("0:15:0", "standard", session_id=case.session_id) == case.session_id
    for _ in range(case.starting_gets):
        assert hook.get_session(case.session_id) == expected["starting"]
    assert hook.get_session(case.session_id) == expected["ready"]
    hook.update_session(case.session_id, "0:20:0")
    assert hook.list_sessions() == [expected["listed"]]
    hook.stop_session(case.session_id)
    assert hook.get_session(case.session_id) == expected["stopped"]

    check_what_the_hook_sent(server, recorded, case)


async def test_life_cycle_async(replay: Any) -> None:
    case = LIFE_CYCLES[0].values[0]
    recorded = load_recording(case.recording)
    server, hook = replay(recorded, case.account_id)
    expected = expected_states(case)
    async with hook:
        assert await hook.acreate_session("0:15:0", "standard", session_id=case.session_id) == case.session_id
        for _ in range(case.starting_gets):
            assert await hook.aget_session(case.session_id) == expected["starting"]
        assert await hook.aget_session(case.session_id) == expected["ready"]
        await hook.aupdate_session(case.session_id, "0:20:0")
        assert await hook.alist_sessions() == [expected["listed"]]
        await hook.astop_session(case.session_id)
        assert await hook.aget_session(case.session_id) == expected["stopped"]

    check_what_the_hook_sent(server, recorded, case)


# ---------------------------------------------------------------------------------- the errors


@pytest.mark.parametrize(
    ("recording", "account_id", "session_id", "ms_cv"),
    [
        pytest.param(
            "test_client.pyTestRemoteRenderingClienttest_failed_session_request.json",
            "00000000-0000-0000-0000-000000000000",
            "rr-test-id",
            "YZ1H2nlwb0GtcrHn/qSr6w.0",
            id="python-sdk-2022-09",
        ),
        pytest.param(
            "test_client.test_failed_session_request.yaml",
            "70a8e4d2-816a-4d03-a800-aeb20126ae51",
            "8240a701-54f5-4094-9bd4-652e714cb1ad",
            "c2laxdukq0yFdLHN4e4epw.0",
            id="python-sdk-2021-03",
        ),
        pytest.param(
            "TestFailedSessionRequest.json",
            "1b405859-8af9-47e6-941d-9205163c0f63",
            "b9d789d8-f33c-ef5d-1ca8-9ad6bd4f2f89",
            "+4U9n+1jNUS1W/ipHGuszw.0",
            id="net-sdk-2021-01-with-null-details",
        ),
        pytest.param(
            "recording_throws_the_correct_exception_on_invalid_session_properties.json",
            "00000000-1111-2222-3333-444455556666",
            "sessionId-5980",
            "RI5D7DHYJEKGIXpmtAuBnA.0",
            id="js-sdk-2022-02",
        ),
    ],
)
def test_negative_lease(replay: Any, recording: str, account_id: str, session_id: str, ms_cv: str) -> None:
    server, hook = replay(with_token_answer(load_recording(recording), account_id), account_id)

    # Our hook refuses the SDK tests' lease of -4 minutes before it sends anything ...
    with pytest.raises(ArrInputError, match="max_lease_time"):
        hook.create_session(timedelta(minutes=-4), "standard", session_id=session_id)
    assert server.received == []

    # ... so feed the recorded refusal to a valid create: the error carries all the service said.
    with pytest.raises(RemoteRenderingError) as raised:
        hook.create_session("0:15:0", "standard", session_id=session_id)
    error = raised.value
    assert (error.operation, error.http_status, error.service_message, error.ms_cv) == (
        "create_session",
        400,
        NEGATIVE_LEASE,
        ms_cv,
    )
    assert "HTTP 400" in str(error)
    assert NEGATIVE_LEASE in str(error)
    assert ms_cv in str(error)
    assert [r.method for r in server.received] == ["GET", "PUT"]  # token, one create: a 400 is not retried
    assert server.pending == []


def test_sts_refuses_the_account_key(replay: Any) -> None:
    account_id = "00000000-0000-0000-0000-000000000000"
    recording = "test_client.pyTestRemoteRenderingClienttest_failed_conversion_unauthorized.json"
    server, hook = replay(load_recording(recording), account_id)

    with pytest.raises(RemoteRenderingError) as raised:
        hook.list_sessions()
    error = raised.value
    assert (error.operation, error.http_status, error.service_message, error.ms_cv) == (
        "get_token",
        401,
        None,
        "oDbwZishGUW5R6dohopTSg.0",
    )
    assert "check your account id" in str(error)
    assert "oDbwZishGUW5R6dohopTSg.0" in str(error)
    assert [(r.method, r.path) for r in server.received] == [("GET", f"/accounts/{account_id}/token")]
    assert server.pending == []
