"""Response helpers shared by every route: JSON bodies, injected faults and the common headers."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_arr.emulator.state import EmulatorState, Fault

JSON_MEDIA_TYPE = "application/json; charset=utf-8"
TEXT_MEDIA_TYPE = "text/plain; charset=utf-8"


def new_correlation_vector() -> str:
    """Return a fresh ``MS-CV`` value: 22 base64 characters and ``.0``, like the service's."""
    return base64.b64encode(secrets.token_bytes(16)).decode("ascii")[:22] + ".0"


def common_headers() -> dict[str, str]:
    """Return the headers every answer carries (a new ``MS-CV`` each time)."""
    return {"MS-CV": new_correlation_vector(), "X-Content-Type-Options": "nosniff"}


def json_response(payload: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """Return compact JSON as the service writes it (``application/json; charset=utf-8``).

    :param payload: the value to serialize; dict order is kept on the wire.
    :param status_code: the HTTP status.
    :param headers: extra headers.
    """
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(body, status_code=status_code, headers=dict(headers or {}), media_type=JSON_MEDIA_TYPE)


def fault_response(fault: Fault) -> Response:
    """Build the canned answer of an injected fault.

    :param fault: a fault with a status (a dict or list body is sent as JSON, text as-is).
    """
    assert fault.status is not None
    body = fault.body
    if isinstance(body, Mapping | list):
        content = json.dumps(body, separators=(",", ":")).encode("utf-8")
        media_type: str | None = JSON_MEDIA_TYPE
    else:
        content = body.encode("utf-8") if isinstance(body, str) else body
        media_type = None
        if content:
            media_type = JSON_MEDIA_TYPE if _looks_like_json(content) else TEXT_MEDIA_TYPE
    return Response(content, status_code=fault.status, headers=fault.headers, media_type=media_type)


def _looks_like_json(content: bytes) -> bool:
    try:
        json.loads(content)
    except (ValueError, RecursionError):
        return False
    return True


async def serve_with_faults(
    state: EmulatorState, operation: str, handler: Callable[[], Awaitable[Response]]
) -> Response:
    """Count a call of an operation, then answer it, honouring a pending fault.

    A fault with a status replaces the call: nothing is processed, its canned answer is sent after
    its delay. A fault without a status (delay only) lets the call be processed at once and holds
    back the answer for the delay: the service acted, the client just hears of it late (and may
    time out meanwhile).

    :param state: the emulator state.
    :param operation: the operation's name.
    :param handler: produces the normal answer.
    """
    fault = state.begin_request(operation)
    if fault is not None and fault.status is not None:
        if fault.delay:
            await asyncio.sleep(fault.delay)
        return fault_response(fault)
    response = await handler()
    if fault is not None and fault.delay:
        await asyncio.sleep(fault.delay)
    return response


class CommonHeadersMiddleware:
    """Pure ASGI middleware adding ``MS-CV`` and ``X-Content-Type-Options`` to every answer.

    An ``MS-CV`` the route set itself (e.g. in an injected fault) is kept.

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
