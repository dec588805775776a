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

import random
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
#: What a scripted fault does with a call (see :meth:`EmulatorState.add_fault`).
FAULT_ACTIONS = ("answer", "drop_before", "drop_after", "truncate", "garble")
#: The request faults chaos mode picks from (see :meth:`EmulatorState.enable_chaos`).
CHAOS_REQUEST_KINDS = ("429", "503", "500", "drop_before", "drop_after", "delay")
#: The session faults chaos mode picks from.
CHAOS_SESSION_KINDS = ("fail_start", "slow_start")
#: What a session that chaos makes fail reports.
CHAOS_START_FAILURE = (
    "The session could not be started: the rendering server failed its health check (chaos)."
)
DEFAULT_PAGE_SIZE = 50
DEFAULT_START_FAILURE = (
    "The session could not be started: no rendering server of the requested size is available in the region."
)
_SIZES = {"standard": "Standard", "premium": "Premium"}

__all__ = [
    "CHAOS_REQUEST_KINDS",
    "CHAOS_SESSION_KINDS",
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_ACCOUNT_KEY",
    "DEFAULT_PAGE_SIZE",
    "FAULT_ACTIONS",
    "MAX_LEASE_TIME",
    "OPERATIONS",
    "AuthenticationError",
    "ChaosSettings",
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
class Fault:
    """What to do instead of (or besides) answering the next ``remaining`` calls of one operation.

    ``action`` decides, with ``status``:

    - ``answer``: with a ``status``, send that canned answer (``body``, ``headers``) after ``delay``
      seconds, without processing the call; without one, process the call at once and send its real
      answer ``delay`` seconds late (provokes client timeouts after the service acted).
    - ``drop_before``: after ``delay``, reset the TCP connection without processing the call.
    - ``drop_after``: process the call, wait ``delay``, then reset the connection without answering.
    - ``truncate``: send the headers with a ``Content-Length`` longer than the bytes that follow (half
      the body), then close the connection. With a ``status`` the canned answer is cut and the call
      is not processed; without one the call is processed and its real answer is cut.
    - ``garble``: process the call, then send its real status and headers with ``body`` (by default
      invalid JSON) in place of its real body.

    A ``body`` of ``None`` means the dialect's usual error body for the status (chaos uses it).

    :param operation: the operation it applies to: ``token``, ``create``, ``update``, ``list``,
        ``properties`` or ``stop``.
    :param status: the HTTP status of a canned answer, or ``None`` to process the call.
    :param body: the canned (or garbled) body.
    :param headers: headers of the canned answer.
    :param remaining: how many more calls it applies to.
    :param delay: seconds to wait before acting.
    :param action: ``answer``, ``drop_before``, ``drop_after``, ``truncate`` or ``garble``.
    """

    operation: str
    status: int | None
    body: str | bytes | Mapping[str, Any] | list[Any] | None
    headers: dict[str, str]
    remaining: int
    delay: float
    action: str = "answer"

    @property
    def kind(self) -> str:
        """The name :attr:`EmulatorState.faults_injected` counts it under, e.g. ``503`` or ``drop_after``."""
        if self.action != "answer":
            return self.action
        return str(self.status) if self.status is not None else "delay"

    @property
    def processes_call(self) -> bool:
        """Whether the service acts on the call despite the fault (its client cannot tell)."""
        if self.action in ("drop_after", "garble"):
            return True
        return self.action in ("answer", "truncate") and self.status is None


@dataclass(frozen=True)
class ChaosSettings:
    """How chaos mode picks faults; see :meth:`EmulatorState.enable_chaos`.

    :param rate: the probability that one call gets a request fault.
    :param operations: the operations whose calls may get one.
    :param kinds: the request faults to pick from (:data:`CHAOS_REQUEST_KINDS`).
    :param session_rate: the probability that a new session gets a session fault.
    :param session_kinds: the session faults to pick from (:data:`CHAOS_SESSION_KINDS`).
    :param max_delay: the longest ``delay`` fault, in seconds.
    :param slow_start: the extra start-up seconds of a slow session (it gets 50 % to 100 % of it).
    """

    rate: float
    operations: frozenset[str]
    kinds: tuple[str, ...]
    session_rate: float
    session_kinds: tuple[str, ...]
    max_delay: float
    slow_start: float


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
        self._pending_start_delays: deque[float] = deque()
        self._faults: list[Fault] = []
        self._counts: Counter[str] = Counter()
        self._faults_injected: Counter[str] = Counter()
        self._issued_tokens: list[str] = []
        self._chaos: ChaosSettings | None = None
        self._random = random.Random()
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
            token = self._tokens.issue(normalize_id(account_id))
            self._issued_tokens.append(token)
            return token

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
        failures, delays = self._pending_start_failures, self._pending_start_delays
        start_failure = failures.popleft() if failures else None
        if start_failure is not None:
            self._faults_injected["fail_start"] += 1
        start_delay = self.start_delay
        if delays:
            start_delay = delays.popleft()
            self._faults_injected["slow_start"] += 1
        chaos = self._chaos
        if chaos is not None and start_failure is None and self._random.random() < chaos.session_rate:
            kind = self._random.choice(chaos.session_kinds)
            self._faults_injected[kind] += 1
            if kind == "fail_start":
                start_failure = CHAOS_START_FAILURE
            else:
                start_delay += self._random.uniform(chaos.slow_start / 2, chaos.slow_start)
        session = _Session(
            session_id=session_id,
            account_id=normalize_id(account_id),
            size=size,
            max_lease_time=max_lease_time,
            models=models,
            created_at=self.clock(),
            start_delay=start_delay,
            hostname=hostname,
            creation_time=self.wall_clock(),
            lease_from_ready=lease_from_ready,
            start_failure=start_failure,
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

    def slow_next_start(self, seconds: float, count: int = 1) -> None:
        """Make the next ``count`` new sessions stay ``Starting`` for ``seconds`` instead of ``start_delay``.

        :param seconds: the start-up delay of each of those sessions.
        :param count: how many sessions it applies to.
        """
        if seconds < 0 or count < 1:
            raise ValueError("seconds must not be negative and count must be at least 1")
        with self._lock:
            self._pending_start_delays.extend([float(seconds)] * count)

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
            self._faults_injected["expire" if status is SessionStatus.EXPIRED else "external_stop"] += 1

    def add_fault(
        self,
        operation: str,
        status: int | None = None,
        body: str | bytes | Mapping[str, Any] | list[Any] | None = "",
        headers: Mapping[str, str] | None = None,
        count: int = 1,
        delay: float = 0.0,
        action: str = "answer",
    ) -> None:
        """Script a fault for the next ``count`` calls of an operation (see :class:`Fault`).

        ``add_fault("list", 429, headers={"Retry-After": "1"})`` throttles the next list call;
        ``add_fault("create", action="drop_after")`` starts the session but resets the connection
        instead of answering; ``add_fault("properties", delay=2)`` answers late.

        :param operation: one of ``token``, ``create``, ``update``, ``list``, ``properties``, ``stop``.
        :param status: the HTTP status of a canned answer (``answer``, ``truncate``); ``None`` to
            process the call (a late answer, a truncated or garbled real answer). Must be ``None`` for
            ``drop_before``, ``drop_after`` and ``garble``.
        :param body: the canned (or, for ``garble``, the replacement) body; a dict or list is sent as
            JSON, ``None`` is the dialect's usual error body for the status.
        :param headers: extra headers of a canned answer, e.g. ``{"Retry-After": "1"}``.
        :param count: how many calls the fault applies to.
        :param delay: seconds to wait before answering (or dropping).
        :param action: ``answer``, ``drop_before``, ``drop_after``, ``truncate`` or ``garble``.
        """
        if operation not in OPERATIONS:
            raise ValueError(f"operation must be one of {sorted(OPERATIONS)}, got {operation!r}")
        if action not in FAULT_ACTIONS:
            raise ValueError(f"action must be one of {list(FAULT_ACTIONS)}, got {action!r}")
        if status is not None and not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code or None, got {status!r}")
        if status is not None and action in ("drop_before", "drop_after", "garble"):
            raise ValueError(f"a {action} fault sends no status of its own; leave status unset")
        if count < 1 or delay < 0:
            raise ValueError("count must be at least 1 and delay must not be negative")
        if action == "garble" and not body:
            body = '{"garbled'
        with self._lock:
            self._faults.append(Fault(operation, status, body, dict(headers or {}), count, delay, action))

    def clear_faults(self) -> None:
        """Drop every scripted fault not yet used (chaos mode stays as it is)."""
        with self._lock:
            self._faults.clear()

    def enable_chaos(
        self,
        rate: float = 0.1,
        seed: int | None = None,
        operations: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        session_rate: float | None = None,
        session_kinds: Iterable[str] | None = None,
        max_delay: float = 0.5,
        slow_start: float = 1.0,
    ) -> None:
        """Inject random faults from now on, reproducibly for a given seed.

        Each call of the chosen operations gets, with probability ``rate``, one request fault picked
        evenly from ``kinds``: ``429`` (with ``Retry-After`` 0 or 1), ``503`` and ``500`` (canned,
        not processed), ``drop_before``, ``drop_after`` (processed, mutating calls too) or ``delay``
        (processed, answered up to ``max_delay`` seconds late). Each new session gets, with
        probability ``session_rate``, one session fault from ``session_kinds``: ``fail_start`` (it
        ends in ``Error``) or ``slow_start`` (it starts ``slow_start`` x 0.5-1 seconds later). Scripted
        faults (:meth:`add_fault`, :meth:`fail_next_start`, ...) still come first. Every fault is
        counted in :attr:`faults_injected`.

        :param rate: probability, 0 to 1, that a call gets a fault.
        :param seed: seeds the random choices; ``None`` for an unpredictable run.
        :param operations: the operations to disturb; all by default.
        :param kinds: the request faults to pick from; :data:`CHAOS_REQUEST_KINDS` by default.
        :param session_rate: probability that a new session gets a session fault; ``rate`` by default.
        :param session_kinds: the session faults to pick from; :data:`CHAOS_SESSION_KINDS` by default.
        :param max_delay: the longest ``delay`` fault, in seconds.
        :param slow_start: the most extra start-up seconds of a slow session.
        """
        operations = frozenset(OPERATIONS if operations is None else operations)
        kinds = tuple(CHAOS_REQUEST_KINDS if kinds is None else kinds)
        session_kinds = tuple(CHAOS_SESSION_KINDS if session_kinds is None else session_kinds)
        session_rate = rate if session_rate is None else session_rate
        if not (0 <= rate <= 1 and 0 <= session_rate <= 1):
            raise ValueError("rate and session_rate must be between 0 and 1")
        if not operations <= OPERATIONS:
            raise ValueError(f"operations must be among {sorted(OPERATIONS)}, got {sorted(operations)}")
        if not kinds or not set(kinds) <= set(CHAOS_REQUEST_KINDS):
            raise ValueError(f"kinds must be a non-empty subset of {list(CHAOS_REQUEST_KINDS)}")
        if not session_kinds or not set(session_kinds) <= set(CHAOS_SESSION_KINDS):
            raise ValueError(f"session_kinds must be a non-empty subset of {list(CHAOS_SESSION_KINDS)}")
        if max_delay < 0 or slow_start < 0:
            raise ValueError("max_delay and slow_start must not be negative")
        with self._lock:
            self._random = random.Random(seed)
            self._chaos = ChaosSettings(
                rate, operations, kinds, session_rate, session_kinds, float(max_delay), float(slow_start)
            )

    def disable_chaos(self) -> None:
        """Stop injecting random faults (scripted ones are kept)."""
        with self._lock:
            self._chaos = None

    @property
    def chaos(self) -> ChaosSettings | None:
        """The chaos settings in force, or ``None``."""
        with self._lock:
            return self._chaos

    def begin_request(self, operation: str) -> Fault | None:
        """Count a call of an operation and return the fault to apply to it, if any.

        A scripted fault comes first; otherwise chaos mode, if enabled, may draw one.

        :param operation: the operation's name (see :meth:`add_fault`).
        """
        with self._lock:
            self._counts[operation] += 1
            fault = self._scripted_fault(operation) or self._chaos_fault(operation)
            if fault is not None:
                self._faults_injected[fault.kind] += 1
            return fault

    def _scripted_fault(self, operation: str) -> Fault | None:
        for fault in self._faults:
            if fault.operation == operation:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _chaos_fault(self, operation: str) -> Fault | None:
        chaos, rng = self._chaos, self._random
        if chaos is None or operation not in chaos.operations or rng.random() >= chaos.rate:
            return None
        kind = rng.choice(chaos.kinds)
        if kind == "429":
            return Fault(operation, 429, None, {"Retry-After": str(rng.randint(0, 1))}, 1, 0.0)
        if kind in ("503", "500"):
            return Fault(operation, int(kind), None, {}, 1, 0.0)
        if kind == "delay":
            return Fault(operation, None, None, {}, 1, rng.uniform(0, chaos.max_delay))
        return Fault(operation, None, None, {}, 1, 0.0, kind)

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

    @property
    def faults_injected(self) -> Counter[str]:
        """A copy of the number of faults injected so far, by kind.

        Request faults count under :attr:`Fault.kind` (``429``, ``503``, ``drop_before``,
        ``drop_after``, ``truncate``, ``garble``, ``delay``, ...), session faults as ``fail_start``,
        ``slow_start``, ``expire`` and ``external_stop``; scripted and chaos faults alike.
        """
        with self._lock:
            return Counter(self._faults_injected)

    def issued_tokens(self) -> list[str]:
        """Every access token the STS issued since the start (or the last :meth:`reset`), oldest first.

        For tests that scan logs and results for leaked secrets; never served over HTTP.
        """
        with self._lock:
            return list(self._issued_tokens)

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
        """Forget sessions, faults (chaos too), pending start faults, counts and issued tokens.

        Every token issued so far is revoked; accounts are kept.
        """
        with self._lock:
            self._sessions.clear()
            self._faults.clear()
            self._chaos = None
            self._pending_start_failures.clear()
            self._pending_start_delays.clear()
            self._counts.clear()
            self._faults_injected.clear()
            self._issued_tokens.clear()
            self._tokens.rotate_secret()
