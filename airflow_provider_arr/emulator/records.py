"""One session of the emulated service: its status, its life cycle and the snapshots the routes read.

A :class:`LiveSession` is the mutable session the state keeps under its lock; its transitions are
computed lazily from timestamps of the state's clock (:meth:`LiveSession.advance`), so no background
thread is needed. :class:`SessionRecord` is the immutable snapshot handed out. The one semantic
difference of the dialects is kept per session: a v1 lease counts the total time since creation, a
2021-01-01 lease the time after ``Ready`` (``lease_from_ready``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from airflow_provider_arr.emulator.errors import InvalidLeaseError, InvalidSizeError
from airflow_provider_arr.emulator.timespan import format_timespan

MAX_LEASE_TIME = timedelta(hours=24)
_SIZES = {"standard": "Standard", "premium": "Premium"}

__all__ = [
    "MAX_LEASE_TIME",
    "LiveSession",
    "SessionRecord",
    "SessionStatus",
    "check_lease",
    "lease_ran_out",
    "normalize_id",
    "normalize_size",
]


class SessionStatus(StrEnum):
    """Session states as the service spells them (v1 also names ``Stopping``, never entered here)."""

    STARTING = "Starting"
    READY = "Ready"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    EXPIRED = "Expired"
    ERROR = "Error"

    @property
    def is_final(self) -> bool:
        """Whether the session has ended for good."""
        return self in (SessionStatus.STOPPED, SessionStatus.EXPIRED, SessionStatus.ERROR)


def normalize_id(value: str) -> str:
    """Return a GUID in its canonical lower-case form, any other text unchanged.

    :param value: an account or session id as a client spelled it.
    """
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value


@dataclass(frozen=True)
class SessionRecord:
    """A snapshot of one session, taken under the state's lock.

    Times (``created_at``, ``ready_at``, ``ended_at``) are readings of the state's clock;
    ``creation_time`` is the Unix time of creation (the 2021-01-01 ``creationTime``). With
    ``lease_from_ready`` (sessions created through the 2021-01-01 dialect) ``max_lease_time`` counts
    from ``Ready`` and ``elapsed_time`` is the time spent since ``Ready``; otherwise (v1) both count
    from creation.

    :param session_id: the session's id.
    :param account_id: the account that owns it.
    :param status: its status, a :class:`SessionStatus` value such as ``"Ready"``.
    :param size: ``standard`` or ``premium``.
    :param max_lease_time: its lease.
    :param elapsed_time: how long it has run.
    :param hostname: the host clients connect to, once it is ``Ready``.
    :param message: the reason it ended in ``Error`` or ``Expired``, if it did.
    :param models: the asset-container URLs it preloads.
    :param created_at: the state's clock at creation.
    :param ready_at: the state's clock when it became ``Ready``, if it did.
    :param ended_at: the state's clock when it ended, if it has.
    :param creation_time: the Unix time of creation.
    :param lease_from_ready: whether lease and elapsed time count from ``Ready`` (2021-01-01).
    """

    session_id: str
    account_id: str
    status: str
    size: str
    max_lease_time: timedelta
    elapsed_time: timedelta
    hostname: str | None
    message: str | None
    models: tuple[str, ...]
    created_at: float
    ready_at: float | None
    ended_at: float | None
    creation_time: float = 0.0
    lease_from_ready: bool = False

    @property
    def is_active(self) -> bool:
        """Whether the session still counts as running (it appears in the list call)."""
        return not SessionStatus(self.status).is_final


@dataclass
class LiveSession:
    """A session as the state keeps it (under its lock); :meth:`snapshot` gives the record handed out."""

    session_id: str
    account_id: str
    size: str
    max_lease_time: timedelta
    models: tuple[str, ...]
    created_at: float
    start_delay: float
    hostname: str
    creation_time: float
    lease_from_ready: bool = False
    start_failure: str | None = None
    status: SessionStatus = SessionStatus.STARTING
    ready_at: float | None = None
    ended_at: float | None = None
    message: str | None = None

    @property
    def lease_ends_at(self) -> float | None:
        """When the lease runs out; unknown (``None``) while a lease counted from Ready has not begun."""
        if not self.lease_from_ready:
            return self.created_at + self.max_lease_time.total_seconds()
        if self.ready_at is None:
            return None
        return self.ready_at + self.max_lease_time.total_seconds()

    def advance(self, now: float) -> None:
        """Apply every transition that is due at ``now``, in time order."""
        if self.status is SessionStatus.STARTING:
            ready_time = self.created_at + self.start_delay
            ends_at = self.lease_ends_at
            if ends_at is not None and ends_at <= ready_time and now >= ends_at:
                self.end(SessionStatus.EXPIRED, ends_at, lease_ran_out(self.max_lease_time))
                return
            if now < ready_time:
                return
            if self.start_failure is not None:
                self.end(SessionStatus.ERROR, ready_time, self.start_failure)
                return
            self.status, self.ready_at = SessionStatus.READY, ready_time
        ends_at = self.lease_ends_at
        if self.status is SessionStatus.READY and ends_at is not None and now >= ends_at:
            self.end(SessionStatus.EXPIRED, ends_at, lease_ran_out(self.max_lease_time))

    def end(self, status: SessionStatus, at: float, message: str | None = None) -> None:
        self.status, self.ended_at, self.message = status, at, message

    def snapshot(self, now: float) -> SessionRecord:
        end = self.ended_at if self.ended_at is not None else now
        start = self.created_at
        if self.lease_from_ready:
            # Counted from Ready; a session that never got there has run for no billed time.
            start = self.ready_at if self.ready_at is not None else end
        return SessionRecord(
            session_id=self.session_id,
            account_id=self.account_id,
            status=self.status.value,
            size=self.size,
            max_lease_time=self.max_lease_time,
            elapsed_time=timedelta(seconds=max(0.0, end - start)),
            hostname=self.hostname if self.ready_at is not None else None,
            message=self.message,
            models=self.models,
            created_at=self.created_at,
            ready_at=self.ready_at,
            ended_at=self.ended_at,
            creation_time=self.creation_time,
            lease_from_ready=self.lease_from_ready,
        )


def lease_ran_out(lease: timedelta) -> str:
    """The ``message`` of a session whose lease ran out.

    :param lease: the session's lease.
    """
    return f"The session expired: its maximum lease time of {format_timespan(lease)} ran out."


def check_lease(lease: timedelta, allow_zero: bool = False) -> None:
    """Refuse a lease out of range: negative, zero unless allowed, or over 24 hours.

    :param lease: the lease asked for.
    :param allow_zero: whether a zero lease is valid (it is in 2021-01-01, counted from Ready).
    :raises InvalidLeaseError: if it is out of range.
    """
    if lease < timedelta(0) or (lease == timedelta(0) and not allow_zero):
        raise InvalidLeaseError("must not be negative" if allow_zero else "must be longer than zero")
    if lease > MAX_LEASE_TIME:
        raise InvalidLeaseError(f"must be at most 24 hours, got {format_timespan(lease)}")


def normalize_size(size: object) -> str:
    """Return a size as the service spells it, ``Standard`` or ``Premium``, whatever its case.

    :param size: the size a client sent.
    :raises InvalidSizeError: if it is neither.
    """
    if not isinstance(size, str) or size.strip().lower() not in _SIZES:
        raise InvalidSizeError(f"must be 'standard' or 'premium', got {size!r}")
    return _SIZES[size.strip().lower()]
