"""The emulator's ASGI application: STS, both API dialects (sessions and conversions), introspection routes.

``GET /_emulator/sessions``, ``GET /_emulator/conversions`` and ``GET /_emulator/counts`` exist only in
the emulator (the real service has nothing like them): they let a demo or a test in another process see
every session and conversion ever created and how many calls each operation received.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Route

from airflow_provider_arr.emulator.conversion_routes import build_conversion_router
from airflow_provider_arr.emulator.conversions import introspection_record as conversion_record
from airflow_provider_arr.emulator.entra_routes import build_entra_router
from airflow_provider_arr.emulator.openapi import install as install_openapi
from airflow_provider_arr.emulator.records import SessionRecord
from airflow_provider_arr.emulator.responses import CommonHeadersMiddleware, common_headers, json_response
from airflow_provider_arr.emulator.state import EmulatorState
from airflow_provider_arr.emulator.sts import build_sts_router
from airflow_provider_arr.emulator.timespan import format_timespan
from airflow_provider_arr.emulator.v1 import build_v1_router
from airflow_provider_arr.emulator.v1 import error_response as v1_error_response
from airflow_provider_arr.emulator.v2021 import add_dialect_headers, build_v2021_router, is_v2021_path
from airflow_provider_arr.emulator.v2021 import error_response as v2021_error_response

log = logging.getLogger(__name__)


def create_app(state: EmulatorState) -> FastAPI:
    """Build the emulator application around a state.

    :param state: the state every route reads and changes.
    """
    app = FastAPI(
        title="Azure Remote Rendering emulator",
        description="The Azure Remote Rendering session API (v1 and 2021-01-01) and its token service, "
        "as the emulator serves them, plus emulator-only introspection routes.",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        redirect_slashes=False,
    )
    install_openapi(app)
    app.state.emulator = state
    app.add_middleware(CommonHeadersMiddleware)
    app.include_router(build_sts_router(state))
    app.include_router(build_v1_router(state))
    app.include_router(build_v2021_router(state))
    app.include_router(build_conversion_router(state))
    app.include_router(_introspection_router(state))
    # Not in the OpenAPI document: that describes the ARR service (and is what the fuzzer reads).
    app.include_router(build_entra_router(state), include_in_schema=False)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
    return app


def _introspection_router(state: EmulatorState) -> APIRouter:
    router = APIRouter(prefix="/_emulator", tags=["emulator only"])

    @router.get("/sessions")
    async def all_sessions() -> Response:
        """Every session ever created, with its current or final status (emulator only)."""
        return json_response([_introspection_record(record) for record in state.sessions()])

    @router.get("/conversions")
    async def all_conversions() -> Response:
        """Every conversion ever created, with its current or final status; no SAS token (emulator only)."""
        return json_response([conversion_record(record) for record in state.conversions()])

    @router.get("/counts")
    async def request_counts() -> Response:
        """Calls received per operation (emulator only)."""
        return json_response(dict(state.request_counts))

    @router.get("/faults")
    async def faults_injected() -> Response:
        """Faults injected so far, by kind: scripted and chaos, request and session faults (emulator only)."""
        return json_response(dict(state.faults_injected))

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
        "leaseFromReady": record.lease_from_ready,
        "creationTime": record.creation_time,  # UNIX time; the three below are the state's clock
        "createdAt": record.created_at,
        "readyAt": record.ready_at,
        "endedAt": record.ended_at,
    }


def _error_response(
    request: Request, status_code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """An error in the shape of the dialect the path belongs to (v1 for everything else)."""
    if is_v2021_path(request.url.path):
        response = v2021_error_response(status_code, message, headers)
        return add_dialect_headers(response, request.method)
    return v1_error_response(status_code, message, headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Answer unknown routes and wrong methods in the error shape of the path's dialect."""
    assert isinstance(exc, StarletteHTTPException)
    message = (
        exc.detail if exc.status_code != 404 else f"No route matches {request.method} {request.url.path}."
    )
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names only the first route of the path; each method is a route of its own here.
        headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
    return _error_response(request, exc.status_code, str(message), headers)


def _allowed_methods(request: Request) -> set[str]:
    """The methods some route accepts for the request's path."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is Match.PARTIAL and isinstance(route, APIRoute | Route):
            methods |= route.methods or set()
    return methods


async def _validation_error(request: Request, exc: Exception) -> Response:
    """Turn FastAPI's 422 into the 400 the service gives, naming the offending fields."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error.get("loc", ())[1:]) or "body"
        problems.append(f"{field}: {error.get('msg', 'invalid')}")
    return _error_response(request, 400, "Invalid request: " + "; ".join(problems) + ".")


async def _internal_error(request: Request, exc: Exception) -> Response:
    """Last resort (a bug, never an expected answer); runs outside the middleware, so add headers here."""
    log.error("Emulator bug while serving %s %s", request.method, request.url.path, exc_info=exc)
    response = _error_response(request, 500, "An internal server error occurred.")
    response.headers.update(common_headers())
    return response
