"""The conversion half of each API dialect: URLs, bodies and answers of the asset-conversion calls.

``V1Conversions`` and ``Api2021Conversions`` are parts of the dialect classes in ``dialects.py`` (which
mix them in), kept here so that each module stays small. ``v1``: ``POST .../v1/accounts/{account}/
conversions/create`` (or ``createWithSharedAccessSignature``) answers the service-chosen id; the create
is not retry-safe, and v1 has no list call. ``2021-01-01``: ``PUT .../conversions/{id}`` under a
client-chosen id (a retry answers 200), ``GET`` of one (with a ``Retry-After`` poll hint), a paged list.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from airflow_provider_arr.exceptions import (
    RemoteRenderingConversionMayExistError,
    RemoteRenderingConversionNotFoundError,
    RemoteRenderingError,
)
from airflow_provider_arr.hooks.paging import parse_page
from airflow_provider_arr.hooks.policy import ResourceKind, parse_answer
from airflow_provider_arr.hooks.settings import ConnectionSettings
from airflow_provider_arr.hooks.transport import Logger, Request, Response
from airflow_provider_arr.models import (
    API_2021,
    ArrInputError,
    ConversionProperties,
    ConversionSpec,
    validate_conversion_id,
)

CONVERSION_MAY_EXIST = (
    "The service may have started the conversion anyway, so the create was not sent again (v1 cannot list "
    "conversions, so a lost answer cannot be matched to its conversion, and a second create would convert "
    "and bill twice): check the output container for the asset before running it again."
)

#: Errors of the conversion calls.
CONVERSION = ResourceKind(
    noun="conversion",
    not_found=RemoteRenderingConversionNotFoundError,
    may_exist=RemoteRenderingConversionMayExistError,
    may_exist_hint=CONVERSION_MAY_EXIST,
    hints={
        409: "A conversion with this id already exists with other settings: choose another conversion_id.",
        400: "The service refused the conversion's settings (container URIs, paths, SAS tokens).",
    },
)


class ConversionDialect:
    """What both dialects share for conversions; the dialect class provides ``settings``."""

    settings: ConnectionSettings
    api_version: ClassVar[str]
    #: Whether the API has a call that lists the account's conversions (the triggerer's shared poller
    #: needs one; without it each conversion wait reads its own conversion).
    lists_conversions: ClassVar[bool] = False

    def check_conversion_id(self, value: Any, field: str = "conversion_id") -> str:
        """A conversion id as the URL may carry it (v1 ids are the service's GUIDs)."""
        return validate_conversion_id(value, field)

    def conversion_create_request(self, spec: ConversionSpec, conversion_id: str | None) -> Request:
        """The create call."""
        raise NotImplementedError

    def conversion_get_request(self, conversion_id: str) -> Request:
        """The call that reads one conversion."""
        raise NotImplementedError

    def conversion_list_request(self, url: str | None = None) -> Request:
        """The call that lists the account's conversions (``url``: a next page)."""
        raise RemoteRenderingError(
            "list_conversions",
            service_message=f"the {self.api_version} API has no call that lists conversions",
            hint="Use api_version 2021-01-01, or keep the ids create_conversion returns.",
        )

    def parse_conversion(self, data: Any, conversion_id: str) -> ConversionProperties:
        """A conversion object of this dialect; :class:`ArrResponseError` if malformed."""
        raise NotImplementedError

    def created_conversion_id(self, request: Request, response: Response) -> str:
        """The new conversion's id: the one the client chose, else from the answer's ``conversionId``."""
        if request.resource_id is not None:
            return request.resource_id
        try:
            body = response.json(request.operation)
        except RemoteRenderingError:
            body = None
        candidate = body.get("conversionId") if isinstance(body, dict) else None
        try:
            return self.check_conversion_id(candidate, "conversionId")
        except ArrInputError:
            raise RemoteRenderingConversionMayExistError(
                request.operation,
                http_status=response.status,
                service_message="the service accepted the create but its answer has no valid conversionId",
                ms_cv=response.ms_cv,
                hint=CONVERSION_MAY_EXIST,
            ) from None

    def conversion(self, request: Request, response: Response, conversion_id: str) -> ConversionProperties:
        """One conversion from an answer; a malformed one is a :class:`RemoteRenderingError`."""
        return parse_answer(
            request.operation, response, lambda data: self.parse_conversion(data, conversion_id)
        )

    def conversion_page(
        self, response: Response, log: Logger | None = None
    ) -> tuple[list[ConversionProperties], str | None]:
        """One page of the conversion list (items it cannot read skipped), and the ``@nextLink`` if any."""
        return parse_page(
            "list_conversions", response, "conversions", lambda item: self.parse_conversion(item, ""), log
        )


class V1Conversions(ConversionDialect):
    """v1 conversions: the service picks ids; a create is never sent twice blindly; no list."""

    def conversions_url(self, suffix: str = "") -> str:
        """``{base}/v1/accounts/{account}/conversions{suffix}``."""
        return f"{self.settings.base_url}/v1/accounts/{self.settings.account_id}/conversions{suffix}"

    def conversion_create_request(self, spec: ConversionSpec, conversion_id: str | None) -> Request:
        """``POST .../conversions/create`` or ``.../createWithSharedAccessSignature`` (with SAS tokens)."""
        if conversion_id is not None:
            raise ArrInputError("conversion_id", "the v1 API chooses conversion ids itself; leave it unset")
        with_sas = bool(spec.secrets)
        source: dict[str, Any] = {
            "storageAccountname": spec.input_container.storage_account,
            "blobContainerName": spec.input_container.container,
        }
        if spec.input_blob_prefix:
            source["folderPath"] = spec.input_blob_prefix
        source["inputAssetPath"] = spec.input_asset_path
        target: dict[str, Any] = {
            "storageAccountname": spec.output_container.storage_account,
            "blobContainerName": spec.output_container.container,
        }
        if spec.output_blob_prefix:
            target["folderPath"] = spec.output_blob_prefix
        if spec.output_asset_filename:
            target["outputAssetFileName"] = spec.output_asset_filename
        if with_sas:
            if not (spec.input_sas and spec.output_sas):
                missing = "output_sas" if spec.input_sas else "input_sas"
                raise ArrInputError(missing, "v1 takes SAS tokens for both containers or for neither")
            source["containerReadListSas"] = spec.input_sas
            target["containerWriteSas"] = spec.output_sas
        suffix = "/createWithSharedAccessSignature" if with_sas else "/create"
        return Request(
            "create_conversion",
            "POST",
            self.conversions_url(suffix),
            {"input": source, "output": target},
            ok=frozenset(range(200, 300)),
            retry_safe=False,
            resource=CONVERSION,
        )

    def conversion_get_request(self, conversion_id: str) -> Request:
        """``GET .../conversions/{id}``."""
        url = self.conversions_url(f"/{self.check_conversion_id(conversion_id)}")
        return Request("get_conversion", "GET", url, resource=CONVERSION)

    def parse_conversion(self, data: Any, conversion_id: str) -> ConversionProperties:
        """A v1 status answer (``Running``, ``Success``, ``Failure``)."""
        return ConversionProperties.from_v1(data, conversion_id)


class Api2021Conversions(ConversionDialect):
    """2021-01-01 conversions: client-chosen ids, so a create is idempotent and may be retried."""

    lists_conversions: ClassVar[bool] = True

    def conversions_url(self, suffix: str = "") -> str:
        """``{base}/accounts/{account}/conversions{suffix}?api-version=2021-01-01``."""
        settings = self.settings
        return (
            f"{settings.base_url}/accounts/{settings.account_id}/conversions{suffix}?api-version={API_2021}"
        )

    def conversion_create_request(self, spec: ConversionSpec, conversion_id: str | None) -> Request:
        """``PUT .../conversions/{id}``: the same id and settings answer 200, so it may be retried."""
        conversion_id = self.check_conversion_id(conversion_id) if conversion_id is not None else None
        conversion_id = conversion_id or f"arr-conversion-{uuid.uuid4()}"
        source: dict[str, Any] = {"storageContainerUri": spec.input_container.uri}
        if spec.input_sas:
            source["storageContainerReadListSas"] = spec.input_sas
        if spec.input_blob_prefix:
            source["blobPrefix"] = spec.input_blob_prefix
        source["relativeInputAssetPath"] = spec.input_asset_path
        target: dict[str, Any] = {"storageContainerUri": spec.output_container.uri}
        if spec.output_sas:
            target["storageContainerWriteSas"] = spec.output_sas
        if spec.output_blob_prefix:
            target["blobPrefix"] = spec.output_blob_prefix
        if spec.output_asset_filename:
            target["outputAssetFilename"] = spec.output_asset_filename
        return Request(
            "create_conversion",
            "PUT",
            self.conversions_url(f"/{conversion_id}"),
            {"settings": {"inputLocation": source, "outputLocation": target}},
            ok=frozenset({200, 201}),
            resource=CONVERSION,
            resource_id=conversion_id,
        )

    def conversion_get_request(self, conversion_id: str) -> Request:
        """``GET .../conversions/{id}``."""
        url = self.conversions_url(f"/{self.check_conversion_id(conversion_id)}")
        return Request("get_conversion", "GET", url, resource=CONVERSION)

    def conversion_list_request(self, url: str | None = None) -> Request:
        """``GET .../conversions`` (or a ``@nextLink``)."""
        return Request("list_conversions", "GET", url or self.conversions_url(), resource=CONVERSION)

    def parse_conversion(self, data: Any, conversion_id: str) -> ConversionProperties:
        """A 2021-01-01 conversion object."""
        return ConversionProperties.from_2021(data)
