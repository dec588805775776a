"""The asset-conversion routes of both dialects, on the sessions' serving machinery.

``v1``: ``POST /v1/accounts/{id}/conversions/create`` (linked storage) and
``.../createWithSharedAccessSignature`` (SAS tokens in the body) answer ``{"conversionId"}``;
``GET .../conversions/{conversionId}`` answers ``{"conversionId", "status": Running|Success|Failure,
"error"?}``; there is no list. ``2021-01-01``: ``PUT /accounts/{id}/conversions/{conversionId}`` (201,
or 200 for a retry with the same settings, 409 for other settings), ``GET`` of one (with a
``Retry-After`` poll hint) and a paged list. SAS tokens are never echoed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from airflow_provider_arr.emulator import openapi, v1, v2021
from airflow_provider_arr.emulator.conversions import (
    ConversionConflictError,
    ConversionNotFoundError,
    ConversionRecord,
    ConversionStatus,
    Location,
)
from airflow_provider_arr.emulator.errors import EmulatorError
from airflow_provider_arr.emulator.inbound import BadRequestError, read_json_object
from airflow_provider_arr.emulator.oddities import list_body, shown
from airflow_provider_arr.emulator.responses import json_response
from airflow_provider_arr.emulator.state import EmulatorState

V1_CONVERSIONS = "/v1/accounts/{account_id}/conversions"
CONVERSIONS = "/accounts/{account_id}/conversions"
CONVERSION = CONVERSIONS + "/{conversion_id}"
_CONVERSION_ID = re.compile(r"[A-Za-z0-9_-]{1,256}")
_CONTAINER_URI = re.compile(r"^https://(?P<account>[a-z0-9]{3,24})\.blob\.core\.windows\.net/[^/?#]+/?$")
#: How v1 names the statuses it knows (it has no NotStarted: such a conversion reads Running).
V1_STATUS = {
    ConversionStatus.NOT_STARTED: "Running",
    ConversionStatus.RUNNING: "Running",
    ConversionStatus.SUCCEEDED: "Success",
    ConversionStatus.FAILED: "Failure",
    ConversionStatus.CANCELLED: "Failure",
}

_URI = {
    "type": "string",
    "pattern": _CONTAINER_URI.pattern,
    "example": "https://contoso.blob.core.windows.net/in",
}
_TEXT = {"type": "string", "pattern": "^[A-Za-z0-9_/-]{1,40}$"}
_MODEL = {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,20}\.(fbx|glb|gltf)$", "example": "house.fbx"}
_ASSET = {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,20}\.arrAsset$", "example": "house.arrAsset"}
_NAME = {"type": "string", "pattern": "^[a-z0-9]{3,24}$", "example": "contoso"}


def _side(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


V2021_CREATE = openapi.json_body(
    {
        "type": "object",
        "required": ["settings"],
        "properties": {
            "settings": _side(
                ["inputLocation", "outputLocation"],
                {
                    "inputLocation": _side(
                        ["storageContainerUri", "relativeInputAssetPath"],
                        {"storageContainerUri": _URI, "blobPrefix": _TEXT, "relativeInputAssetPath": _MODEL},
                    ),
                    "outputLocation": _side(
                        ["storageContainerUri"],
                        {"storageContainerUri": _URI, "blobPrefix": _TEXT, "outputAssetFilename": _ASSET},
                    ),
                },
            )
        },
    }
)


def _v1_create(with_sas: bool) -> dict[str, Any]:
    source = {"storageAccountname": _NAME, "blobContainerName": _NAME, "inputAssetPath": _MODEL}
    target = {"storageAccountname": _NAME, "blobContainerName": _NAME, "outputAssetFileName": _ASSET}
    source_required = ["storageAccountname", "blobContainerName", "inputAssetPath"]
    target_required = ["storageAccountname", "blobContainerName"]
    if with_sas:
        source["containerReadListSas"] = target["containerWriteSas"] = _TEXT
        source_required.append("containerReadListSas")
        target_required.append("containerWriteSas")
    return openapi.json_body(
        _side(
            ["input", "output"],
            {"input": _side(source_required, source), "output": _side(target_required, target)},
        )
    )


__all__ = ["build_conversion_router", "conversion_object", "v1_conversion_status"]


def conversion_object(record: ConversionRecord) -> dict[str, Any]:
    """A conversion as the 2021-01-01 service describes it (SAS fields left out)."""
    input_location: dict[str, Any] = {"storageContainerUri": record.input.container_uri}
    if record.input.blob_prefix is not None:
        input_location["blobPrefix"] = record.input.blob_prefix
    input_location["relativeInputAssetPath"] = record.input.asset
    output_location: dict[str, Any] = {"storageContainerUri": record.output.container_uri}
    if record.output.blob_prefix is not None:
        output_location["blobPrefix"] = record.output.blob_prefix
    if record.output.asset is not None:
        output_location["outputAssetFilename"] = record.output.asset
    body: dict[str, Any] = {
        "id": record.conversion_id,
        "settings": {"inputLocation": input_location, "outputLocation": output_location},
    }
    if record.output_asset_uri is not None:
        body["output"] = {"outputAssetUri": record.output_asset_uri}
    body["error"] = (
        {"code": record.error_code or "ConversionFailed", "message": record.error_message}
        if record.error_message
        else None
    )
    body["status"] = record.status
    body["creationTime"] = v2021.format_creation_time(record.creation_time)
    return body


def v1_conversion_status(record: ConversionRecord) -> dict[str, Any]:
    """A conversion's status as v1 reports it."""
    body: dict[str, Any] = {
        "conversionId": record.conversion_id,
        "status": V1_STATUS[ConversionStatus(record.status)],
    }
    if record.error_message:
        body["error"] = {"code": record.error_code, "message": record.error_message}
    return body


