"""The emulated service's state: accounts, tokens, sessions and their life cycle, faults, counters.

Pure Python and thread-safe (the HTTP server runs in another thread than the test that inspects it).
Nothing here knows a wire format: the v1 and the 2021-01-01 routes translate requests into these calls
and the exceptions below into status codes. The one semantic difference of the dialects is kept per
session: a v1 lease counts the total time since creation, a 2021-01-01 lease the time after ``Ready``
(``lease_from_ready``). Session transitions are computed lazily from timestamps of the injectable
``clock`` on every read, so no background thread is needed and a test can move time forward instead
of sleeping.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from airflow_provider_arr.emulator.timespan import format_timespan
from airflow_provider_arr.emulator.tokens import InvalidTokenError, TokenIssuer

DEFAULT_ACCOUNT_ID = "3f0a9c52-7d4e-4b8a-9e61-0c5d2b7a4e18"
DEFAULT_ACCOUNT_KEY = "arr-emulator-demo-key"
MAX_LEASE_TIME = timedelta(hours=24)
OPERATIONS = frozenset({"token", "create", "update", "list", "properties", "stop"})
DEFAULT_PAGE_SIZE = 50
DEFAULT_START_FAILURE = (
    "The session could not be started: no rendering server of the requested size is available in the region."
)
_SIZES = {"standard": "Standard", "premium": "Premium"}

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_ACCOUNT_KEY",
    "DEFAULT_PAGE_SIZE",
    "MAX_LEASE_TIME",
    "OPERATIONS",
    "AuthenticationError",
    "EmulatorError",
    "EmulatorState",
    "Fault",
    "InvalidLeaseError",
    "InvalidSizeError",
    "InvalidTokenError",
    "LeaseNotExtendedError",
    "SessionConflictError",
    "SessionEndedError",
    "SessionNotFoundError",
    "SessionRecord",
    "SessionStatus",
    "normalize_id",
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


class EmulatorError(Exception):
    """Base of the errors a dialect turns into a 4xx answer; ``str(error)`` is the message."""


class AuthenticationError(EmulatorError):
    """The STS was asked for a token of an unknown account or with a wrong key."""


class SessionNotFoundError(EmulatorError):
    """No session with that id exists in that account."""


class SessionConflictError(EmulatorError):
    """A session with the requested id already exists, with other settings (or in another account)."""


class InvalidLeaseError(EmulatorError):
    """A lease is out of range: over 24 hours, negative, or zero where that is not allowed (no field name)."""


class InvalidSizeError(EmulatorError):
    """A size is neither standard nor premium (the message omits the field name)."""


class LeaseNotExtendedError(EmulatorError):
    """An update asked for a lease that is not larger than the current one.

    :param message: the explanation (without the field name).
    :param current: the session's lease before the call.
    :param requested: the lease the call asked for.
    """

    def __init__(self, message: str, current: timedelta, requested: timedelta) -> None:
        super().__init__(message)
        self.current = current
        self.requested = requested


class SessionEndedError(EmulatorError):
    """The session is already in a final state."""


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
class Fault:
    """An answer to give instead of processing the next ``remaining`` calls of one operation.

    ``status=None`` means: process the call normally, but send its answer ``delay`` seconds late.
    """

    operation: str
    status: int | None
    body: str | bytes | Mapping[str, Any] | list[Any]
    headers: dict[str, str]
    remaining: int
    delay: float


@dataclass
class _Session:
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
                self.end(SessionStatus.EXPIRED, ends_at, _lease_ran_out(self.max_lease_time))
                return
            if now < ready_time:
                return
            if self.start_failure is not None:
                self.end(SessionStatus.ERROR, ready_time, self.start_failure)
                return
            self.status, self.ready_at = SessionStatus.READY, ready_time
        ends_at = self.lease_ends_at
        if self.status is SessionStatus.READY and ends_at is not None and now >= ends_at:
            self.end(SessionStatus.EXPIRED, ends_at, _lease_ran_out(self.max_lease_time))

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


def _lease_ran_out(lease: timedelta) -> str:
    return f"The session expired: its maximum lease time of {format_timespan(lease)} ran out."


def _check_lease(lease: timedelta, allow_zero: bool = False) -> None:
    if lease < timedelta(0) or (lease == timedelta(0) and not allow_zero):
        raise InvalidLeaseError("must not be negative" if allow_zero else "must be longer than zero")
    if lease > MAX_LEASE_TIME:
        raise InvalidLeaseError(f"must be at most 24 hours, got {format_timespan(lease)}")


def _normalize_size(size: object) -> str:
    if not isinstance(size, str) or size.strip().lower() not in _SIZES:
        raise InvalidSizeError(f"must be 'standard' or 'premium', got {size!r}")
    return _SIZES[size.strip().lower()]


class EmulatorState:
    """Everything the emulated service remembers, behind one lock.

    :param start_delay: seconds a new session stays ``Starting`` before it is ``Ready``.
    :param token_lifetime: seconds an STS token is valid.
    :param region: the region written into session hostnames.
    :param clock: monotonic seconds driving the session life cycle; inject a fake one in tests.
    :param wall_clock: Unix time for the JWT ``iat``/``nbf``/``exp`` claims.
    :param account_id: id of the account that exists from the start.
    :param account_key: key of that account.
    :param page_size: the most sessions one page of the 2021-01-01 list call holds.

    ``start_delay`` (read when a session is created), ``clock``, ``wall_clock`` and ``page_size`` are
    plain attributes that a test may change while the emulator runs.
    """

    def __init__(
        self,
        *,
        start_delay: float = 5.0,
        token_lifetime: float = 86_400,
        region: str = "westus2",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        account_id: str = DEFAULT_ACCOUNT_ID,
        account_key: str = DEFAULT_ACCOUNT_KEY,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        if start_delay < 0:
            raise ValueError("start_delay must not be negative")
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.start_delay = start_delay
        self.region = region
        self.clock = clock
        self.wall_clock = wall_clock
        self.page_size = page_size
        self._lock = threading.RLock()
        self._tokens = TokenIssuer(token_lifetime, wall_clock)
        self._accounts: dict[str, str] = {}
        self._sessions: dict[str, _Session] = {}
        self._pending_start_failures: deque[str] = deque()
        self._faults: list[Fault] = []
        self._counts: Counter[str] = Counter()
        self.account_id, self.account_key = self.add_account(account_id, account_key)

    # ----------------------------------------------------------------------------------- accounts

    def add_account(self, account_id: str | None = None, account_key: str | None = None) -> tuple[str, str]:
        """Create (or re-key) an account and return its ``(id, key)``.

        :param account_id: a GUID; a random one if omitted.
        :param account_key: the key; a random one if omitted.
        """
        account_id = normalize_id(account_id) if account_id else str(uuid.uuid4())
        account_key = account_key or secrets.token_urlsafe(32)
        with self._lock:
            self._accounts[account_id] = account_key
        return account_id, account_key

    def issue_token(self, account_id: str, account_key: str) -> str:
        """Return a new access token if the key belongs to the account (the STS call).

        :param account_id: the account asked for.
        :param account_key: the key the client presented.
        :raises AuthenticationError: if the account is unknown or the key is wrong.
        """
        with self._lock:
            expected = self._accounts.get(normalize_id(account_id))
            if expected is None or not secrets.compare_digest(expected.encode(), account_key.encode()):
                raise AuthenticationError("Unknown account or wrong account key.")
            return self._tokens.issue(normalize_id(account_id))

    def verify_token(self, token: str) -> str:
        """Return the account a token is valid for.

        :param token: the JWT a session call carried.
        :raises InvalidTokenError: if it is malformed, forged, revoked or expired.
        """
        with self._lock:
            return self._tokens.verify(token)

    def revoke_tokens(self) -> None:
        """Make every token issued so far invalid (the next session call with one gets 401)."""
        with self._lock:
            self._tokens.rotate_secret()

    @property
    def token_lifetime(self) -> float:
        """Seconds an STS token is valid."""
        return self._tokens.lifetime

    # ----------------------------------------------------------------------------------- sessions

    def create_session(
        self, account_id: str, max_lease_time: timedelta, size: str = "standard", models: Iterable[str] = ()
    ) -> SessionRecord:
        """Start a new session; it is ``Starting`` for ``start_delay`` seconds.

        :param account_id: the owning account.
        :param max_lease_time: total lifetime, more than zero and at most 24 hours.
        :param size: ``standard`` or ``premium``, any case.
        :param models: asset URLs to preload (only remembered).
        :raises InvalidLeaseError: for a lease out of range.
        :raises InvalidSizeError: for an unknown size.
        """
        _check_lease(max_lease_time)
        normalized_size = _normalize_size(size)
        with self._lock:
            session_id = str(uuid.uuid4())
            while session_id in self._sessions:  # a 2021-01-01 client may have chosen it already
                session_id = str(uuid.uuid4())
            hostname = f"{uuid.uuid4()}.remoterenderingvm.{self.region}.mixedreality.azure.com"
            session = self._new_session(
                session_id, account_id, max_lease_time, normalized_size, hostname, models=tuple(models)
            )
            return session.snapshot(session.created_at)

    def create_session_with_id(
        self,
        account_id: str,
        session_id: str,
        max_lease_time: timedelta,
        size: str = "standard",
        *,
        hostname: str | None = None,
    ) -> tuple[SessionRecord, bool]:
        """Start a session under an id the client chose (2021-01-01); its lease counts from ``Ready``.

        Asking again for an existing id with the same lease and size is an idempotent retry: the
        existing session is returned, whatever its status.

        :param account_id: the owning account.
        :param session_id: the id, used exactly as given (case sensitive).
        :param max_lease_time: the time the session may run after ``Ready``, 0 to 24 hours.
        :param size: ``standard`` or ``premium``, any case.
        :param hostname: the VM host name to report once Ready; a v1-style one if omitted.
        :return: the session and whether it was created now (``False`` for a retry).
        :raises InvalidLeaseError: for a lease out of range.
        :raises InvalidSizeError: for an unknown size.
        :raises SessionConflictError: if the id is taken by a session with other settings.
        """
        _check_lease(max_lease_time, allow_zero=True)
        normalized_size = _normalize_size(size)
        with self._lock:
            now = self.clock()
            existing = self._sessions.get(session_id)
            if existing is not None:
                existing.advance(now)
                same = (existing.account_id, existing.max_lease_time, existing.size) == (
                    normalize_id(account_id),
                    max_lease_time,
                    normalized_size,
                )
                if not same:
                    raise SessionConflictError(f"A session with id {session_id!r} already exists.")
                return existing.snapshot(now), False
            hostname = hostname or f"{uuid.uuid4()}.remoterenderingvm.{self.region}.mixedreality.azure.com"
            session = self._new_session(
                session_id, account_id, max_lease_time, normalized_size, hostname, lease_from_ready=True
            )
            return session.snapshot(session.created_at), True

    def _new_session(
        self,
        session_id: str,
        account_id: str,
        max_lease_time: timedelta,
        size: str,
        hostname: str,
        *,
        models: tuple[str, ...] = (),
        lease_from_ready: bool = False,
    ) -> _Session:
        """Register a new ``Starting`` session; the caller holds the lock."""
        failures = self._pending_start_failures
        session = _Session(
            session_id=session_id,
            account_id=normalize_id(account_id),
            size=size,
            max_lease_time=max_lease_time,
            models=models,
            created_at=self.clock(),
            start_delay=self.start_delay,
            hostname=hostname,
            creation_time=self.wall_clock(),
            lease_from_ready=lease_from_ready,
            start_failure=failures.popleft() if failures else None,
        )
        self._sessions[session_id] = session
        return session

    def get_session(self, session_id: str, account_id: str | None = None) -> SessionRecord:
        """Return a session's current state, including final ones.

        :param session_id: the session's id.
        :param account_id: if given, the session must belong to this account.
        :raises SessionNotFoundError: if there is no such session (in that account).
        """
        with self._lock:
            now = self.clock()
            return self._find(session_id, account_id, now).snapshot(now)

    def list_sessions(self, account_id: str) -> list[SessionRecord]:
        """Return an account's active sessions (the list call), oldest first.

        :param account_id: the owning account.
        """
        account_id = normalize_id(account_id)
        return [record for record in self.active_sessions() if record.account_id == account_id]

    def list_sessions_page(
        self, account_id: str, limit: int, after: str | None = None
    ) -> tuple[list[SessionRecord], str | None]:
        """Return one page of an account's active sessions, in creation order.

        :param account_id: the owning account.
        :param limit: the most sessions to return.
        :param after: the id of the last session of the previous page; ``None`` for the first page.
        :return: the page, and the ``after`` value of the next page (``None`` if this is the last).
        :raises SessionNotFoundError: if ``after`` names no session (a stale or forged continuation).
        """
        account_id = normalize_id(account_id)
        with self._lock:
            records = self.sessions()
            start = 0
            if after is not None:
                ids = [record.session_id for record in records]
                if after not in ids:
                    raise SessionNotFoundError(f"No session with id {after!r} exists.")
                start = ids.index(after) + 1
        active = [r for r in records[start:] if r.is_active and r.account_id == account_id]
        page = active[:limit]
        return page, (page[-1].session_id if len(active) > limit else None)

    def update_session(
        self, session_id: str, max_lease_time: timedelta, account_id: str | None = None
    ) -> SessionRecord:
        """Set a new total lease; it must be larger than the current one and at most 24 hours.

        :param session_id: the session's id.
        :param max_lease_time: the new lease: total since creation, or since ``Ready`` for a session
            whose lease counts from there.
        :param account_id: if given, the session must belong to this account.
        :raises SessionNotFoundError: if there is no such session.
        :raises SessionEndedError: if the session is already final.
        :raises InvalidLeaseError: if the lease exceeds 24 hours.
        :raises LeaseNotExtendedError: if the lease is not larger than the current one.
        """
        with self._lock:
            now = self.clock()
            session = self._find(session_id, account_id, now)
            if session.status.is_final:
                raise SessionEndedError(f"Session {session.session_id} is {session.status.value}.")
            _check_lease(max_lease_time, allow_zero=session.lease_from_ready)
            if max_lease_time <= session.max_lease_time:
                raise LeaseNotExtendedError(
                    f"must be larger than the current lease of {format_timespan(session.max_lease_time)}, "
                    f"got {format_timespan(max_lease_time)}",
                    current=session.max_lease_time,
                    requested=max_lease_time,
                )
            session.max_lease_time = max_lease_time
            return session.snapshot(now)

    def stop_session(self, session_id: str, account_id: str | None = None) -> SessionRecord:
        """Stop a session; stopping a session that already ended changes nothing.

        :param session_id: the session's id.
        :param account_id: if given, the session must belong to this account.
        :raises SessionNotFoundError: if there is no such session.
        """
        with self._lock:
            now = self.clock()
            session = self._find(session_id, account_id, now)
            if not session.status.is_final:
                session.end(SessionStatus.STOPPED, now)
            return session.snapshot(now)

    def _find(self, session_id: str, account_id: str | None, now: float) -> _Session:
        # Session ids are matched exactly; a dialect canonicalizes GUIDs before calling.
        session = self._sessions.get(session_id)
        if session is None or (account_id is not None and session.account_id != normalize_id(account_id)):
            raise SessionNotFoundError(f"No session with id {session_id!r} exists.")
        session.advance(now)
        return session

    # ------------------------------------------------------------------------- test-only controls

    def fail_next_start(self, message: str = DEFAULT_START_FAILURE) -> None:
        """Make the next created session end in ``Error`` when its start delay is over.

        :param message: the ``message`` the failed session reports.
        """
        with self._lock:
            self._pending_start_failures.append(message)

    def fail_session_start(self, session_id: str, message: str = DEFAULT_START_FAILURE) -> None:
        """Make a ``Starting`` session end in ``Error`` when its start delay is over.

        :param session_id: the session's id.
        :param message: the ``message`` the failed session reports.
        :raises SessionEndedError: if the session is no longer starting.
        """
        with self._lock:
            session = self._find(session_id, None, self.clock())
            if session.status is not SessionStatus.STARTING:
                raise SessionEndedError(f"Session {session_id} is {session.status.value}, not Starting.")
            session.start_failure = message

    def expire_session(self, session_id: str, message: str | None = None) -> None:
        """End a session as ``Expired`` now, as if its lease had run out.

        :param session_id: the session's id.
        :param message: the reported reason; by default that the lease ran out.
        :raises SessionEndedError: if the session already ended.
        """
        self._end_now(session_id, SessionStatus.EXPIRED, message)

    def stop_session_externally(self, session_id: str) -> None:
        """End a session as ``Stopped`` now, as if someone else had stopped it.

        :param session_id: the session's id.
        :raises SessionEndedError: if the session already ended.
        """
        self._end_now(session_id, SessionStatus.STOPPED, None)

    def _end_now(self, session_id: str, status: SessionStatus, message: str | None) -> None:
        with self._lock:
            now = self.clock()
            session = self._find(session_id, None, now)
            if session.status.is_final:
                raise SessionEndedError(f"Session {session_id} is already {session.status.value}.")
            if status is SessionStatus.EXPIRED and message is None:
                message = _lease_ran_out(session.max_lease_time)
            session.end(status, now, message)

    def add_fault(
        self,
        operation: str,
        status: int | None,
        body: str | bytes | Mapping[str, Any] | list[Any] = "",
        headers: Mapping[str, str] | None = None,
        count: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Answer the next ``count`` calls of an operation with a canned response.

        :param operation: one of ``token``, ``create``, ``update``, ``list``, ``properties``, ``stop``.
        :param status: the HTTP status to answer instead of processing the call; or ``None`` to
            process it at once but send its answer only after ``delay`` (provokes client timeouts).
        :param body: the body; a dict or list is sent as JSON.
        :param headers: extra response headers, e.g. ``{"Retry-After": "1"}``.
        :param count: how many calls the fault applies to.
        :param delay: seconds to wait before answering.
        """
        if operation not in OPERATIONS:
            raise ValueError(f"operation must be one of {sorted(OPERATIONS)}, got {operation!r}")
        if status is not None and not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code or None, got {status!r}")
        if count < 1 or delay < 0:
            raise ValueError("count must be at least 1 and delay must not be negative")
        with self._lock:
            self._faults.append(Fault(operation, status, body, dict(headers or {}), count, delay))

    def clear_faults(self) -> None:
        """Drop every fault not yet used."""
        with self._lock:
            self._faults.clear()

    def begin_request(self, operation: str) -> Fault | None:
        """Count a call of an operation and return the fault to apply to it, if any.

        :param operation: the operation's name (see :meth:`add_fault`).
        """
        with self._lock:
            self._counts[operation] += 1
            for fault in self._faults:
                if fault.operation == operation:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
            return None

    # ------------------------------------------------------------------------------ introspection

    @property
    def request_counts(self) -> Counter[str]:
        """A copy of the number of calls received per operation (faulted calls included)."""
        with self._lock:
            return Counter(self._counts)

    def reset_counts(self) -> None:
        """Set every request count back to zero."""
        with self._lock:
            self._counts.clear()

    def sessions(self) -> list[SessionRecord]:
        """Return every session ever created, in creation order, with its current status."""
        with self._lock:
            now = self.clock()
            for session in self._sessions.values():
                session.advance(now)
            return [session.snapshot(now) for session in self._sessions.values()]

    def active_sessions(self) -> list[SessionRecord]:
        """Return the sessions of all accounts that have not ended yet."""
        return [record for record in self.sessions() if record.is_active]

    def reset(self) -> None:
        """Forget sessions, faults, pending failures and counts, and revoke all tokens; keep accounts."""
        with self._lock:
            self._sessions.clear()
            self._faults.clear()
            self._pending_start_failures.clear()
            self._counts.clear()
            self._tokens.rotate_secret()
