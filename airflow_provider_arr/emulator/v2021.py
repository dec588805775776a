"""The 2021-01-01 dialect of the session API: ``/accounts/{accountId}/sessions/{sessionId}?api-version=...``.

Clients name their sessions (a PUT of the same id and settings is an idempotent retry), leases are
whole minutes counted from ``Ready``, stop is ``POST .../{sessionId}/:stop`` and the list is paged
through ``@nextLink``. Answers look like the real service's from 2022: fields without a value are left
out (a Starting session has no ports, hostname or teraflops), errors are
``{"error": {"code": "BadRequest", "message": "..."}}`` and every answer names the supported versions.
The sessions live in the same :class:`~airflow_provider_arr.emulator.state.EmulatorState` as the v1
ones; a session created here counts its lease from Ready.
"""

from __future__ import annotations

import base64
import binascii
import random
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from airflow_provider_arr.emulator import openapi
from airflow_provider_arr.emulator.dialect import Dialect
from airflow_provider_arr.emulator.errors import (
    EmulatorError,
    InvalidLeaseError,
    InvalidSizeError,
    LeaseNotExtendedError,
    SessionConflictError,
    SessionEndedError,
    SessionNotFoundError,
)
from airflow_provider_arr.emulator.inbound import SESSION_STATUS_HEADERS, BadRequestError, read_json_object
from airflow_provider_arr.emulator.oddities import list_body, shown
from airflow_provider_arr.emulator.records import SessionRecord, SessionStatus
from airflow_provider_arr.emulator.responses import NO_CACHE_HEADERS, ErrorShape, json_response
from airflow_provider_arr.emulator.state import EmulatorState

SESSIONS = "/accounts/{account_id}/sessions"
SESSION = SESSIONS + "/{session_id}"
#: The versions this dialect answers to, in the order the service lists them.
API_VERSIONS = ("2021-01-01-preview", "2021-01-01")
SUPPORTED_VERSIONS_HEADER = "api-supported-versions"
MAX_LEASE_MINUTES = 1440
CONTINUATION_PARAMETER = "continuationToken"
#: What the service reports per size (Standard as recorded; Premium is the emulator's choice).
TERAFLOPS = {"Standard": 8.1, "Premium": 33.0}
PORT_RANGE = range(49152, 65535)
ERROR_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    422: "UnprocessableEntity",
    429: "TooManyRequests",
    500: "InternalServerError",
}
#: The ``error.code`` of a session that failed to start (the emulator's choice). The contract's
#: ``error`` describes a start-up failure only: a session that is Expired or Stopped carries none (the
#: official SDK's poller raises on any ``error``, and must return such a session).
SESSION_ERROR_CODES = {SessionStatus.ERROR: "SessionStartFailed"}

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,256}")
_SESSIONS_PATH = re.compile(r"^/accounts/[^/]+/(?:sessions|conversions)(?:/|$)")

__all__ = [
    "API_VERSIONS",
    "SESSION",
    "SESSIONS",
    "ApiError",
    "add_dialect_headers",
    "build_v2021_router",
    "error_response",
    "format_creation_time",
    "is_v2021_path",
    "session_object",
    "vm_hostname",
]


class ApiError(EmulatorError):
    """A request this dialect refuses with a given status.

    :param status: the HTTP status.
    :param message: the explanation for the client.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_response(status_code: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Return a 2021-01-01 error answer, ``{"error": {"code": ..., "message": ...}}``.

    :param status_code: the HTTP status; it determines the ``code``.
    :param message: what went wrong, for the client to show.
    :param headers: extra headers.
    """
    return ERRORS.response(status_code, message, headers)


def _error_payload(status_code: int, message: str) -> dict[str, Any]:
    code = ERROR_CODES.get(status_code) or HTTPStatus(status_code).phrase.replace(" ", "")
    return {"error": {"code": code, "message": message}}


#: 2021-01-01 error answers: ``{"error": {"code", "message"}}``, and the session API's headers by status.
ERRORS = ErrorShape(_error_payload, SESSION_STATUS_HEADERS)


def add_dialect_headers(response: Response, method: str) -> Response:
    """Add the headers every answer of this dialect carries; GETs also forbid caching.

    Headers already set (e.g. by an injected fault) are kept.

    :param response: the answer to complete.
    :param method: the request's HTTP method.
    """
    response.headers.setdefault(SUPPORTED_VERSIONS_HEADER, ", ".join(API_VERSIONS))
    if method == "GET":
        for name, value in NO_CACHE_HEADERS.items():
            response.headers.setdefault(name, value)
    return response


