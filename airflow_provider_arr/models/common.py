"""Inputs and their checks: TimeSpans, leases, sizes, ids, and the two errors for bad input and bad answers.

Pure Python, no I/O and no Airflow imports.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar

E = TypeVar("E", bound=StrEnum)

#: The service's upper bound for a session's lease (total time since start).
MAX_LEASE_TIME = timedelta(hours=24)

SESSION_SIZES = ("standard", "premium")

#: The two dialects of the session API: the seed's ``v1`` and the ``2021-01-01`` one of the SDKs.
API_V1 = "v1"
API_2021 = "2021-01-01"
API_VERSIONS = (API_V1, API_2021)

_SESSION_ID_2021 = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

_TIMESPAN = re.compile(
    r"""^\s*(?P<sign>-)?
    (?:(?P<days>\d+)\.)?
    (?P<hours>\d+):(?P<minutes>\d+):(?P<seconds>\d+)
    (?:\.(?P<fraction>\d{1,7}))?\s*$""",
    re.VERBOSE,
)


class ArrInputError(ValueError):
    """A value given to the provider is not valid; the message names the field and what is wrong.

    :param field: the argument or connection field that is wrong, e.g. ``max_lease_time``.
    :param problem: what is wrong with it and what would be right.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class ArrResponseError(ValueError):
    """The service answered with a body that does not have the shape of the contract.

    :param field: the JSON field that is missing or malformed.
    :param problem: what is wrong with it.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"unexpected answer from the service: field {field!r} {problem}")


def answer_text(value: Any) -> str | None:
    """A field the contract gives as a string, read leniently (rule 5 of issue 18); ``None`` if it is none.

    A string is itself; a JSON number is its decimal text (a 2021-01-01 id of digits, ``"12345"``, that a
    service or proxy sent as ``12345``; a whole float as ``12345``, not ``12345.0``). Anything else (a
    boolean, an object, a list, ``null``) is not text. The caller decides whether that is an error.

    :param value: the decoded JSON value.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            return str(int(value))
    return str(value)


def parse_timespan(text: str, field: str = "timespan") -> timedelta:
    """Parse a .NET TimeSpan string: ``[-][d.]h:m:s[.fraction]``.

    ``"4:0:0"`` and ``"04:00:00"`` are four hours, ``"1.02:00:00"`` is 26 hours. Minutes and seconds
    must be below 60 and hours below 24 when a day part is given, as .NET requires.

    :param text: the TimeSpan string.
    :param field: the name used in the error message.
    """
    if not isinstance(text, str):
        raise ArrInputError(field, f"expected a TimeSpan string like '4:0:0', got {type(text).__name__}")
    match = _TIMESPAN.match(text)
    if match is None:
        raise ArrInputError(
            field, f"{text!r} is not a TimeSpan; use [d.]hh:mm:ss, e.g. '4:0:0' or '1.02:00:00'"
        )
    hours, minutes, seconds = (int(match[name]) for name in ("hours", "minutes", "seconds"))
    if minutes > 59 or seconds > 59:
        raise ArrInputError(field, f"{text!r} has minutes or seconds above 59")
    if match["days"] is not None and hours > 23:
        raise ArrInputError(field, f"{text!r} has hours above 23 next to a day part")
    fraction = match["fraction"] or ""
    microseconds = int((fraction + "000000")[:6])
    value = timedelta(
        days=int(match["days"] or 0), hours=hours, minutes=minutes, seconds=seconds, microseconds=microseconds
    )
    return -value if match["sign"] else value


def format_timespan(value: timedelta) -> str:
    """Format a ``timedelta`` the way the service writes TimeSpans: ``[d.]hh:mm:ss[.fffffff]``.

    :param value: the duration; negative values keep their sign.
    """
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    if value.days:
        text = f"{value.days}.{text}"
    if value.microseconds:
        text += f".{value.microseconds:06d}0"
    return sign + text


#: Why a number arrives where text was meant, and what to do (rule 9 of issue #18: accept what is clear,
#: refuse with the reason what is not).
NATIVE_NUMBER_HINT = (
    "A DAG with render_template_as_native_obj=True turns a template that renders only digits into a number "
    "(leading zeros lost); render it as text (e.g. '{{ value | string }}') or pass the value itself"
)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_lease(value: Any, field: str = "max_lease_time") -> timedelta:
    """Check a lease given as a ``timedelta`` or a TimeSpan string: more than zero and at most 24 hours.

    :param value: the lease as given by the user.
    :param field: the parameter name used in the error message.
    """
    if _is_number(value):
        raise ArrInputError(
            field,
            f"got the number {value!r}, which has no unit; give '1:00:00' or a timedelta. "
            + NATIVE_NUMBER_HINT,
        )
    if isinstance(value, timedelta):
        lease = value
    elif isinstance(value, str):
        if not value.strip():
            raise ArrInputError(field, "is empty; give a timedelta or a TimeSpan string like '4:0:0'")
        lease = parse_timespan(value, field)
    else:
        raise ArrInputError(
            field, f"expected a timedelta or a TimeSpan string like '4:0:0', got {type(value).__name__}"
        )
    if lease <= timedelta(0):
        raise ArrInputError(field, f"must be longer than zero, got {format_timespan(lease)}")
    if lease > MAX_LEASE_TIME:
        raise ArrInputError(
            field, f"must be at most 24:00:00 (the service's limit), got {format_timespan(lease)}"
        )
    if lease.microseconds:
        raise ArrInputError(field, "must be a whole number of seconds")
    return lease


