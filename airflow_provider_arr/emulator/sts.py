"""The emulated Mixed Reality Security Token Service: ``GET /accounts/{accountId}/token``.

It takes ``Bearer <account id>:<account key>`` or ``Bearer <Entra token>`` (of an identity with a
Remote Rendering role on the account, see :mod:`~airflow_provider_arr.emulator.entra`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from airflow_provider_arr.emulator import openapi
from airflow_provider_arr.emulator.entra import EntraError
from airflow_provider_arr.emulator.errors import AuthenticationError
from airflow_provider_arr.emulator.records import normalize_id
from airflow_provider_arr.emulator.responses import (
    NO_CACHE_HEADERS,
    THROTTLED_HEADERS,
    ErrorShape,
    json_response,
    serve_with_faults,
)
from airflow_provider_arr.emulator.state import EmulatorState

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
#: STS error answers: no body (a bad key gets an empty 401, as recorded); 400, 401 and 429 carry the
#: challenge (the STS contract), a 429 also ``Retry-After``.
STS_ERRORS = ErrorShape(None, {400: _CHALLENGE, 401: _CHALLENGE, 429: {**_CHALLENGE, **THROTTLED_HEADERS}})


def build_sts_router(state: EmulatorState) -> APIRouter:
    """Return the STS routes; the scripts call ``/accounts/``, the Python SDK ``/Accounts/?api-version=``.

    :param state: the emulator state that owns the accounts.
    """
    router = APIRouter()

    doc = openapi.route("sts", (200, 401), openapi.TOKEN)

    @router.get("/accounts/{account_id}/token", **doc)
    @router.get("/Accounts/{account_id}/token", **doc)
    async def get_token(account_id: str, request: Request) -> Response:
        """Exchange ``Authorization: Bearer {accountId}:{accountKey}`` or an Entra token for a token."""

        async def answer() -> Response:
            authorization = request.headers.get("authorization", "")
            credentials = _account_credentials(authorization)
            if credentials is None:
                return _entra_exchange(state, account_id, authorization, str(request.base_url))
            state.note_sts_sign_in("account key", credentials[0])
            if normalize_id(credentials[0]) != normalize_id(account_id):
                return STS_ERRORS.response(401, "Unknown account or wrong account key.")
            try:
                token = state.issue_token(*credentials)
            except AuthenticationError:
                return STS_ERRORS.response(401, "Unknown account or wrong account key.")
            return json_response({"AccessToken": token}, headers=NO_CACHE_HEADERS)

        return await serve_with_faults(state, "token", answer, STS_ERRORS)

    return router


def _entra_exchange(state: EmulatorState, account_id: str, authorization: str, sts_url: str) -> Response:
    """Exchange ``Bearer <Entra token>``; 401 unless the identity has a role on the account."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return STS_ERRORS.response(401, "Unknown account or wrong account key.")
    try:
        issued = state.issue_token_for_entra(account_id, token.strip(), sts_url)
    except EntraError as error:
        state.note_sts_sign_in("entra", "refused")
        return STS_ERRORS.response(401, error.description.split(": ", 1)[1])
    return json_response({"AccessToken": issued}, headers=NO_CACHE_HEADERS)


def _account_credentials(authorization: str) -> tuple[str, str] | None:
    """Split ``Bearer {accountId}:{accountKey}`` into id and key, or return ``None``."""
    scheme, _, credentials = authorization.partition(" ")
    account_id, separator, account_key = credentials.strip().partition(":")
    if scheme.lower() != "bearer" or not separator or not account_id or not account_key:
        return None
    return account_id, account_key
