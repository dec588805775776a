"""The pure model layer: no I/O, no Airflow imports, cheap to import in DAG files.

``common`` holds inputs and their checks (TimeSpans, leases, sizes, ids, errors); ``sessions`` the
session model. Everything is importable from ``airflow_provider_arr.models`` as before.
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
from airflow_provider_arr.models.sessions import (
    SessionProperties,
    SessionStatus,
    never_ready_message,
    new_matching_sessions,
)

__all__ = [
    "API_2021",
    "API_V1",
    "API_VERSIONS",
    "MAX_LEASE_TIME",
    "SESSION_SIZES",
    "ArrInputError",
    "ArrResponseError",
    "SessionProperties",
    "SessionStatus",
    "format_timespan",
    "lease_minutes",
    "never_ready_message",
    "new_matching_sessions",
    "parse_timespan",
    "validate_lease",
    "validate_models",
    "validate_session_id",
    "validate_size",
]
