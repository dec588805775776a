"""The emulator's OpenAPI description, served at ``/openapi.json``.

The routes read their bodies and headers themselves (so that bad input gets the service's own
answers, not FastAPI's), so FastAPI cannot infer what they accept. The pieces below describe it in
each route's ``openapi_extra`` and ``responses`` instead: documentation only, the wire behaviour is
the same. A fuzzer (schemathesis, in the tests) reads this description to build its requests.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

#: A .NET TimeSpan as v1 takes it: ``[d.]h:m:s[.fraction]``.
TIMESPAN_PATTERN = r"^([0-9]{1,8}\.)?[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\.[0-9]{1,7})?$"
#: A 2021-01-01 session id.
SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,256}$"

_SIZE = {"type": "string", "enum": ["standard", "premium", "Standard", "Premium"]}


def merge(*parts: dict[str, Any]) -> dict[str, Any]:
    """Combine ``openapi_extra`` fragments; their ``parameters`` lists are joined.

    :param parts: the fragments, e.g. :func:`bearer` and :func:`json_body`.
    """
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key == "parameters":
                merged.setdefault("parameters", []).extend(value)
            else:
                merged[key] = value
    return merged


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """An ``openapi_extra`` fragment: the operation takes this JSON object as its body.

    :param schema: the JSON schema of the body.
    """
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def bearer(description: str) -> dict[str, Any]:
    """An ``openapi_extra`` fragment: the ``Authorization`` header the operation needs.

    :param description: what the bearer credential is.
    """
    header = {
        "name": "Authorization",
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string", "pattern": "^Bearer .+$"},
    }
    return {"parameters": [header]}


def query(name: str, schema: dict[str, Any], required: bool, description: str) -> dict[str, Any]:
    """An ``openapi_extra`` fragment: a query parameter the route reads itself.

    :param name: the parameter's name.
    :param schema: its JSON schema.
    :param required: whether the service refuses a call without it.
    :param description: what it means.
    """
    parameter = {"name": name, "in": "query", "required": required, "description": description}
    return {"parameters": [{**parameter, "schema": schema}]}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: a description for each status it may answer.

    :param statuses: the HTTP statuses, success first.
    """
    return {status: {"description": _STATUS_TEXT[status]} for status in statuses}


def route(tag: str, statuses: tuple[int, ...], *extras: dict[str, Any]) -> dict[str, Any]:
    """The documentation arguments of a route decorator (no effect on what the route answers).

    :param tag: the group the route is listed under: ``sts`` or its dialect.
    :param statuses: the statuses it answers, success first.
    :param extras: ``openapi_extra`` fragments: what it takes (token, query parameters, body).
    """
    return {
        "status_code": statuses[0],
        "responses": responses(*statuses),
        "openapi_extra": merge(*extras),
        "tags": [tag],
    }


_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad request: the message names the field",
    401: "Missing, malformed, expired or revoked credentials",
    403: "The token belongs to another account",
    404: "No such session or conversion in this account, or no such route",
    409: "A session or conversion with this id exists with other settings",
    422: "The new lease is not larger than the current one, or the session has ended",
}

TOKEN = bearer("Bearer {accountId}:{accountKey}")
SESSION_TOKEN = bearer("Bearer {access token from the STS}")
API_VERSION = query(
    "api-version",
    {"type": "string", "enum": ["2021-01-01-preview", "2021-01-01"]},
    required=True,
    description="the API version",
)
CONTINUATION = query(
    "continuationToken",
    {"type": "string"},
    required=False,
    description="where the next page starts (from @nextLink)",
)

V1_CREATE = json_body(
    {
        "type": "object",
        "required": ["maxLeaseTime", "size"],
        "properties": {
            "maxLeaseTime": {"type": "string", "pattern": TIMESPAN_PATTERN, "example": "4:0:0"},
            "size": _SIZE,
            "models": {"type": "array", "items": {"type": "string"}},
        },
    }
)
V1_UPDATE = json_body(
    {
        "type": "object",
        "required": ["maxLeaseTime"],
        "properties": {"maxLeaseTime": {"type": "string", "pattern": TIMESPAN_PATTERN, "example": "5:0:0"}},
    }
)
_MINUTES = {"type": "integer", "minimum": 0, "maximum": 1440, "example": 30}
V2021_CREATE = json_body(
    {
        "type": "object",
        "required": ["maxLeaseTimeMinutes", "size"],
        "properties": {"maxLeaseTimeMinutes": _MINUTES, "size": _SIZE},
    }
)
V2021_UPDATE = json_body(
    {"type": "object", "required": ["maxLeaseTimeMinutes"], "properties": {"maxLeaseTimeMinutes": _MINUTES}}
)


def install(app: FastAPI) -> None:
    """Serve the description without FastAPI's 422 answers, which the emulator never gives.

    FastAPI documents a 422 "Validation Error" for every route with parameters; the emulator's
    parameters are plain strings and bad bodies get the service's 400, so the schema would lie.

    :param app: the emulator application.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            for path_item in schema.get("paths", {}).values():
                for operation in path_item.values():
                    answers = operation.get("responses", {})
                    if "HTTPValidationError" in str(answers.get("422", "")):
                        del answers["422"]  # FastAPI's own; a route that answers 422 documents it
            components = schema.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            if "components" in schema and not components:
                schema["components"].pop("schemas", None)
                if not schema["components"]:
                    del schema["components"]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
