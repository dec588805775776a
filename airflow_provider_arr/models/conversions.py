"""The asset-conversion model: statuses, properties, and the checks of a conversion's inputs.

A conversion reads a model (FBX, glTF/GLB, point clouds) from an Azure Blob Storage container and writes
an ``.arrAsset`` to another. Pure Python, no I/O and no Airflow imports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_arr.models.common import ArrInputError, ArrResponseError, answer_text, parse_status

#: The input formats the conversion service reads (the contract's list: models and point clouds).
SUPPORTED_INPUT_EXTENSIONS = (".fbx", ".gltf", ".glb", ".ply", ".xyz", ".e57")

#: What every output name ends with.
ARR_ASSET_SUFFIX = ".arrAsset"

_CONVERSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_BLOB_HOST = re.compile(r"^(?P<account>[a-z0-9]{3,24})\.blob\.core\.windows\.net$")


class ConversionStatus(StrEnum):
    """The status of an asset conversion, as the 2021-01-01 API spells it (v1's are mapped onto it).

    A status text this client does not know parses as :attr:`UNKNOWN` (the text is kept as
    :attr:`ConversionProperties.status_text`): not terminal, not failed, so a wait goes on until its
    deadline; the rule is written on ``SessionStatus``.
    """

    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    #: A status text this client does not know; the text is :attr:`ConversionProperties.status_text`.
    UNKNOWN = "Unknown"

    @classmethod
    def parse(cls, value: Any, field: str = "status") -> ConversionStatus:
        """Parse a status of either dialect case-insensitively (v1 ``Success``/``Failure`` included).

        :param value: the status string from the service; a text this client does not know is
            :attr:`UNKNOWN`, a missing or non-text one raises :class:`ArrResponseError`.
        :param field: the JSON field name used in the error message.
        """
        return parse_status(_STATUS_BY_LOWER, value, field, "conversion", ConversionStatus.UNKNOWN)

    @property
    def is_terminal(self) -> bool:
        """Whether the conversion has ended for good (Succeeded, Failed or Cancelled; never Unknown)."""
        return self in (ConversionStatus.SUCCEEDED, ConversionStatus.FAILED, ConversionStatus.CANCELLED)

    @property
    def is_failed(self) -> bool:
        """Whether it ended without an asset (Failed or Cancelled)."""
        return self in (ConversionStatus.FAILED, ConversionStatus.CANCELLED)


_STATUS_BY_LOWER = {status.value.lower(): status for status in ConversionStatus} | {
    "success": ConversionStatus.SUCCEEDED,
    "failure": ConversionStatus.FAILED,
}


@dataclass(frozen=True)
class ConversionProperties:
    """What the service says about one conversion.

    :param conversion_id: the conversion's id.
    :param status: its status.
    :param output_asset_uri: the ``.arrAsset``'s URI once it Succeeded (2021-01-01 says; on v1 the hook
        computes it from the request, when it made it).
    :param error_message: the service's explanation when it Failed.
    :param creation_time: when it was created (ISO 8601, as the service wrote it), if it says.
    :param raw_status: the status text as the service wrote it, when this client does not know it.
    """

    conversion_id: str
    status: ConversionStatus
    output_asset_uri: str | None = None
    error_message: str | None = None
    creation_time: str | None = None
    raw_status: str | None = None

    @property
    def status_text(self) -> str:
        """The status as the service wrote it when this client does not know it, else its name."""
        return self.raw_status if self.raw_status is not None else self.status.value

    @classmethod
    def from_v1(cls, data: Any, conversion_id: str) -> ConversionProperties:
        """Build from a v1 status answer (``{"status": ..., "error": {"message": ...}}``).

        :param data: the decoded JSON object.
        :param conversion_id: the id asked for (v1 answers may not repeat it).
        """
        if not isinstance(data, Mapping):
            raise ArrResponseError("conversion", f"should be a JSON object, got {type(data).__name__}")
        found = answer_text(data.get("conversionId")) or answer_text(data.get("id"))
        return cls(
            conversion_id=found or conversion_id,
            status=ConversionStatus.parse(data.get("status")),
            output_asset_uri=_optional_str(data.get("outputAssetUri"), "outputAssetUri"),
            error_message=_error_message(data.get("error")),
            creation_time=_optional_str(data.get("creationTime"), "creationTime"),
            raw_status=_raw_status(data.get("status")),
        )

    @classmethod
    def from_2021(cls, data: Any) -> ConversionProperties:
        """Build from a 2021-01-01 conversion object (``id``, ``status``, ``output``, ``error``...).

        :param data: the decoded JSON object.
        """
        if not isinstance(data, Mapping):
            raise ArrResponseError("conversion", f"should be a JSON object, got {type(data).__name__}")
        conversion_id = answer_text(data.get("id"))
        if not conversion_id:
            raise ArrResponseError("id", f"should be a non-empty string, got {data.get('id')!r}")
        output = data.get("output")
        if output is not None and not isinstance(output, Mapping):
            raise ArrResponseError("output", f"should be an object or null, got {type(output).__name__}")
        return cls(
            conversion_id=conversion_id,
            status=ConversionStatus.parse(data.get("status")),
            output_asset_uri=_optional_str((output or {}).get("outputAssetUri"), "output.outputAssetUri"),
            error_message=_error_message(data.get("error")),
            creation_time=_optional_str(data.get("creationTime"), "creationTime"),
            raw_status=_raw_status(data.get("status")),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values, for XCom and trigger events."""
        return {
            "conversion_id": self.conversion_id,
            "status": self.status.value,
            "output_asset_uri": self.output_asset_uri,
            "error_message": self.error_message,
            "creation_time": self.creation_time,
        } | ({"raw_status": self.raw_status} if self.raw_status is not None else {})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConversionProperties:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            conversion_id=str(data["conversion_id"]),
            status=ConversionStatus.parse(data.get("status")),
            output_asset_uri=data.get("output_asset_uri"),
            error_message=data.get("error_message"),
            creation_time=data.get("creation_time"),
            raw_status=data.get("raw_status"),
        )


