"""The emulator as the crash suite runs it: the package's own emulator, plus a way to hold answers back.

The crash suite kills a task while one of its calls is in flight: the service has acted, the task has
not heard back yet. The emulator can answer late (``EmulatorState.add_fault(op, delay=...)``), but only
from Python, in its own process, and for "the next call of an operation" whoever makes it; with many
DAG runs at once the suite needs "the next create of *this* task". So this script serves the
emulator's unchanged application (``create_app``) behind an ASGI middleware that:

- records every session call (operation, session id, the session's lease and status, the HTTP status;
  for a list call, ``listed``: each session in the answer with its lease and listed status, since the
  triggerer's shared poller reads sessions by listing them): ``GET /_crash/events?after=SEQ``;
- holds back the answer of chosen calls after the emulator processed them: ``POST /_crash/hold`` with
  ``{"lease_seconds": N, "operations": ["create"], "seconds": 30, "count": 1}`` holds the next
  ``count`` answers to those operations on sessions whose lease is ``N`` seconds (each crash scenario
  gives its sessions a lease of its own, which is how calls and sessions are told apart);
- starts the sessions of chosen leases slower than the others: ``--slow-start N:SECONDS`` (through
  ``EmulatorState.slow_next_start``, with the creates serialized so that the right one gets it).

Nothing of the emulator is changed or patched: the middleware only sees requests and answers, and reads
sessions through ``EmulatorState``'s public methods. Its first output line is the emulator CLI's
``ARR_EMULATOR_URL=...``, then ``export AIRFLOW_CONN_ARR_DEFAULT='...'`` as the CLI prints it.

Run: ``python tests/e2e/crash_emulator.py --port 0 --start-delay 20``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from airflow_provider_arr.emulator import EmulatorState, create_app
from airflow_provider_arr.emulator.server import base_url, bind_socket

# The session calls of both dialects: (method, path pattern) -> operation. v1 ids are GUIDs (any
# case); 2021-01-01 ids are the client's, [A-Za-z0-9_-].
_ROUTES = [
    ("POST", re.compile(r"^/v1/accounts/[^/]+/sessions/create/?$"), "create"),
    ("GET", re.compile(r"^/v1/accounts/[^/]+/sessions/(?P<sid>[^/]+)/properties/?$"), "properties"),
    ("DELETE", re.compile(r"^/v1/accounts/[^/]+/sessions/(?P<sid>[^/]+)/?$"), "stop"),
    ("PATCH", re.compile(r"^/v1/accounts/[^/]+/sessions/(?P<sid>[^/]+)/?$"), "update"),
    ("GET", re.compile(r"^/v1/accounts/[^/]+/sessions/?$"), "list"),
    ("PUT", re.compile(r"^/accounts/[^/]+/sessions/(?P<sid>[A-Za-z0-9_-]+)$"), "create"),
    ("GET", re.compile(r"^/accounts/[^/]+/sessions/(?P<sid>[A-Za-z0-9_-]+)$"), "properties"),
    ("PATCH", re.compile(r"^/accounts/[^/]+/sessions/(?P<sid>[A-Za-z0-9_-]+)$"), "update"),
    ("POST", re.compile(r"^/accounts/[^/]+/sessions/(?P<sid>[A-Za-z0-9_-]+)/:stop$"), "stop"),
    ("GET", re.compile(r"^/accounts/[^/]+/sessions/?$"), "list"),
]


def classify(method: str, path: str) -> tuple[str, str | None] | None:
    """The operation of a session call and the session id in its path, or ``None`` for other calls."""
    for route_method, pattern, operation in _ROUTES:
        match = pattern.match(path) if method == route_method else None
        if match:
            return operation, match.groupdict().get("sid")
    return None


class HoldBack:
    """ASGI middleware around the emulator's app: records session calls, holds chosen answers back."""

    def __init__(self, app: Any, state: EmulatorState, slow_starts: dict[int, float] | None = None) -> None:
        self.app = app
        self.state = state
        self.slow_starts = dict(slow_starts or {})
        self._creates = asyncio.Lock()
        self.events: list[dict[str, Any]] = []
        self.rules: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._started = time.monotonic()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path.startswith("/_crash/"):
            await self._control(scope, receive, send)
            return
        call = classify(method, path)
        if call is None:
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        messages: list[dict[str, Any]] = []

        async def buffer(message: dict[str, Any]) -> None:
            messages.append(message)

        operation, session_id = call
        if operation == "create":
            await self._create(scope, receive, buffer, session_id)
        else:
            # Uvicorn's own receive: the emulator's connection-breaking faults need its transport.
            await self.app(scope, receive, buffer)
        status = next((m["status"] for m in messages if m["type"] == "http.response.start"), None)
        if operation == "create" and session_id is None:  # v1: the id is in the 202's body
            body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
            try:
                session_id = json.loads(body)["sessionId"]
            except (ValueError, KeyError, TypeError):
                session_id = None
        event = self._record(operation, method, path, session_id, status, started)
        if operation == "list" and status == 200:
            body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
            event["listed"] = self._listed(body)
        hold = event["held"]
        if hold:
            await asyncio.sleep(hold)
            event["released_at"] = round(time.monotonic() - self._started, 3)
        for message in messages:
            try:
                await send(message)
            except Exception:  # the client is gone (killed while waiting): nothing to answer
                event["client_gone"] = True
                return

    async def _create(self, scope: dict[str, Any], receive: Any, send: Any, session_id: str | None) -> None:
        """Run a create call; one at a time, so that a slow start meant for it is not taken by another."""
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay() -> dict[str, Any]:
            return messages.pop(0) if messages else await receive()

        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        slow = self.slow_starts.get(_requested_lease(body))
        async with self._creates:
            if slow is not None and (session_id is None or not self._exists(session_id)):
                self.state.slow_next_start(slow)
            await self.app(scope, replay, send)

    def _listed(self, body: bytes) -> list[dict[str, Any]]:
        """The sessions of a list answer (either dialect): id, lease (from the state) and listed status."""
        try:
            items = json.loads(body)["sessions"]
        except (ValueError, KeyError, TypeError):
            return []
        listed = []
        for item in items:
            session_id = item.get("sessionId") or item.get("id")
            try:
                lease = int(self.state.get_session(session_id).max_lease_time.total_seconds())
            except Exception:
                lease = None
            status = item.get("sessionStatus") or item.get("status")
            listed.append({"session_id": session_id, "lease_seconds": lease, "session_status": status})
        return listed

    def _exists(self, session_id: str) -> bool:
        try:
            self.state.get_session(session_id)
        except Exception:
            return False
        return True

    def _record(
        self,
        operation: str,
        method: str,
        path: str,
        session_id: str | None,
        status: int | None,
        started: float,
    ) -> dict[str, Any]:
        lease = session_status = None
        if session_id is not None:
            record = None
            for candidate in dict.fromkeys((session_id, _canonical(session_id))):
                try:
                    record = self.state.get_session(candidate)
                    break
                except Exception:
                    continue
            if record is not None:
                session_id = record.session_id
                lease = int(record.max_lease_time.total_seconds())
                session_status = record.status
        with self._lock:
            event = {
                "seq": len(self.events) + 1,
                "t": round(started - self._started, 3),
                "wall": time.time() - (time.monotonic() - started),
                "operation": operation,
                "method": method,
                "path": path,
                "session_id": session_id,
                "lease_seconds": lease,
                "session_status": session_status,
                "http_status": status,
                "held": 0.0,
            }
            # Decided before the event is visible, so that a reader never sees a held call as not held.
            for rule in self.rules:
                if rule["count"] > 0 and lease == rule["lease_seconds"] and operation in rule["operations"]:
                    rule["count"] -= 1
                    rule["used"].append(event["seq"])
                    event["held"] = float(rule["seconds"])
                    break
            self.events.append(event)
        return event

    async def _control(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path, method = scope["path"], scope["method"]
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, payload = 404, {"error": f"no route {method} {path}"}
        if method == "GET" and path == "/_crash/events":
            query = parse_qs(scope.get("query_string", b"").decode())
            after = int(query.get("after", ["0"])[0])
            with self._lock:
                payload = [dict(event) for event in self.events[after:]]
            status = 200
        elif method == "POST" and path == "/_crash/hold":
            rule = json.loads(body or b"{}")
            rule = {
                "lease_seconds": int(rule["lease_seconds"]),
                "operations": list(rule["operations"]),
                "seconds": float(rule["seconds"]),
                "count": int(rule.get("count", 1)),
                "used": [],
            }
            with self._lock:
                self.rules.append(rule)
            status, payload = 200, rule
        elif method == "GET" and path == "/_crash/rules":
            with self._lock:
                payload = [dict(rule) for rule in self.rules]
            status = 200
        data = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})


