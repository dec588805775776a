"""The emulated service's state: accounts, tokens, sessions and their life cycle, faults, counters.

Pure Python and thread-safe (the server runs in another thread than the test that inspects it). The
routes of both dialects translate requests into these calls, and the exceptions of
:mod:`~airflow_provider_arr.emulator.errors` into status codes. Transitions are computed lazily from the
injectable ``clock`` on every read (:mod:`~airflow_provider_arr.emulator.records`): no background
thread, and a test can move time forward instead of sleeping. Accounts and tokens, fault injection,
counters, conversions and odd answers (foreign list items, looping next links) are written in modules
of their own (``accounts``, ``faults``, ``counters``, ``conversions``, ``oddities``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta

from airflow_provider_arr.emulator.accounts import AccountsAndTokens
from airflow_provider_arr.emulator.conversions import DEFAULT_CONVERSION_DELAY, ConversionStore
from airflow_provider_arr.emulator.errors import (
    AuthenticationError,
    EmulatorError,
    InvalidLeaseError,
    InvalidSizeError,
    InvalidTokenError,
    LeaseNotExtendedError,
    SessionConflictError,
    SessionEndedError,
    SessionNotFoundError,
)
from airflow_provider_arr.emulator.faults import (
    CHAOS_REQUEST_KINDS,
    CHAOS_SESSION_KINDS,
    CHAOS_START_FAILURE,
    DEFAULT_START_FAILURE,
    FAULT_ACTIONS,
    OPERATIONS,
    ChaosSettings,
    Fault,
    FaultInjection,
)
from airflow_provider_arr.emulator.oddities import AnswerOddities
from airflow_provider_arr.emulator.records import (
    MAX_LEASE_TIME,
    LiveSession,
    SessionRecord,
    SessionStatus,
    check_lease,
    lease_ran_out,
    normalize_id,
    normalize_size,
)
from airflow_provider_arr.emulator.timespan import format_timespan
from airflow_provider_arr.emulator.tokens import TokenIssuer

DEFAULT_ACCOUNT_ID = "3f0a9c52-7d4e-4b8a-9e61-0c5d2b7a4e18"
DEFAULT_ACCOUNT_KEY = "arr-emulator-demo-key"
DEFAULT_PAGE_SIZE = 50

__all__ = [
    "CHAOS_REQUEST_KINDS",
    "CHAOS_SESSION_KINDS",
    "CHAOS_START_FAILURE",
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_ACCOUNT_KEY",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_START_FAILURE",
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
    "TokenIssuer",
    "format_timespan",
    "normalize_id",
]


class EmulatorState(AccountsAndTokens, FaultInjection, ConversionStore, AnswerOddities):
    """Everything the emulated service remembers, behind one lock.

    :param start_delay: seconds a new session stays ``Starting`` before it is ``Ready``.
    :param conversion_delay: seconds a new conversion takes (``NotStarted`` for the first fifth).
    :param fail_conversions: ``{glob: message}``: conversions whose input path matches end ``Failed``
        (see :meth:`fail_conversions`; a message of ``None`` is the default one).
    :param token_lifetime: seconds an STS token is valid.
    :param region: the region written into session hostnames.
    :param clock: monotonic seconds driving the session life cycle; inject a fake one in tests.
    :param wall_clock: Unix time for the JWT ``iat``/``nbf``/``exp`` claims.
    :param account_id: id of the account that exists from the start.
    :param account_key: key of that account.
    :param page_size: the most sessions one page of the 2021-01-01 list call holds.
    :raises ValueError: for a negative delay, a page size under 1, or an empty glob or message.

    ``start_delay``, ``conversion_delay`` (read at each create), ``clock``, ``wall_clock`` and
    ``page_size`` are plain attributes that a test may change while the emulator runs.
    """

    def __init__(
        self,
        *,
        start_delay: float = 5.0,
        conversion_delay: float = DEFAULT_CONVERSION_DELAY,
        fail_conversions: Mapping[str, str | None] | None = None,
        token_lifetime: float = 86_400,
        region: str = "westus2",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        account_id: str = DEFAULT_ACCOUNT_ID,
        account_key: str = DEFAULT_ACCOUNT_KEY,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        if start_delay < 0 or page_size < 1:
            raise ValueError(f"start_delay must be >= 0 and page_size >= 1, got {start_delay}, {page_size}")
        self.start_delay = start_delay
        self.region = region
        self.clock = clock
        self.wall_clock = wall_clock
        self.page_size = page_size
        self._lock = threading.RLock()
        self._init_accounts(token_lifetime, wall_clock)
        self._sessions: dict[str, LiveSession] = {}
        self._init_counters()
        self._init_faults()
        self._init_conversions(conversion_delay, fail_conversions)
        self._init_oddities()
        self.account_id, self.account_key = self.add_account(account_id, account_key)

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
        check_lease(max_lease_time)
        normalized_size = normalize_size(size)
        with self._lock:
            session_id = str(uuid.uuid4())
            while session_id in self._sessions:  # a 2021-01-01 client may have chosen it already
                session_id = str(uuid.uuid4())
            session = self._new_session(
                session_id, account_id, max_lease_time, normalized_size, models=models
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
        check_lease(max_lease_time, allow_zero=True)
        normalized_size = normalize_size(size)
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
        hostname: str | None = None,
        *,
        models: Iterable[str] = (),
        lease_from_ready: bool = False,
    ) -> LiveSession:
        """Register a new ``Starting`` session, with a v1-style host name if none is given (lock held)."""
        hostname = hostname or f"{uuid.uuid4()}.remoterenderingvm.{self.region}.mixedreality.azure.com"
        start_delay, start_failure = self._start_faults(self.start_delay)
        session = LiveSession(
            session_id=session_id,
            account_id=normalize_id(account_id),
            size=size,
            max_lease_time=max_lease_time,
            models=tuple(models),
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
        """Return the active sessions of ``account_id`` (the v1 list call), oldest first."""
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
        with self._lock:  # only the page's sessions are snapshot: a page costs O(limit), not O(all)
            if after is not None and after not in self._sessions:
                raise SessionNotFoundError(f"No session with id {after!r} exists.")
            now, ids = self.clock(), list(self._sessions)
            page: list[SessionRecord] = []
            for session_id in ids[ids.index(after) + 1 if after is not None else 0 :]:
                session = self._sessions[session_id]
                session.advance(now)
                if session.account_id == account_id and not session.status.is_final:
                    if len(page) == limit:
                        return page, page[-1].session_id
                    page.append(session.snapshot(now))
        return page, None

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
            check_lease(max_lease_time, allow_zero=session.lease_from_ready)
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

    def _find(self, session_id: str, account_id: str | None, now: float) -> LiveSession:
        session = self._sessions.get(session_id)  # exactly: a dialect canonicalizes GUIDs before calling
        if session is None or (account_id is not None and session.account_id != normalize_id(account_id)):
            raise SessionNotFoundError(f"No session with id {session_id!r} exists.")
        session.advance(now)
        return session

    # ------------------------------------------------------------------------- test-only controls

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
                message = lease_ran_out(session.max_lease_time)
            session.end(status, now, message)
            self._faults_injected["expire" if status is SessionStatus.EXPIRED else "external_stop"] += 1

    # ------------------------------------------------------------------------------ introspection

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
        """Forget sessions, conversions, faults (chaos, oddities too), counts and tokens; keep accounts."""
        with self._lock:
            self._sessions.clear()
            self._clear_conversions()
            self._clear_faults()
            self._init_oddities()
            self._clear_counters()
            self._forget_tokens()