def _raw_status(value: Any) -> str | None:
    """The status text when this client does not know it (its parse is then ``UNKNOWN``)."""
    known = ConversionStatus.parse(value) != ConversionStatus.UNKNOWN
    return None if known else str(value)


def _optional_str(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    text = answer_text(value)
    if text is None:
        raise ArrResponseError(field, f"should be a string, got {type(value).__name__}")
    return text


def _error_message(error: Any) -> str | None:
    """The message of an error object (``{code, message}``), a flat string (v1), or ``None``."""
    if error is None or error == "":
        return None
    if isinstance(error, str):
        return error
    if not isinstance(error, Mapping):
        raise ArrResponseError("error", f"should be an object, a string or null, got {type(error).__name__}")
    code, text = error.get("code"), error.get("message")
    if code and text:
        return f"{code}: {text}"
    return str(text or code) if (text or code) else None


# ---------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class BlobContainer:
    """A checked container URI: ``https://<storage account>.blob.core.windows.net/<container>``."""

    uri: str
    storage_account: str
    container: str


def validate_container_uri(value: Any, field: str) -> BlobContainer:
    """Check an Azure Blob Storage container URI; return it without a trailing slash, split.

    :param value: the URI as given by the user.
    :param field: the parameter name used in the error message.
    """
    example = "https://<storage account>.blob.core.windows.net/<container>"
    if not isinstance(value, str) or not value.strip():
        raise ArrInputError(field, f"must be a blob-container URI like {example}, got {value!r}")
    text = value.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme != "https":
        raise ArrInputError(field, f"must be an https URI like {example} (scheme {parts.scheme!r})")
    if parts.query or parts.fragment:
        raise ArrInputError(
            field, "must not carry a query string (a SAS token goes into input_sas / output_sas)"
        )
    host = _BLOB_HOST.match(parts.hostname or "")
    segments = [segment for segment in parts.path.split("/") if segment]
    if host is None or parts.port is not None or parts.username or len(segments) != 1:
        raise ArrInputError(field, f"must be a blob-container URI like {example}, got {_no_query(value)!r}")
    return BlobContainer(text, host["account"], segments[0])


def validate_input_path(value: Any, field: str = "input_asset_path") -> str:
    """Check the model's path in the input container: not empty, with a supported extension."""
    if not isinstance(value, str) or not value.strip().strip("/"):
        raise ArrInputError(field, f"must be the model's path in the input container, got {value!r}")
    path = value.strip().strip("/")
    if not path.lower().endswith(SUPPORTED_INPUT_EXTENSIONS):
        raise ArrInputError(
            field, f"{path!r} is not a supported model; use one of {', '.join(SUPPORTED_INPUT_EXTENSIONS)}"
        )
    return path


def validate_output_name(value: Any, field: str = "output_asset_filename") -> str | None:
    """Check the optional output name: ends in ``.arrAsset``, no folder (that is the prefix)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip().endswith(ARR_ASSET_SUFFIX):
        raise ArrInputError(field, f"must end in '{ARR_ASSET_SUFFIX}', got {value!r}")
    name = value.strip()
    if "/" in name or name == ARR_ASSET_SUFFIX:
        raise ArrInputError(field, f"must be a file name ending in '{ARR_ASSET_SUFFIX}', got {value!r}")
    return name


def validate_prefix(value: Any, field: str) -> str | None:
    """Check an optional blob prefix (a virtual folder); returned without slashes at its ends."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ArrInputError(field, f"must be a string, got {type(value).__name__}")
    return value.strip().strip("/") or None


def validate_sas(value: Any, field: str) -> str | None:
    """Check an optional SAS token (a query string, not a URI); the error never repeats it."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip():
        raise ArrInputError(field, "must be a SAS query string (sv=...&sig=...)")
    sas = value.strip().lstrip("?")
    if "://" in sas or "sig=" not in sas:
        raise ArrInputError(
            field, "must be a container SAS query string with a signature (sv=...&sig=...), not a URI"
        )
    return sas


def validate_conversion_id(value: Any, field: str = "conversion_id") -> str:
    """Check a conversion id: 1 to 256 letters, digits, ``-`` and ``_`` (it becomes part of a URL)."""
    if not isinstance(value, str) or not _CONVERSION_ID.match(value):
        raise ArrInputError(field, f"must be 1 to 256 letters, digits, '-' or '_', got {value!r}")
    return value


def output_asset_name(input_asset_path: str, output_asset_filename: str | None) -> str:
    """The output's file name: the one given, or the input's name with ``.arrAsset``."""
    if output_asset_filename:
        return output_asset_filename
    stem = input_asset_path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return stem + ARR_ASSET_SUFFIX


def output_asset_uri(
    output_container_uri: str, output_blob_prefix: str | None, output_asset_filename: str
) -> str:
    """``<output container>/<output prefix>/<output name>``: where the ``.arrAsset`` lands."""
    parts = [output_container_uri.rstrip("/"), (output_blob_prefix or "").strip("/"), output_asset_filename]
    return "/".join(part for part in parts if part)


def _no_query(value: str) -> str:
    """A URI without its query string (which may be a SAS token): safe to show."""
    return value.split("?", 1)[0]


@dataclass(frozen=True)
class ConversionSpec:
    """A conversion's checked inputs: where the model is, where the asset goes, and the SAS tokens.

    Build it with :func:`check_conversion`. The SAS tokens are left out of its ``repr``.
    """

    input_container: BlobContainer
    input_asset_path: str
    output_container: BlobContainer
    input_blob_prefix: str | None = None
    output_blob_prefix: str | None = None
    output_asset_filename: str | None = None
    input_sas: str | None = field(default=None, repr=False)
    output_sas: str | None = field(default=None, repr=False)

    @property
    def output_asset_uri(self) -> str:
        """Where the ``.arrAsset`` lands: ``<output container>/<output prefix>/<output name>``."""
        name = output_asset_name(self.input_asset_path, self.output_asset_filename)
        return output_asset_uri(self.output_container.uri, self.output_blob_prefix, name)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The SAS tokens given (to mask in logs)."""
        return tuple(sas for sas in (self.input_sas, self.output_sas) if sas)


def check_conversion(
    input_container_uri: Any,
    input_asset_path: Any,
    output_container_uri: Any,
    *,
    input_blob_prefix: Any = None,
    output_blob_prefix: Any = None,
    output_asset_filename: Any = None,
    input_sas: Any = None,
    output_sas: Any = None,
) -> ConversionSpec:
    """Check a conversion's inputs before any HTTP; :class:`ArrInputError` names the first bad field."""
    return ConversionSpec(
        input_container=validate_container_uri(input_container_uri, "input_container_uri"),
        input_asset_path=validate_input_path(input_asset_path),
        output_container=validate_container_uri(output_container_uri, "output_container_uri"),
        input_blob_prefix=validate_prefix(input_blob_prefix, "input_blob_prefix"),
        output_blob_prefix=validate_prefix(output_blob_prefix, "output_blob_prefix"),
        output_asset_filename=validate_output_name(output_asset_filename),
        input_sas=validate_sas(input_sas, "input_sas"),
        output_sas=validate_sas(output_sas, "output_sas"),
    )