def _requested_lease(body: bytes) -> int | None:
    """The lease a create asks for, in seconds: v1 ``maxLeaseTime`` ("hh:mm:ss"), 2021 minutes."""
    try:
        request = json.loads(body)
        if "maxLeaseTimeMinutes" in request:
            return int(request["maxLeaseTimeMinutes"]) * 60
        match = re.fullmatch(r"(?:(\d+)\.)?(\d+):(\d+):(\d+)(?:\.\d+)?", str(request["maxLeaseTime"]))
    except (ValueError, KeyError, TypeError):
        return None
    if match is None:
        return None
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _canonical(session_id: str) -> str:
    try:
        return str(uuid.UUID(session_id))
    except ValueError:
        return session_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--start-delay", type=float, default=20.0)
    parser.add_argument(
        "--slow-start",
        action="append",
        default=[],
        metavar="LEASE_SECONDS:SECONDS",
        help="sessions created with this lease stay Starting this long instead (repeatable)",
    )
    args = parser.parse_args()
    slow_starts = {int(lease): float(seconds) for lease, seconds in (s.split(":") for s in args.slow_start)}
    state = EmulatorState(start_delay=args.start_delay)
    sock = bind_socket(args.host, args.port)
    url = base_url(args.host, sock.getsockname()[1])
    connection = {
        "conn_type": "azure_remote_rendering",
        "host": url,
        "login": state.account_id,
        "password": state.account_key,
        "extra": {"sts_url": url},
    }
    print(f"ARR_EMULATOR_URL={url}", flush=True)
    print(f"crash-suite emulator, start delay {args.start_delay:g} s, slow starts {slow_starts}")
    print(f"export AIRFLOW_CONN_ARR_DEFAULT='{json.dumps(connection)}'", flush=True)
    config = uvicorn.Config(
        HoldBack(create_app(state), state, slow_starts),
        host=args.host,
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=1,
        server_header=False,
    )
    with sock, contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