def validate_size(value: Any, field: str = "size") -> str:
    """Check a session size, ``standard`` or ``premium`` in any case; returns it in lower case.

    :param value: the size as given by the user.
    :param field: the parameter name used in the error message.
    """
    if not isinstance(value, str) or value.strip().lower() not in SESSION_SIZES:
        raise ArrInputError(field, f"must be 'standard' or 'premium', got {value!r}")
    return value.strip().lower()


def validate_session_id(value: Any, field: str = "session_id", api_version: str = API_V1) -> str:
    """
    Check a session id: a GUID on ``v1``; letters, digits, ``-`` and ``_`` (≤ 256) on ``2021-01-01``.

    The id becomes part of a URL path, so anything else (``../token``, an empty string) is refused.

    :param value: the session id as given by the user.
    :param field: the parameter name used in the error message.
    :param api_version: the dialect whose rules apply.
    """
    if isinstance(value, uuid.UUID):  # a GUID object (e.g. from a Python callable): its meaning is clear
        value = str(value)
    if _is_number(value):
        raise ArrInputError(field, f"got the number {value!r}, not text. {NATIVE_NUMBER_HINT}")
    if api_version == API_2021:
        if not isinstance(value, str) or not _SESSION_ID_2021.match(value):
            raise ArrInputError(
                field,
                f"must be 1 to 256 letters, digits, '-' or '_' (2021-01-01 session ids), got {value!r}",
            )
        return value
    if not isinstance(value, str) or not value.strip():
        raise ArrInputError(field, f"must be a session GUID, got {value!r}")
    try:
        parsed = uuid.UUID(value.strip())
    except ValueError:
        raise ArrInputError(
            field, f"must be a session GUID like 'e13d2c44-63e0-4591-991e-f9e05e599a93', got {value!r}"
        ) from None
    text = str(parsed)
    if text != value.strip().lower():
        raise ArrInputError(field, f"must be a session GUID in the 8-4-4-4-12 form, got {value!r}")
    return text


def lease_minutes(lease: timedelta, field: str = "max_lease_time") -> int:
    """
    The lease in whole minutes, as the ``2021-01-01`` API counts it; a part minute is refused.

    :param lease: a lease already checked by :func:`validate_lease`.
    :param field: the parameter name used in the error message.
    """
    minutes, rest = divmod(lease, timedelta(minutes=1))
    if rest:
        raise ArrInputError(
            field, f"the 2021-01-01 API counts leases in whole minutes, got {format_timespan(lease)}"
        )
    return int(minutes)


def validate_models(value: Any, field: str = "models") -> list[str]:
    """Check the list of asset-container URLs to preload: a list (or tuple) of non-empty strings.

    :param value: ``None`` for none, or the models as given by the user.
    :param field: the parameter name used in the error message.
    """
    if value is None:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ArrInputError(field, f"must be a list of strings, got {type(value).__name__}")
    models = list(value)
    for index, model in enumerate(models):
        if not isinstance(model, str) or not model.strip():
            raise ArrInputError(f"{field}[{index}]", f"must be a non-empty string, got {model!r}")
    return models


def parse_status(by_lower: Mapping[str, E], value: Any, field: str, noun: str, unknown: E | None = None) -> E:
    """A status from the service, case-insensitively.

    A status text this client does not know is ``unknown`` when one is given: a newer service may add
    statuses, and one it adds must not fail a call (see ``SessionStatus``). What is not a status text
    at all (missing, empty, not a string) raises :class:`ArrResponseError`.

    :param by_lower: the statuses by their lower-case spelling (aliases included).
    :param value: the status string from the service.
    :param field: the JSON field name used in the error message.
    :param noun: ``session`` or ``conversion``, for the message.
    :param unknown: the member that stands for a status text not in ``by_lower``.
    """
    if isinstance(value, str):
        found = by_lower.get(value.strip().lower())
        if found is not None:
            return found
        if unknown is not None and value.strip():
            return unknown
    known = ", ".join(dict.fromkeys(status.value for status in by_lower.values() if status != unknown))
    raise ArrResponseError(field, f"has an unknown {noun} status {value!r} (known: {known})")