def build_conversion_router(state: EmulatorState) -> APIRouter:
    """Return the conversion routes of both dialects."""
    router = APIRouter()

    async def v1_create(account_id: str, request: Request, with_sas: bool) -> Response:
        async def action() -> Response:
            source, target = _v1_locations(await read_json_object(request), with_sas)
            record, _ = state.create_conversion(account_id, None, source, target, "v1")
            return json_response({"conversionId": record.conversion_id}, 202)

        return await V1_CONVERSION.serve(state, "conversion_create", request, account_id, action)

    @router.post(V1_CONVERSIONS + "/create", **_v1_docs(202, 400, 401, 403, extra=_v1_create(False)))
    async def create_v1(account_id: str, request: Request) -> Response:
        """Start a conversion from a storage account linked to the ARR account."""
        return await v1_create(account_id, request, with_sas=False)

    @router.post(
        V1_CONVERSIONS + "/createWithSharedAccessSignature",
        **_v1_docs(202, 400, 401, 403, extra=_v1_create(True)),
    )
    async def create_v1_sas(account_id: str, request: Request) -> Response:
        """Start a conversion with container SAS tokens in the body."""
        return await v1_create(account_id, request, with_sas=True)

    @router.get(V1_CONVERSIONS + "/{conversion_id}", **_v1_docs(200, 401, 403, 404))
    async def get_v1(account_id: str, conversion_id: str, request: Request) -> Response:
        """A conversion's status: Running, Success or Failure (with an error)."""

        async def action() -> Response:
            record = state.get_conversion(conversion_id, account_id)
            return json_response(shown(state, v1_conversion_status(record)))

        return await V1_CONVERSION.serve(state, "conversion_properties", request, account_id, action)

    @router.put(CONVERSION, **_docs(201, 200, 400, 401, 403, 409, extra=V2021_CREATE))
    async def create_2021(account_id: str, conversion_id: str, request: Request) -> Response:
        """Start a conversion under the client's id: 201, or 200 for a retry with the same settings."""

        async def action() -> Response:
            checked = _conversion_id(conversion_id)
            source, target = _v2021_locations(await read_json_object(request))
            record, created = state.create_conversion(account_id, checked, source, target, "2021-01-01")
            return json_response(conversion_object(record), 201 if created else 200)

        return await V2021_CONVERSION.serve(state, "conversion_create", request, account_id, action)

    @router.get(CONVERSION, **_docs(200, 400, 401, 403, 404))
    async def get_2021(account_id: str, conversion_id: str, request: Request) -> Response:
        """One conversion, with a ``Retry-After`` hint: seconds until asking again is worth it."""

        async def action() -> Response:
            # No conversion can have an invalid id: the document gives GET a 404 for it, not a 400.
            record = state.get_conversion(conversion_id, account_id)
            headers = {"Retry-After": str(record.retry_after)}
            return json_response(shown(state, conversion_object(record)), 200, headers)

        return await V2021_CONVERSION.serve(state, "conversion_properties", request, account_id, action)

    @router.get(CONVERSIONS, **_docs(200, 400, 401, 403, extra=openapi.CONTINUATION))
    async def list_2021(account_id: str, request: Request) -> Response:
        """The account's conversions, ``page_size`` at a time."""

        async def action() -> Response:
            token = request.query_params.get(v2021.CONTINUATION_PARAMETER)
            after = _decode(token) if token is not None else None
            try:
                page, next_after = state.list_conversions_page(account_id, state.page_size, after)
            except ConversionNotFoundError:
                raise v2021.ApiError(400, "The continuation token is not valid.") from None
            body: dict[str, Any] = {"conversions": [conversion_object(record) for record in page]}
            if next_after is not None:
                token = base64.urlsafe_b64encode(next_after.encode()).decode("ascii").rstrip("=")
                next_url = request.url.include_query_params(**{v2021.CONTINUATION_PARAMETER: token})
                body["@nextLink"] = str(next_url)
            return json_response(list_body(state, request.url, body, "conversions", "2021-01-01"))

        return await V2021_CONVERSION.serve(state, "conversion_list", request, account_id, action)

    return router


