"""The v1 dialect of the session API (2019 to Feb 2021): ``/v1/accounts/{accountId}/sessions/...``.

Translates requests into :class:`~airflow_provider_arr.emulator.state.EmulatorState` calls and its
errors into v1 answers. v1 errors are a flat ``{"error": "<message>"}``, the only v1 error shape seen
on the real service. Trailing slashes are accepted because the PowerShell sample sends them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import timedelta
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
    SessionEndedError,
    SessionNotFoundError,
)
from airflow_provider_arr.emulator.inbound import SESSION_STATUS_HEADERS, BadRequestError, read_json_object
from airflow_provider_arr.emulator.oddities import list_body, shown
from airflow_provider_arr.emulator.records import SessionRecord, normalize_id
from airflow_provider_arr.emulator.responses import ErrorShape, json_response
from airflow_provider_arr.emulator.state import EmulatorState
from airflow_provider_arr.emulator.timespan import format_timespan, parse_timespan

SESSIONS = "/v1/accounts/{account_id}/sessions"
#: v1 error answers: a flat ``{"error": "<message>"}``, and the session API's headers by status.
ERRORS = ErrorShape(lambda status, message: {"error": message}, SESSION_STATUS_HEADERS)

__all__ = ["SESSIONS", "BadRequestError", "build_v1_router", "error_response", "session_properties"]


def error_response(status_code: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Return a v1 error answer, ``{"error": "<message>"}``.

    :param status_code: the HTTP status.
    :param message: what went wrong, for the client to show.
    :param headers: extra headers.
    """
    return ERRORS.response(status_code, message, headers)


def session_properties(record: SessionRecord) -> dict[str, Any]:
    """Return a session's v1 properties, in the service's field order.

    :param record: the session snapshot.
    """
    elapsed_seconds = timedelta(seconds=int(record.elapsed_time.total_seconds()))
    return {
        "message": record.message,
        "sessionElapsedTime": format_timespan(elapsed_seconds),
        "sessionHostname": record.hostname,
        "sessionId": record.session_id,
        "sessionMaxLeaseTime": format_timespan(record.max_lease_time),
        "sessionSize": record.size,
        "sessionStatus": record.status,
    }


def build_v1_router(state: EmulatorState) -> APIRouter:
    """Return the five v1 session routes.

    :param state: the emulator state.
    """
    router = APIRouter()

    create_doc = docs(202, 400, 401, 403, extra=openapi.V1_CREATE)

    @router.post(SESSIONS + "/create", **create_doc)
    @router.post(SESSIONS + "/create/", **create_doc)
    async def create_session(account_id: str, request: Request) -> Response:
        """Create a session: 202 with its id and a ``Location`` header."""

        async def action() -> Response:
            body = await read_json_object(request)
            lease = _max_lease_time(body)
            if "size" not in body:
                raise BadRequestError("The field size is required ('standard' or 'premium').")
            record = state.create_session(account_id, lease, body["size"], _models(body))
            location = f"accounts/{normalize_id(account_id)}/sessions/{record.session_id}"
            return json_response({"sessionId": record.session_id}, 202, {"Location": location})

        return await V1.serve(state, "create", request, account_id, action)

    update_doc = docs(200, 400, 401, 403, 404, extra=openapi.V1_UPDATE)

    @router.patch(SESSIONS + "/{session_id}", **update_doc)
    @router.patch(SESSIONS + "/{session_id}/", **update_doc)
    async def update_session(account_id: str, session_id: str, request: Request) -> Response:
        """Set a new total lease: 200 with an empty body."""

        async def action() -> Response:
            lease = _max_lease_time(await read_json_object(request))
            state.update_session(_session_id(session_id), lease, account_id)
            return Response(status_code=200)

        return await V1.serve(state, "update", request, account_id, action)

    list_doc = docs(200, 401, 403)

    @router.get(SESSIONS, **list_doc)
    @router.get(SESSIONS + "/", **list_doc)
    async def list_sessions(account_id: str, request: Request) -> Response:
        """List the account's active sessions."""

        async def action() -> Response:
            body = {"sessions": [session_properties(record) for record in state.list_sessions(account_id)]}
            return json_response(list_body(state, request.url, body, "sessions", "v1"))

        return await V1.serve(state, "list", request, account_id, action)

    properties_doc = docs(200, 401, 403, 404)

    @router.get(SESSIONS + "/{session_id}/properties", **properties_doc)
    @router.get(SESSIONS + "/{session_id}/properties/", **properties_doc)
    async def get_properties(account_id: str, session_id: str, request: Request) -> Response:
        """Return one session's properties, also after it ended."""

        async def action() -> Response:
            record = state.get_session(_session_id(session_id), account_id)
            return json_response(shown(state, session_properties(record)))

        return await V1.serve(state, "properties", request, account_id, action)

    stop_doc = docs(204, 401, 403, 404)

    @router.delete(SESSIONS + "/{session_id}", **stop_doc)
    @router.delete(SESSIONS + "/{session_id}/", **stop_doc)
    async def stop_session(account_id: str, session_id: str, request: Request) -> Response:
        """Stop a session: 204, also when it had already ended."""

        async def action() -> Response:
            state.stop_session(_session_id(session_id), account_id)
            return Response(status_code=204)

        return await V1.serve(state, "stop", request, account_id, action)

    return router


def docs(*statuses: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OpenAPI documentation arguments of a v1 route (no effect on what it answers).

    :param statuses: the statuses it answers, success first.
    :param extra: what it takes besides the token (its body).
    """
    return openapi.route("v1", statuses, openapi.SESSION_TOKEN, extra or {})


def _error_answer(error: EmulatorError) -> Response:
    if isinstance(error, SessionNotFoundError):
        return error_response(404, str(error))
    if isinstance(error, InvalidLeaseError | LeaseNotExtendedError):
        return error_response(400, f"Invalid maxLeaseTime: it {error}.")
    if isinstance(error, InvalidSizeError):
        return error_response(400, f"Invalid size: it {error}.")
    if isinstance(error, SessionEndedError):
        return error_response(400, f"{error} A session in a final state cannot be updated.")
    return error_response(400, str(error))


#: How v1 serves a call: flat error bodies, nothing to check but the token.
V1 = Dialect(ERRORS, _error_answer)


def _session_id(raw: str) -> str:
    """Canonicalize a session id from the path; v1 ids are GUIDs, anything else is unknown."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise SessionNotFoundError(f"No session with id {raw!r} exists.") from None


def _max_lease_time(body: dict[str, Any]) -> timedelta:
    if "maxLeaseTime" not in body:
        raise BadRequestError("The field maxLeaseTime is required (a TimeSpan such as '4:0:0').")
    value = body["maxLeaseTime"]
    if not isinstance(value, str):
        raise BadRequestError(
            f"Invalid maxLeaseTime: expected a TimeSpan string such as '4:0:0', got {json.dumps(value)}."
        )
    try:
        return parse_timespan(value)
    except ValueError as error:
        raise BadRequestError(f"Invalid maxLeaseTime: {error}.") from None


def _models(body: dict[str, Any]) -> list[str]:
    models = body.get("models")
    if models is None:
        return []
    if not isinstance(models, list) or not all(isinstance(model, str) for model in models):
        raise BadRequestError("Invalid models: expected a list of asset container URLs (strings).")
    return models
