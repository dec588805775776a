"""The emulator's ASGI application: STS, the v1 session API and the emulator-only introspection routes.

``GET /_emulator/sessions`` and ``GET /_emulator/counts`` exist only in the emulator (the real service
has nothing like them): they let a demo or a test in another process see every session ever created
and how many calls each operation received.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from airflow_provider_arr.emulator.responses import CommonHeadersMiddleware, common_headers, json_response
from airflow_provider_arr.emulator.state import EmulatorState, SessionRecord
from airflow_provider_arr.emulator.sts import build_sts_router
from airflow_provider_arr.emulator.timespan import format_timespan
from airflow_provider_arr.emulator.v1 import build_v1_router, error_response

log = logging.getLogger(__name__)


def create_app(state: EmulatorState) -> FastAPI:
    """Build the emulator application around a state.

    :param state: the state every route reads and changes.
    """
    app = FastAPI(
        title="Azure Remote Rendering emulator",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
    )
    app.state.emulator = state
    app.add_middleware(CommonHeadersMiddleware)
    app.include_router(build_sts_router(state))
    app.include_router(build_v1_router(state))
    app.include_router(_introspection_router(state))
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
    return app


def _introspection_router(state: EmulatorState) -> APIRouter:
    router = APIRouter(prefix="/_emulator")

    @router.get("/sessions")
    async def all_sessions() -> Response:
        """Every session ever created, with its current or final status (emulator only)."""
        return json_response([_introspection_record(record) for record in state.sessions()])

    @router.get("/counts")
    async def request_counts() -> Response:
        """Calls received per operation (emulator only)."""
        return json_response(dict(state.request_counts))

    return router


def _introspection_record(record: SessionRecord) -> dict[str, Any]:
    return {
        "sessionId": record.session_id,
        "accountId": record.account_id,
        "status": record.status,
        "size": record.size,
        "maxLeaseTime": format_timespan(record.max_lease_time),
        "elapsedTime": format_timespan(record.elapsed_time),
        "hostname": record.hostname,
        "message": record.message,
        "models": list(record.models),
        "createdAt": record.created_at,
        "readyAt": record.ready_at,
        "endedAt": record.ended_at,
    }


async def _http_error(request: Request, exc: Exception) -> Response:
    """Answer unknown routes and wrong methods in the v1 error shape."""
    assert isinstance(exc, StarletteHTTPException)
    message = (
        exc.detail if exc.status_code != 404 else f"No route matches {request.method} {request.url.path}."
    )
    return error_response(exc.status_code, str(message), dict(exc.headers or {}))


async def _validation_error(request: Request, exc: Exception) -> Response:
    """Turn FastAPI's 422 into the 400 the service gives, naming the offending fields."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error.get("loc", ())[1:]) or "body"
        problems.append(f"{field}: {error.get('msg', 'invalid')}")
    return error_response(400, "Invalid request: " + "; ".join(problems) + ".")


async def _internal_error(request: Request, exc: Exception) -> Response:
    """Last resort (a bug, never an expected answer); runs outside the middleware, so add headers here."""
    log.error("Emulator bug while serving %s %s", request.method, request.url.path, exc_info=exc)
    response = error_response(500, "An internal server error occurred.")
    response.headers.update(common_headers())
    return response