def _docs(*statuses: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return openapi.route("2021-01-01", statuses, openapi.SESSION_TOKEN, openapi.API_VERSION, extra or {})


def _v1_docs(*statuses: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return openapi.route("v1", statuses, openapi.SESSION_TOKEN, extra or {})


def _conversion_id(raw: str) -> str:
    if _CONVERSION_ID.fullmatch(raw) is None:
        shown = raw if len(raw) <= 64 else raw[:64] + "..."
        raise BadRequestError(
            f"The conversion ID {shown!r} is not valid: use 1 to 256 letters, digits, hyphens or underscores."
        )
    return raw


def _decode(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        raise v2021.ApiError(400, "The continuation token is not valid.") from None


def _object(body: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise BadRequestError(f"The field {where}{key} is required (an object).")
    return value


def _string(body: dict[str, Any], key: str, where: str, required: bool) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequestError(f"The field {where}{key} is required (a non-empty string).")
    return value


def _output_name(name: str | None, field: str) -> str | None:
    if name is not None and not name.endswith(".arrAsset"):
        raise BadRequestError(f"The field {field} must end in '.arrAsset'.")
    return name


def _v2021_locations(body: dict[str, Any]) -> tuple[Location, Location]:
    settings = _object(body, "settings", "")
    source = _object(settings, "inputLocation", "settings.")
    target = _object(settings, "outputLocation", "settings.")
    locations = []
    for side, where, asset_key, sas_key in (
        (source, "settings.inputLocation.", "relativeInputAssetPath", "storageContainerReadListSas"),
        (target, "settings.outputLocation.", "outputAssetFilename", "storageContainerWriteSas"),
    ):
        uri = _string(side, "storageContainerUri", where, True)
        assert uri is not None
        if _CONTAINER_URI.match(uri) is None:
            raise BadRequestError(f"The field {where}storageContainerUri is not a blob container URI.")
        asset = _string(side, asset_key, where, side is source)
        if side is target:
            asset = _output_name(asset, where + asset_key)
        prefix = _string(side, "blobPrefix", where, False)
        sas = _string(side, sas_key, where, False)
        locations.append(Location(uri.rstrip("/"), prefix, asset, sas))
    return locations[0], locations[1]


def _v1_locations(body: dict[str, Any], with_sas: bool) -> tuple[Location, Location]:
    source = _object(body, "input", "")
    target = _object(body, "output", "")
    locations = []
    for side, where, asset_key, sas_key in (
        (source, "input.", "inputAssetPath", "containerReadListSas"),
        (target, "output.", "outputAssetFileName", "containerWriteSas"),
    ):
        account = _string(side, "storageAccountname", where, True)
        container = _string(side, "blobContainerName", where, True)
        asset = _string(side, asset_key, where, side is source)
        if side is target:
            asset = _output_name(asset, where + asset_key)
        prefix = _string(side, "folderPath", where, False)
        sas = _string(side, sas_key, where, with_sas)
        if not with_sas and side.get(sas_key) is not None:
            raise BadRequestError(f"The field {where}{sas_key} belongs to createWithSharedAccessSignature.")
        uri = f"https://{account}.blob.core.windows.net/{container}"
        locations.append(Location(uri, prefix, asset, sas))
    return locations[0], locations[1]


def _map_errors(base: Any) -> Any:
    def answer(error: EmulatorError) -> Response:
        if isinstance(error, ConversionNotFoundError):
            return base.errors.response(404, str(error))
        if isinstance(error, ConversionConflictError):
            return base.errors.response(409, "A conversion with this ID already exists with other settings.")
        return base.error_answer(error)

    return answer


#: How the conversion routes serve a call: as the sessions of the same dialect, with conversion errors.
V1_CONVERSION = dataclasses.replace(v1.V1, error_answer=_map_errors(v1.V1), conversion=True)
V2021_CONVERSION = dataclasses.replace(v2021.V2021, error_answer=_map_errors(v2021.V2021), conversion=True)