def is_v2021_path(path: str) -> bool:
    """Whether a path belongs to this dialect's session routes (for answers to unknown routes).

    :param path: the request path.
    """
    return _SESSIONS_PATH.match(path) is not None


def vm_hostname(region: str, size: str) -> str:
    """Return a VM host name in the 2022 service's style: ``arrwu2standard<32 hex>.remoterendering.vm...``.

    :param region: the region, e.g. ``westus2``.
    :param size: the session size.
    """
    return (
        f"arrwu2{size.strip().lower()}{uuid.uuid4().hex}.remoterendering.vm.{region}.mixedreality.azure.com"
    )


def format_creation_time(unix_time: float) -> str:
    """Format a time as the service writes ``creationTime``: UTC, 7 fraction digits, ``+00:00``.

    :param unix_time: seconds since the epoch.
    :return: e.g. ``"2022-09-14T01:05:32.4773534+00:00"``.
    """
    seconds, ticks = divmod(round(unix_time * 10_000_000), 10_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ticks:07d}+00:00"


def session_object(record: SessionRecord) -> dict[str, Any]:
    """Return a session as the 2021-01-01 service describes it, in its field order, without empty fields.

    :param record: the session snapshot.
    """
    status = SessionStatus(record.status)
    running = status is SessionStatus.READY
    body: dict[str, Any] = {
        "id": record.session_id,
        "creationTime": format_creation_time(record.creation_time),
    }
    if running:
        ports = random.Random(f"{record.session_id}/{record.creation_time}").sample(PORT_RANGE, 2)
        body["arrInspectorPort"], body["handshakePort"] = ports
    body["elapsedTimeMinutes"] = _whole_minutes(record.elapsed_time)
    if running and record.hostname:
        body["hostname"] = record.hostname
    body["maxLeaseTimeMinutes"] = _whole_minutes(record.max_lease_time)
    body["size"] = record.size
    body["status"] = status.value
    if record.ready_at is not None:
        body["teraflops"] = TERAFLOPS.get(record.size, TERAFLOPS["Standard"])
    if status in SESSION_ERROR_CODES:
        body["error"] = {"code": SESSION_ERROR_CODES[status], "message": record.message or status.value}
    return body


def build_v2021_router(state: EmulatorState) -> APIRouter:
    """Return the five 2021-01-01 session routes.

    :param state: the emulator state.
    """
    router = APIRouter()

    @router.put(SESSION, **docs(201, 200, 400, 401, 403, 409, extra=openapi.V2021_CREATE))
    async def create_session(account_id: str, session_id: str, request: Request) -> Response:
        """Create a session under the client's id: 201, or 200 for a retry with the same settings."""

        async def action() -> Response:
            checked_id = _session_id(session_id)
            body = await read_json_object(request)
            lease = _lease(body, over_limit_status=400)
            size = body.get("size")
            if size is None:
                raise BadRequestError("The size field is required ('Standard' or 'Premium').")
            hostname = vm_hostname(state.region, size) if isinstance(size, str) else None
            record, created = state.create_session_with_id(
                account_id, checked_id, lease, size, hostname=hostname
            )
            return json_response(session_object(record), 201 if created else 200)

        return await V2021.serve(state, "create", request, account_id, action)

    @router.get(SESSION, **docs(200, 400, 401, 403, 404))
    async def get_session(account_id: str, session_id: str, request: Request) -> Response:
        """Return one session, also after it ended."""

        async def action() -> Response:
            record = state.get_session(_session_id(session_id), account_id)
            return json_response(shown(state, session_object(record)))

        return await V2021.serve(state, "properties", request, account_id, action)

    @router.patch(SESSION, **docs(200, 400, 401, 403, 404, 422, extra=openapi.V2021_UPDATE))
    async def update_session(account_id: str, session_id: str, request: Request) -> Response:
        """Extend a session's lease: 200 with the session, 422 if the lease is not larger."""

        async def action() -> Response:
            checked_id = _session_id(session_id)
            lease = _lease(await read_json_object(request), over_limit_status=422)
            return json_response(session_object(state.update_session(checked_id, lease, account_id)))

        return await V2021.serve(state, "update", request, account_id, action)

    @router.post(SESSION + "/:stop", **docs(204, 400, 401, 403, 404))
    async def stop_session(account_id: str, session_id: str, request: Request) -> Response:
        """Stop a session: 204, also when it had already ended."""

        async def action() -> Response:
            state.stop_session(_session_id(session_id), account_id)
            return Response(status_code=204)

        return await V2021.serve(state, "stop", request, account_id, action)

    @router.get(SESSIONS, **docs(200, 400, 401, 403, extra=openapi.CONTINUATION))
    async def list_sessions(account_id: str, request: Request) -> Response:
        """List the account's Starting and Ready sessions, ``page_size`` at a time."""

        async def action() -> Response:
            token = request.query_params.get(CONTINUATION_PARAMETER)
            after = _decode_continuation(token) if token is not None else None
            try:
                page, next_after = state.list_sessions_page(account_id, state.page_size, after)
            except SessionNotFoundError:
                raise ApiError(400, "The continuation token is not valid.") from None
            body: dict[str, Any] = {"sessions": [session_object(record) for record in page]}
            if next_after is not None:
                next_url = request.url.include_query_params(
                    **{CONTINUATION_PARAMETER: _encode_continuation(next_after)}
                )
                body["@nextLink"] = str(next_url)
            return json_response(list_body(state, request.url, body, "sessions", "2021-01-01"))

        return await V2021.serve(state, "list", request, account_id, action)

    return router


