"""The session model of Azure Remote Rendering: statuses, properties, and the rules built on them.

Pure Python, no I/O and no Airflow imports: the hook, the operators and the tests build on it, and it
stays cheap to import in DAG files.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from airflow_provider_arr.models.common import (
    API_2021,
    ArrInputError,
    ArrResponseError,
    answer_text,
    format_timespan,
    parse_status,
    parse_timespan,
)


class SessionStatus(StrEnum):
    """The status of a rendering session, as the service reports it.

    **Forward compatible (issue 18, rule 4).** A status text this client does not know (one a newer
    service adds) parses as :attr:`UNKNOWN`, and the text itself is kept on the properties
    (:attr:`SessionProperties.status_text`). An unknown status is never taken as an end: it is not
    terminal, it is active (billed, so a stop decision still stops it), and a wait for Ready goes on
    until its deadline (:attr:`may_become_ready`), saying what the service reported. Only a known
    final status (or a 404) says that a session has ended.
    """

    STARTING = "Starting"
    READY = "Ready"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    EXPIRED = "Expired"
    ERROR = "Error"
    #: A status text this client does not know; the text is :attr:`SessionProperties.status_text`.
    UNKNOWN = "Unknown"

    @classmethod
    def parse(cls, value: Any, field: str = "sessionStatus") -> SessionStatus:
        """Parse a status case-insensitively; a text this client does not know is :attr:`UNKNOWN`.

        :param value: the status string from the service; a missing or non-text one raises
            :class:`ArrResponseError`.
        :param field: the JSON field name used in the error message.
        """
        return parse_status(_STATUS_BY_LOWER, value, field, "session", SessionStatus.UNKNOWN)

    @property
    def is_terminal(self) -> bool:
        """Whether the session has ended for good (Stopped, Expired or Error; never Unknown)."""
        return self in (SessionStatus.STOPPED, SessionStatus.EXPIRED, SessionStatus.ERROR)

    @property
    def is_failed(self) -> bool:
        """Whether the session ended without being stopped on purpose (Expired or Error)."""
        return self in (SessionStatus.EXPIRED, SessionStatus.ERROR)

    @property
    def is_active(self) -> bool:
        """Whether the session may run (and be billed): Starting, Ready, Stopping or Unknown."""
        return not self.is_terminal

    @property
    def may_become_ready(self) -> bool:
        """Whether a wait for Ready goes on: Starting, or a status this client does not know."""
        return self in (SessionStatus.STARTING, SessionStatus.UNKNOWN)


_STATUS_BY_LOWER = {status.value.lower(): status for status in SessionStatus}


@dataclass(frozen=True)
class SessionProperties:
    """What the service says about one session.

    :param session_id: the session's id.
    :param status: its status.
    :param hostname: the host a client device connects to (known once it is Ready).
    :param max_lease_time: the lease, as total time since the session started.
    :param elapsed_time: how long it has run.
    :param size: ``Standard`` or ``Premium`` as the service spells it, when it says.
    :param message: the service's explanation, mostly when the status is Error or Expired.
    :param arr_inspector_port: the port of the session's ARR Inspector (a web page on ``hostname``), once
        Ready; ``None`` when the service did not send it (``2021-01-01`` sends it; v1 list entries carried
        it from Dec 2020; the v1 ``properties`` answer of the 2020 contract does not).
    :param raw_status: the status text as the service wrote it, when this client does not know it
        (``status`` is then :attr:`SessionStatus.UNKNOWN`); ``None`` otherwise.
    """

    session_id: str
    status: SessionStatus
    hostname: str | None
    max_lease_time: timedelta
    elapsed_time: timedelta
    size: str | None = None
    message: str | None = None
    arr_inspector_port: int | None = None
    raw_status: str | None = None

    @property
    def status_text(self) -> str:
        """The status as the service wrote it when this client does not know it, else its name."""
        return self.raw_status if self.raw_status is not None else self.status.value

    @classmethod
    def from_v1(cls, data: Any) -> SessionProperties:
        """
        Build from the v1 ``properties`` JSON (``sessionId``, ``sessionStatus``, ...).

        :param data: the decoded JSON object.
        """
        if not isinstance(data, Mapping):
            raise ArrResponseError("properties", f"should be a JSON object, got {type(data).__name__}")
        session_id = _required_str(data, "sessionId")
        status, raw_status = _status(data, "sessionStatus")
        return cls(
            session_id=session_id,
            status=status,
            hostname=_optional_str(data, "sessionHostname"),
            max_lease_time=_timespan_field(data, "sessionMaxLeaseTime"),
            elapsed_time=_timespan_field(data, "sessionElapsedTime"),
            size=_optional_str(data, "sessionSize"),
            message=_optional_str(data, "message"),
            arr_inspector_port=_port_field(data, "arrInspectorPort"),
            raw_status=raw_status,
        )

    @classmethod
    def from_2021(cls, data: Any) -> SessionProperties:
        """
        Build from a ``2021-01-01`` session object (``id``, ``status``, ``maxLeaseTimeMinutes``...).

        The real service leaves fields out while a session is Starting, or sends them as ``0`` or
        ``null``: those become ``None`` or zero durations.

        :param data: the decoded JSON object.
        """
        if not isinstance(data, Mapping):
            raise ArrResponseError("session", f"should be a JSON object, got {type(data).__name__}")
        error = data.get("error")
        if error is not None and not isinstance(error, Mapping):
            raise ArrResponseError("error", f"should be an object or null, got {type(error).__name__}")
        message = None
        if error:
            code, text = error.get("code"), error.get("message")
            message = f"{code}: {text}" if code and text else str(text or code or "") or None
        status, raw_status = _status(data, "status")
        return cls(
            session_id=_required_str(data, "id"),
            status=status,
            hostname=_optional_str(data, "hostname"),
            max_lease_time=_minutes_field(data, "maxLeaseTimeMinutes"),
            elapsed_time=_minutes_field(data, "elapsedTimeMinutes"),
            size=_optional_str(data, "size"),
            message=message,
            arr_inspector_port=_port_field(data, "arrInspectorPort"),
            raw_status=raw_status,
        )

    @classmethod
    def from_api(cls, data: Any, api_version: str) -> SessionProperties:
        """
        Build from the JSON of either dialect.

        :param data: the decoded JSON object.
        :param api_version: ``v1`` or ``2021-01-01``.
        """
        return cls.from_2021(data) if api_version == API_2021 else cls.from_v1(data)

    def describe(self) -> str:
        """A wait's progress line: ``"Session <id> is <status>[ at <host>] (elapsed <t> of lease <t>)"``."""
        where = f" at {self.hostname}" if self.status == SessionStatus.READY and self.hostname else ""
        if self.status == SessionStatus.UNKNOWN:
            where = " (a status this client does not know)"
        return (
            f"Session {self.session_id} is {self.status_text}{where} (elapsed "
            f"{format_timespan(self.elapsed_time)} of lease {format_timespan(self.max_lease_time)})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values, for XCom and trigger events (durations as TimeSpan strings)."""
        values = asdict(self)
        values["status"] = self.status.value
        if self.raw_status is None:
            del values["raw_status"]
        values["max_lease_time"] = format_timespan(self.max_lease_time)
        values["elapsed_time"] = format_timespan(self.elapsed_time)
        return values

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SessionProperties:
        """Rebuild from :meth:`to_dict` output.

        :param data: a mapping made by :meth:`to_dict`.
        """
        return cls(
            session_id=_required_str(data, "session_id"),
            status=SessionStatus.parse(data.get("status"), "status"),
            hostname=_optional_str(data, "hostname"),
            max_lease_time=_timespan_field(data, "max_lease_time"),
            elapsed_time=_timespan_field(data, "elapsed_time"),
            size=_optional_str(data, "size"),
            message=_optional_str(data, "message"),
            arr_inspector_port=_port_field(data, "arr_inspector_port"),
            raw_status=_optional_str(data, "raw_status"),
        )

    @property
    def arr_inspector_url(self) -> str | None:
        """``https://<hostname>:<arrInspectorPort>``: the session's ARR Inspector; ``None`` until known."""
        if not self.hostname or not self.arr_inspector_port:
            return None
        return f"https://{self.hostname}:{self.arr_inspector_port}"


@dataclass(frozen=True)
class SessionStopOutcome:
    """What stopping a session found and did.

    :param outcome: ``"Stopped"`` after a stop call, else the status the session already had
        (``Stopping``, ``Stopped``, ``Expired``, ``Error``) or ``"NotFound"``.
    :param previous_status: its status just before the stop call; ``None`` if it could not be read or
        no stop call was made.
    :param stopped_at: when the service answered the stop call (UTC); ``None`` if none was made.
    """

    outcome: str
    previous_status: SessionStatus | None = None
    stopped_at: datetime | None = None


@dataclass(frozen=True)
class BilledTime:
    """How long a session was billed: from Ready until the service answered its stop call.

    ``ready_at`` is when a task of the pipeline first saw the session Ready, so it is late by at most
    one poll interval and the figure errs on the short side by as much.

    :param session_id: the session's id.
    :param ready_at: when it was first seen Ready (UTC).
    :param stopped_at: when the stop call was answered (UTC).
    :param size: the VM size (``"standard"``, ``"premium"``) when the ownership record knows it.
    """

    session_id: str
    ready_at: datetime
    stopped_at: datetime
    size: str | None = None

    @property
    def seconds(self) -> float:
        """Billed seconds (never negative)."""
        return max(0.0, (self.stopped_at - self.ready_at).total_seconds())

    def describe(self) -> str:
        """``"Session <id> billed 00:41:12, Ready 12:03:10 → stopped 12:44:22 UTC"``."""
        return (
            f"Session {self.session_id} billed {format_timespan(timedelta(seconds=round(self.seconds)))}, "
            f"Ready {self.ready_at:%H:%M:%S} → stopped {self.stopped_at:%H:%M:%S} UTC"
        )

    def to_dict(self) -> dict[str, Any]:
        """Values for XCom: ``session_id``, ``billed_seconds``, ``ready_at``, ``stopped_at`` and ``size``.

        ``size`` only when the record knew it.
        """
        values: dict[str, Any] = {
            "session_id": self.session_id,
            "billed_seconds": round(self.seconds, 1),
            "ready_at": self.ready_at.isoformat(timespec="seconds"),
            "stopped_at": self.stopped_at.isoformat(timespec="seconds"),
        }
        if self.size is not None:
            values["size"] = self.size
        return values


def _status(data: Mapping[str, Any], key: str) -> tuple[SessionStatus, str | None]:
    """The status, and its text when this client does not know it."""
    status = SessionStatus.parse(data.get(key), key)
    return status, (str(data.get(key)) if status == SessionStatus.UNKNOWN else None)


def unknown_status_note(noun: str, item_id: str, text: str, ms_cv: str | None) -> str:
    """What a wait logs when its own session or conversion reports a status this client does not know.

    :param noun: ``Session`` or ``Conversion``.
    :param item_id: its id.
    :param text: the status text as the service wrote it.
    :param ms_cv: the ``MS-CV`` of the answer that said so.
    """
    return (
        f"{noun} {item_id} reports the status {text!r}, which this client does not know "
        f"(MS-CV of the answer: {ms_cv or 'none'}); it is not taken as an end: the wait goes on until "
        "its deadline, or until the service reports a final status"
    )


def _port_field(data: Mapping[str, Any], key: str) -> int | None:
    """A TCP port, or ``None`` when absent or ``0`` (the service's "not yet" while Starting)."""
    value = data.get(key)
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ArrResponseError(key, f"should be a TCP port number, got {value!r}")
    return value


def _required_str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    text = answer_text(value)
    if not text:
        raise ArrResponseError(
            key, "is missing" if value is None else f"should be a non-empty string, got {value!r}"
        )
    return text


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    text = answer_text(value)
    if text is None:
        raise ArrResponseError(key, f"should be a string, got {type(value).__name__}")
    return text


def _minutes_field(data: Mapping[str, Any], key: str) -> timedelta:
    value = data.get(key)
    if value is None:
        return timedelta(0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ArrResponseError(key, f"should be a number of minutes, got {value!r}")
    return timedelta(minutes=value)


def _timespan_field(data: Mapping[str, Any], key: str) -> timedelta:
    value = data.get(key)
    if value is None:
        return timedelta(0)
    try:
        return parse_timespan(value, key)
    except ArrInputError as error:
        raise ArrResponseError(key, error.problem) from None


def new_matching_sessions(
    before: Collection[str], after: Iterable[SessionProperties], lease: timedelta, size: str
) -> list[SessionProperties]:
    """
    The v1 rule for "which session did my create start" when its answer was lost.

    v1 sessions carry no client-chosen id, so the session a create started is one that appeared since
    the account was listed just before it (``before``), is still active, and has the lease and size
    that were asked for. Zero means the service most likely did not act; more than one means another
    client created sessions meanwhile, and which one is ours cannot be told.

    :param before: the ids of the account's sessions listed just before the create was sent.
    :param after: the account's sessions listed afterwards.
    :param lease: the lease the create asked for.
    :param size: the size the create asked for (``standard`` or ``premium``).
    """
    return [
        session
        for session in after
        if session.session_id not in before
        and session.status.is_active
        and session.max_lease_time == lease
        and (session.size is None or session.size.lower() == size.lower())
    ]


def never_ready_message(properties: SessionProperties) -> str:
    """Explain why a session that is not Starting will never become Ready (with the service's message).

    :param properties: the session's latest properties.
    """
    reason = f": {properties.message}" if properties.message else " (the service gave no message)"
    return f"Session {properties.session_id} is {properties.status_text} and will not become Ready{reason}"
