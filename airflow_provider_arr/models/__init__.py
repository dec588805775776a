"""The pure model layer: no I/O, no Airflow imports, cheap to import in DAG files.

``common`` holds inputs and their checks (TimeSpans, leases, sizes, ids, errors); ``sessions`` the
session model; ``conversions`` the asset-conversion model and its input checks. Everything is
importable from ``airflow_provider_arr.models``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_arr.models.common import (
    API_2021,
    API_V1,
    API_VERSIONS,
    MAX_LEASE_TIME,
    SESSION_SIZES,
    ArrInputError,
    ArrResponseError,
    format_timespan,
    lease_minutes,
    parse_timespan,
    validate_lease,
    validate_models,
    validate_session_id,
    validate_size,
)

# The session and conversion models (dataclasses, whose creation is most of this package's import cost)
# are imported on first use: a DAG file that only declares tasks needs the input checks above.
if TYPE_CHECKING:
    from airflow_provider_arr.models.conversions import (
        ARR_ASSET_SUFFIX,
        SUPPORTED_INPUT_EXTENSIONS,
        BlobContainer,
        ConversionProperties,
        ConversionSpec,
        ConversionStatus,
        check_conversion,
        output_asset_name,
        output_asset_uri,
        validate_container_uri,
        validate_conversion_id,
        validate_input_path,
        validate_output_name,
        validate_prefix,
        validate_sas,
    )
    from airflow_provider_arr.models.sessions import (
        BilledTime,
        SessionProperties,
        SessionStatus,
        SessionStopOutcome,
        never_ready_message,
        new_matching_sessions,
        unknown_status_note,
    )

__all__ = [
    "API_2021",
    "API_V1",
    "API_VERSIONS",
    "ARR_ASSET_SUFFIX",
    "MAX_LEASE_TIME",
    "SESSION_SIZES",
    "SUPPORTED_INPUT_EXTENSIONS",
    "ArrInputError",
    "ArrResponseError",
    "BilledTime",
    "BlobContainer",
    "ConversionProperties",
    "ConversionSpec",
    "ConversionStatus",
    "SessionProperties",
    "SessionStatus",
    "SessionStopOutcome",
    "check_conversion",
    "format_timespan",
    "lease_minutes",
    "never_ready_message",
    "new_matching_sessions",
    "output_asset_name",
    "output_asset_uri",
    "parse_timespan",
    "unknown_status_note",
    "validate_container_uri",
    "validate_conversion_id",
    "validate_input_path",
    "validate_lease",
    "validate_models",
    "validate_output_name",
    "validate_prefix",
    "validate_sas",
    "validate_session_id",
    "validate_size",
]

#: The names of ``__all__`` that live in the ``sessions`` and ``conversions`` modules, imported when first
#: asked for (``from airflow_provider_arr.models import SessionStatus`` works as before).
_LAZY = {
    "ARR_ASSET_SUFFIX": "airflow_provider_arr.models.conversions",
    "SUPPORTED_INPUT_EXTENSIONS": "airflow_provider_arr.models.conversions",
    "BlobContainer": "airflow_provider_arr.models.conversions",
    "ConversionProperties": "airflow_provider_arr.models.conversions",
    "ConversionSpec": "airflow_provider_arr.models.conversions",
    "ConversionStatus": "airflow_provider_arr.models.conversions",
    "check_conversion": "airflow_provider_arr.models.conversions",
    "output_asset_name": "airflow_provider_arr.models.conversions",
    "output_asset_uri": "airflow_provider_arr.models.conversions",
    "validate_container_uri": "airflow_provider_arr.models.conversions",
    "validate_conversion_id": "airflow_provider_arr.models.conversions",
    "validate_input_path": "airflow_provider_arr.models.conversions",
    "validate_output_name": "airflow_provider_arr.models.conversions",
    "validate_prefix": "airflow_provider_arr.models.conversions",
    "validate_sas": "airflow_provider_arr.models.conversions",
    "BilledTime": "airflow_provider_arr.models.sessions",
    "SessionProperties": "airflow_provider_arr.models.sessions",
    "SessionStatus": "airflow_provider_arr.models.sessions",
    "SessionStopOutcome": "airflow_provider_arr.models.sessions",
    "never_ready_message": "airflow_provider_arr.models.sessions",
    "new_matching_sessions": "airflow_provider_arr.models.sessions",
    "unknown_status_note": "airflow_provider_arr.models.sessions",
}


def __getattr__(name: str) -> Any:
    from airflow_provider_arr._lazy import load

    return load(__name__, _LAZY, globals(), name)