def docs(*statuses: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OpenAPI documentation arguments of a 2021-01-01 route (no effect on what it answers).

    :param statuses: the statuses it answers, success first.
    :param extra: what it takes besides the token and the api-version (its body, the list's token).
    """
    return openapi.route("2021-01-01", statuses, openapi.SESSION_TOKEN, openapi.API_VERSION, extra or {})


def _check_api_version(request: Request) -> None:
    supported = ", ".join(API_VERSIONS)
    version = request.query_params.get("api-version")
    if not version:
        raise ApiError(400, f"The api-version query parameter is required; supported versions: {supported}.")
    if version not in API_VERSIONS:
        raise ApiError(400, f"The api-version {version!r} is not supported; supported versions: {supported}.")


def _error_answer(error: EmulatorError) -> Response:
    if isinstance(error, ApiError):
        return error_response(error.status, str(error))
    if isinstance(error, SessionNotFoundError):
        return error_response(404, str(error))
    if isinstance(error, SessionConflictError):
        return error_response(409, "A resource already exists under the given ID.")
    if isinstance(error, LeaseNotExtendedError):
        return error_response(
            422,
            f"The maxLeaseTimeMinutes value has to be larger than the current value "
            f"{_whole_minutes(error.current)}, got {_whole_minutes(error.requested)}.",
        )
    if isinstance(error, SessionEndedError):
        return error_response(422, f"{error} A session in a final state cannot be updated.")
    if isinstance(error, InvalidLeaseError):
        return error_response(400, f"The maxLeaseTimeMinutes value {error}.")
    if isinstance(error, InvalidSizeError):
        return error_response(400, f"The size value {error}.")
    return error_response(400, str(error))


#: How 2021-01-01 serves a call: nested error bodies, a required api-version, its own headers.
V2021 = Dialect(
    ERRORS,
    _error_answer,
    check_request=_check_api_version,
    finish=lambda response, request: add_dialect_headers(response, request.method),
)


def _session_id(raw: str) -> str:
    """Check a session id from the path: 1 to 256 letters, digits, ``-`` or ``_``, case sensitive."""
    if _SESSION_ID.fullmatch(raw) is None:
        shown = raw if len(raw) <= 64 else raw[:64] + "..."
        raise BadRequestError(
            f"The session ID {shown!r} is not valid: use 1 to 256 letters, digits, hyphens or underscores."
        )
    return raw


def _lease(body: dict[str, Any], over_limit_status: int) -> timedelta:
    """Read ``maxLeaseTimeMinutes``: a whole number, not negative, at most 1440."""
    if "maxLeaseTimeMinutes" not in body:
        raise BadRequestError("The maxLeaseTimeMinutes field is required (whole minutes, 0 to 1440).")
    minutes = body["maxLeaseTimeMinutes"]
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise BadRequestError(
            f"The maxLeaseTimeMinutes value must be a whole number of minutes, got {minutes!r}."
        )
    if minutes < 0:
        raise BadRequestError("The maxLeaseTimeMinutes value cannot be negative.")
    if minutes > MAX_LEASE_MINUTES:
        raise ApiError(
            over_limit_status,
            f"The maxLeaseTimeMinutes value cannot be larger than {MAX_LEASE_MINUTES} (24 hours), "
            f"got {minutes}.",
        )
    return timedelta(minutes=minutes)


def _whole_minutes(value: timedelta) -> int:
    return int(value // timedelta(minutes=1))


def _encode_continuation(session_id: str) -> str:
    return base64.urlsafe_b64encode(session_id.encode("utf-8")).decode("ascii").rstrip("=")


def _decode_continuation(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        raise ApiError(400, "The continuation token is not valid.") from None
