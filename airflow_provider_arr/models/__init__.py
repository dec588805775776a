"""The pure model layer: no I/O, no Airflow imports, cheap to import in DAG files.

``common`` holds inputs and their checks (TimeSpans, leases, sizes, ids, errors); ``sessions`` the
session model; ``conversions`` the asset-conversion model and its input checks. Everything is
importable from ``airflow_provider_arr.models``.
"""

from __future__ import annotations

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
