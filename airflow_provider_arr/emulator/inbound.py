"""What every session route reads from a request, whatever its dialect: the JSON body and the token."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import ClientDisconnect, Request

from airflow_provider_arr.emulator.entra import CLIENT
from airflow_provider_arr.emulator.errors import EmulatorError, InvalidTokenError
from airflow_provider_arr.emulator.records import normalize_id
from airflow_provider_arr.emulator.responses import THROTTLED_HEADERS
from airflow_provider_arr.emulator.state import EmulatorState

#: The challenge a 401 of the session API carries.
INVALID_TOKEN_CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
#: The headers an error answer of the session API carries by its status, in both dialects.
SESSION_STATUS_HEADERS = {401: INVALID_TOKEN_CHALLENGE, 429: THROTTLED_HEADERS}


class BadRequestError(EmulatorError):
    """The request is unusable (body, field or query parameter); the message says why."""


@dataclass(frozen=True)
class AccessDenied:
    """Why a session call may not proceed: 401 (no or bad token) or 403 (another account's token).

    :param status: 401 or 403.
    :param message: the explanation for the client.
    :param headers: the headers to send with it (the ``WWW-Authenticate`` challenge of a 401).
    """

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


def check_access(
    state: EmulatorState, request: Request, account_id: str, conversion: bool = False
) -> AccessDenied | None:
    """Return why the call is refused, or ``None`` if it carries a valid token of the path's account.

    A token fetched with an Entra identity carries its role: ``Client`` may not convert (403).

    :param state: the emulator state that verifies tokens.
    :param request: the incoming call.
    :param account_id: the account named in the path.
    :param conversion: a conversion route (needs the Administrator role).
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return AccessDenied(401, "The request carries no bearer access token.", INVALID_TOKEN_CHALLENGE)
    try:
        token_account = state.verify_token(token.strip())
    except InvalidTokenError as error:
        return AccessDenied(401, str(error), INVALID_TOKEN_CHALLENGE)
    if token_account != normalize_id(account_id):
        return AccessDenied(403, f"The access token is not valid for account {account_id}.")
    if conversion and state.token_role(token.strip()) == CLIENT:
        return AccessDenied(
            403,
            "Authorization insufficient for given resource: conversions need the Remote Rendering "
            "Administrator role; the identity has Remote Rendering Client.",
        )
    return None


async def read_json_object(request: Request) -> dict[str, Any]:
    """Return the request body, which must be a JSON object.

    :param request: the incoming call.
    :raises BadRequestError: if the body is incomplete, not JSON or not an object.
    """
    try:
        raw = await request.body()
    except ClientDisconnect:
        raise BadRequestError("The request body was not received completely.") from None
    try:
        body = json.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError):
        raise BadRequestError("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequestError("The request body must be a JSON object.")
    return body
