"""Response helpers shared by every route: JSON bodies, injected faults and the common headers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, cast

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_arr.emulator.faults import Fault
from airflow_provider_arr.emulator.state import EmulatorState

JSON_MEDIA_TYPE = "application/json; charset=utf-8"
TEXT_MEDIA_TYPE = "text/plain; charset=utf-8"
#: What the service's GETs and token answers carry so that no proxy keeps them.
NO_CACHE_HEADERS = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


def new_correlation_vector() -> str:
    """Return a fresh ``MS-CV`` value: 22 base64 characters and ``.0``, like the service's."""
    return base64.b64encode(secrets.token_bytes(16)).decode("ascii")[:22] + ".0"


def common_headers() -> dict[str, str]:
    """Return the headers every answer carries (a new ``MS-CV`` each time, and the ``Date``).

    The ``Date`` is written here rather than by uvicorn, so that a fault's own ``Date`` (a server whose
    clock differs from the client's) replaces it instead of being sent beside it.
    """
    return {
        "MS-CV": new_correlation_vector(),
        "X-Content-Type-Options": "nosniff",
        "Date": formatdate(usegmt=True),
    }


def json_response(payload: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """Return compact JSON as the service writes it (``application/json; charset=utf-8``).

    :param payload: the value to serialize; dict order is kept on the wire.
    :param status_code: the HTTP status.
    :param headers: extra headers.
    """
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(body, status_code=status_code, headers=dict(headers or {}), media_type=JSON_MEDIA_TYPE)


#: Seconds a throttled answer asks the client to wait, unless a fault names its own ``Retry-After``.
DEFAULT_RETRY_AFTER = 1
#: What every 429 of the service carries (the contract: ``Retry-After``, in whole seconds).
THROTTLED_HEADERS = {"Retry-After": str(DEFAULT_RETRY_AFTER)}
#: What a canned error answer says when its fault gives no body (the default, and chaos faults).
FAULT_MESSAGES = {
    400: "The request is not valid.",
    401: "Missing or invalid authorization.",
    403: "Authorization insufficient for the given resource.",
    404: "No session with the provided session ID exists.",
    409: "A resource already exists under the given ID.",
    429: "Too many requests; retry later.",
    500: "An internal server error occurred.",
    503: "The service is temporarily unavailable; retry later.",
}


@dataclass(frozen=True)
class ErrorShape:
    """How one family of routes (a dialect, or the STS) answers an error: its body and its headers.

    :param payload: the JSON body of an error, ``(status, message) -> payload``; ``None`` for none.
    :param status_headers: the headers an error of a status carries, by status (``Retry-After`` on a
        429, the challenge on a 401...); ``MS-CV`` and the dialect's own headers are added elsewhere.
    """

    payload: Callable[[int, str], Any] | None
    status_headers: Mapping[int, Mapping[str, str]]

    def headers(self, status: int, given: Mapping[str, str] | None = None) -> dict[str, str]:
        """Return the headers of an answer of ``status``: those the status calls for, then ``given``.

        :param status: the HTTP status.
        :param given: headers set by the caller (a test's fault); they win, whatever their case.
        """
        given = dict(given or {})
        names = {name.lower() for name in given}
        defaults = self.status_headers.get(status, {})
        return {**{k: v for k, v in defaults.items() if k.lower() not in names}, **given}

    def response(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
        """Return an error answer in this shape.

        :param status: the HTTP status.
        :param message: what went wrong, for the client to show (unused without a payload).
        :param headers: extra headers; they win over the status's own.
        """
        all_headers = self.headers(status, headers)
        if self.payload is None:
            return Response(status_code=status, headers=all_headers)
        return json_response(self.payload(status, message), status, all_headers)


def fault_response(fault: Fault, errors: ErrorShape | None = None) -> Response:
    """Build the canned answer of an injected fault, as the real service answers that status.

    With the route's ``errors``, a fault without a body (``None``, the default) gets the dialect's
    error body for a status from 400 (no body below), and every answer gets the headers its status
    calls for (``Retry-After`` on 429, the challenge on 401); the fault's own body and headers win.

    :param fault: a fault with a status (a dict or list body is sent as JSON, text as-is).
    :param errors: the error shape of the route's dialect; without it the fault is sent as it is.
    """
    status = fault.status
    assert status is not None
    if errors is not None and fault.body is None and status >= 400:
        return errors.response(
            status, FAULT_MESSAGES.get(status, f"Injected fault: HTTP {status}."), fault.headers
        )
    headers = errors.headers(status, fault.headers) if errors is not None else dict(fault.headers)
    body = b"" if fault.body is None else fault.body
    if isinstance(body, Mapping | list):
        content = json.dumps(body, separators=(",", ":")).encode("utf-8")
        media_type: str | None = JSON_MEDIA_TYPE
    else:
        content = body.encode("utf-8") if isinstance(body, str) else body
        media_type = None
        if content:
            media_type = JSON_MEDIA_TYPE if _looks_like_json(content) else TEXT_MEDIA_TYPE
    return Response(content, status_code=status, headers=headers, media_type=media_type)


def _looks_like_json(content: bytes) -> bool:
    try:
        json.loads(content)
    except (ValueError, RecursionError):
        return False
    return True


async def serve_with_faults(
    state: EmulatorState,
    operation: str,
    handler: Callable[[], Awaitable[Response]],
    errors: ErrorShape | None = None,
) -> Response:
    """Count a call of an operation, then answer it, honouring a pending fault (see :class:`Fault`).

    A canned answer replaces the call: nothing is processed. A delay alone lets the call be
    processed at once and holds back the answer: the service acted, the client just hears of it
    late (and may time out meanwhile). Dropped, truncated and garbled answers are special responses
    that reset or close the connection, or replace the body, when they are sent.

    :param state: the emulator state.
    :param operation: the operation's name.
    :param handler: produces the normal answer (and does the work).
    :param errors: the error shape of the route's dialect, for canned answers (see :func:`fault_response`).
    """
    fault = state.begin_request(operation)
    if fault is None:
        return await handler()
    if not fault.processes_call:
        await asyncio.sleep(fault.delay)
        if fault.action == "drop_before":
            return DroppedConnection()
        response = fault_response(fault, errors)
        return TruncatedResponse(response) if fault.action == "truncate" else response
    response = await handler()
    await asyncio.sleep(fault.delay)
    if fault.action == "drop_after":
        return DroppedConnection()
    if fault.action == "truncate":
        return TruncatedResponse(response)
    if fault.action == "garble":
        return GarbledResponse(response, fault.body)
    return response


# --------------------------------------------------------------------------------------------------
# Answers that break the connection. They need the connection's transport, which an ASGI app is not
# given: uvicorn's ``receive`` is a method of its per-request cycle object, which holds it.
# --------------------------------------------------------------------------------------------------


def _transport(receive: Receive) -> asyncio.Transport:
    """The server's transport of the connection a request came on (uvicorn's; h11 or httptools).

    uvloop's transports do not derive from :class:`asyncio.Transport`, so it is recognized by its methods.
    """
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if not all(callable(getattr(transport, name, None)) for name in ("abort", "close", "get_extra_info")):
        raise RuntimeError(
            "this fault needs the connection's transport, which only uvicorn's receive() exposes; "
            "run the emulator with ArrEmulator or arr-emulator"
        )
    return cast(asyncio.Transport, transport)


async def _until_disconnected(receive: Receive, timeout: float = 5.0) -> None:
    """Wait until the server has noticed the closed connection, so that it logs no incomplete answer."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while (await receive())["type"] != "http.disconnect":
                pass


class DroppedConnection(Response):
    """No answer at all: the TCP connection is reset (RST), as a crashing proxy or a network cut does.

    The client sees a connection reset (or a remote disconnect) instead of a status.
    """

    def __init__(self) -> None:
        super().__init__(status_code=500)  # never sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Reset the connection instead of sending anything."""
        transport = _transport(receive)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # linger 0: close with RST, not FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        await _until_disconnected(receive)


class TruncatedResponse(Response):
    """An answer cut short: ``Content-Length`` promises more bytes than follow, then the connection closes.

    Half the body is sent (none of an empty one); the client sees an incomplete read. A client
    reads no body after a 204 or 304, so such an answer arrives complete (and the connection closes).

    :param original: the complete answer to cut.
    """

    def __init__(self, original: Response) -> None:
        super().__init__(original.body, status_code=original.status_code)
        self.raw_headers = [(k, v) for k, v in original.raw_headers if k.lower() != b"content-length"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the headers and half the body, then close the connection."""
        body = bytes(self.body)
        declared = str(len(body) + max(len(body), 16)).encode("latin-1")
        # "Connection: close" keeps the client from reusing a connection that is about to close.
        headers = [*self.raw_headers, (b"content-length", declared), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        _transport(receive).close()  # FIN after what was written, unlike DroppedConnection's RST
        await _until_disconnected(receive)


class GarbledResponse(Response):
    """The real status and headers of an answer with another body (by default: not JSON).

    An answer whose status allows no body (204, 304) is sent unchanged.

    :param original: the real answer.
    :param body: the body to send instead.
    """

    def __init__(self, original: Response, body: str | bytes | Mapping[str, Any] | list[Any] | None) -> None:
        if original.status_code in (204, 304):
            content = bytes(original.body)
        elif isinstance(body, Mapping | list):
            content = json.dumps(body).encode("utf-8")
        elif isinstance(body, str):
            content = body.encode("utf-8")
        else:
            content = body or b""
        super().__init__(content, status_code=original.status_code)
        self.raw_headers = [
            *[(k, v) for k, v in original.raw_headers if k.lower() != b"content-length"],
            (b"content-length", str(len(content)).encode("latin-1")),
        ]


class CommonHeadersMiddleware:
    """Pure ASGI middleware adding the :func:`common_headers` to every answer.

    One the route set itself (e.g. an ``MS-CV`` or ``Date`` in an injected fault) is kept.

    :param app: the wrapped application.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the call through, adding the headers to the response start message."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in common_headers().items():
                    if name.lower().encode("latin-1") not in present:
                        headers.append((name.encode("latin-1"), value.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
