"""The session calls that take more than one request, written once for the sync and async drivers.

Each function is a generator of steps (see ``base.py``): a paged list, a v1 create that looks for
its session when the answer was lost, and an extend that checks whether a lost attempt already
extended.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_arr.exceptions import (
    RemoteRenderingDeadlineError,
    RemoteRenderingError,
    RemoteRenderingSessionMayExistError,
    RemoteRenderingSessionNeverReadyError,
    RemoteRenderingSessionNotFoundError,
    RemoteRenderingWaitTimeoutError,
)
from airflow_provider_arr.hooks.steps import Pause, Steps

__all__ = [
    "ADOPTION_LISTINGS",
    "Steps",
    "create_steps",
    "get_steps",
    "list_steps",
    "read_steps",
    "stop_if_active_steps",
    "timeout_message",
    "update_steps",
    "wait_ready_steps",
]
from airflow_provider_arr.hooks.dialects import SESSION_MAY_EXIST, Dialect
from airflow_provider_arr.hooks.paging import PageWalk
from airflow_provider_arr.hooks.transport import Logger, Request, Response
from airflow_provider_arr.models import (
    SessionProperties,
    SessionStatus,
    SessionStopOutcome,
    format_timespan,
    never_ready_message,
    new_matching_sessions,
    unknown_status_note,
    validate_lease,
)

#: How many times the account is listed, after a v1 create whose answer was lost, to find the session.
ADOPTION_LISTINGS = 3


def read_steps(dialect: Dialect, session_id: str) -> Steps[tuple[SessionProperties, Response]]:
    """Read one session; return it and the answer (for its ``MS-CV``)."""
    request = dialect.get_request(session_id)
    response = yield request
    assert response is not None
    return dialect.properties(request, response), response


def get_steps(dialect: Dialect, session_id: str) -> Steps[SessionProperties]:
    """Read one session."""
    properties, _ = yield from read_steps(dialect, session_id)
    return properties


def list_steps(dialect: Dialect, log: Logger | None = None) -> Steps[list[SessionProperties]]:
    """List the account's active sessions, following each ``@nextLink`` within a :class:`PageWalk`.

    :param log: where a warning about listed items this client cannot read (skipped) goes.
    """
    sessions: list[SessionProperties] = []
    first = dialect.list_request()
    walk = PageWalk("list_sessions", first.url)
    request: Request | None = first
    while request is not None:
        response = yield request
        assert response is not None
        page, request = dialect.session_page(response, log)
        sessions.extend(page)
        if request is not None:
            walk.follow(request.url, response)
    return sessions


def create_steps(
    dialect: Dialect,
    log: Logger,
    create: tuple[Any, Any, Any, Any],
    sessions_before: Collection[str] | None,
    on_listed: Callable[[set[str]], None],
) -> Steps[str]:
    """
    Create a session; on v1, adopt the one new matching session if the create's answer was lost.

    :param create: ``(max_lease_time, size, models, session_id)`` as the user gave them.
    :param sessions_before: v1: the account's session ids just before, if the caller listed them.
    :param on_listed: called with those ids before the create is sent (v1).
    """
    request = dialect.create_request(*create)
    if request.retry_safe:  # the client named the session: a retry reconnects
        response = yield request
        assert response is not None
        return dialect.created_session_id(request, response)
    if sessions_before is None:
        sessions_before = {session.session_id for session in (yield from list_steps(dialect, log))}
    before = set(sessions_before)
    on_listed(before)
    try:
        response = yield request
        assert response is not None
        return dialect.created_session_id(request, response)
    except RemoteRenderingSessionMayExistError as error:
        lease, size, _ = dialect.check_create(*create)
        for attempt in range(ADOPTION_LISTINGS):
            yield Pause(dialect.settings.retry_min_wait * attempt)
            try:
                after = yield from list_steps(dialect, log)
            except RemoteRenderingError as list_error:
                raise error.with_hint(
                    f"{SESSION_MAY_EXIST} Listing the sessions to find it failed too: {list_error}",
                    RemoteRenderingSessionMayExistError,
                ) from error
            adopted = _adopt(log, before, error, after, lease, size)
            if adopted is not None:
                return adopted
        raise error.with_hint(
            f"No new session appeared in the account after {ADOPTION_LISTINGS} listings, so the service "
            "most likely did not start one and a retry is safe; if one appears later, it is not this "
            "task's: stop it.",
            RemoteRenderingSessionMayExistError,
        ) from error


def update_steps(dialect: Dialect, log: Logger, session_id: str, max_lease_time: Any) -> Steps[None]:
    """Set a lease; a refusal is fine if the session already has it (a lost attempt set it)."""
    try:
        yield dialect.update_request(session_id, max_lease_time)
    except RemoteRenderingError as error:
        if error.http_status not in (400, 422):
            raise
        current = yield from get_steps(dialect, session_id)
        if current.max_lease_time != validate_lease(max_lease_time):
            raise error from None
        log.info(
            "Session %s already has the lease %s (an earlier attempt set it; its answer was lost)",
            current.session_id,
            format_timespan(current.max_lease_time),
        )


def _adopt(
    log: Logger,
    before: Collection[str],
    error: RemoteRenderingError,
    after: list[SessionProperties],
    lease: timedelta,
    size: str,
) -> str | None:
    """The one new session that matches the request; ``None`` if none appeared; raise if several."""
    new = new_matching_sessions(before, after, lease, size)
    if not new:
        return None
    if len(new) > 1:
        ids = ", ".join(session.session_id for session in new)
        raise error.with_hint(
            f"Its answer was lost and {len(new)} matching sessions appeared meanwhile ({ids}): "
            "another client is creating sessions in this account, so which one is this task's cannot be "
            "told. Stop the ones nobody uses; they are billed.",
            RemoteRenderingSessionMayExistError,
        )
    log.warning(
        "The create's answer was lost (%s); adopted session %s, the one new session in the account",
        error.service_message or f"HTTP {error.http_status}",
        new[0].session_id,
    )
    return new[0].session_id


def is_ready(session_id: str, properties: SessionProperties, ms_cv: str | None, log: Logger) -> bool:
    """One answer of a wait for Ready, judged: ``True`` once Ready; raise if it never will be.

    Logs the status; a status this client does not know is noted with its text and MS-CV, and waited on.

    :raises RemoteRenderingSessionNeverReadyError: Error, Expired, Stopping or Stopped.
    """
    log.info("%s", properties.describe())
    if properties.status == SessionStatus.READY:
        return True
    if not properties.status.may_become_ready:
        raise RemoteRenderingSessionNeverReadyError(never_ready_message(properties), properties)
    if properties.status == SessionStatus.UNKNOWN:
        log.warning("%s", unknown_status_note("Session", session_id, properties.status_text, ms_cv))
    return False


def wait_ready_steps(
    dialect: Dialect, log: Logger, session_id: str, poll_interval: float, end_time: float
) -> Steps[SessionProperties]:
    """
    Read the session every ``poll_interval`` seconds until it is Ready; the one wait of the package.

    A status this client does not know is reported (its text and ``MS-CV``) and waited on, as Starting
    is; only a known status says that the session will never be Ready (see ``SessionStatus``). Run it
    with the driver's ``end_time`` too, so that a read still in flight at the deadline is abandoned.

    :param end_time: the deadline, a UNIX timestamp (``time.time()`` clock, absolute so that a process
        or triggerer restart does not reset it).
    :raises RemoteRenderingSessionNeverReadyError: it is Stopping, Stopped, Expired or Error.
    :raises RemoteRenderingWaitTimeoutError: ``end_time`` passed while it was Starting (or Unknown).
    """
    properties: SessionProperties | None = None
    while True:
        try:
            properties, response = yield from read_steps(dialect, session_id)
        except RemoteRenderingDeadlineError as error:
            message = timeout_message(session_id, properties, error)
            raise RemoteRenderingWaitTimeoutError(message, properties) from None
        if is_ready(session_id, properties, response.ms_cv, log):
            return properties
        remaining = end_time - time.time()
        if remaining <= 0:
            raise RemoteRenderingWaitTimeoutError(timeout_message(session_id, properties), properties)
        yield Pause(min(poll_interval, remaining))


def timeout_message(
    session_id: str, properties: SessionProperties | None, in_flight: Exception | None = None
) -> str:
    """Why a wait for Ready timed out: the last status it read, and the call in flight, if one was.

    :param session_id: the session waited for.
    :param properties: what the wait last read, if anything.
    :param in_flight: the error of a call abandoned at the deadline.
    """
    text = (
        f"Session {session_id} was still {properties.status_text} when the wait timed out"
        if properties is not None
        else f"No status of session {session_id} was read before the wait timed out"
    )
    return f"{text} ({in_flight})" if in_flight is not None else text


def stop_if_active_steps(dialect: Dialect, log: Logger, session_id: str) -> Steps[SessionStopOutcome]:
    """
    Stop a session unless it has ended or is ending; the one "stop" rule of the package.

    Returns what it found and did (:class:`SessionStopOutcome`): ``"Stopped"`` after a stop call, the
    status it already had (``Stopping``, ``Stopped``, ``Expired``, ``Error``) or ``"NotFound"``. If its
    status cannot be read, it is stopped anyway. Service errors of the stop call itself are raised.
    """
    try:
        status: SessionStatus | None = (yield from get_steps(dialect, session_id)).status
    except RemoteRenderingSessionNotFoundError:
        log.info("Session %s does not exist (any more); nothing to stop", session_id)
        return SessionStopOutcome("NotFound")
    except RemoteRenderingError as error:
        log.warning("Could not read the status of session %s (%s); stopping it anyway", session_id, error)
        status = None
    if status is not None and (status.is_terminal or status == SessionStatus.STOPPING):
        log.info("Session %s is already %s; nothing to stop", session_id, status.value)
        return SessionStopOutcome(status.value, status)
    try:
        yield dialect.stop_request(session_id)
    except RemoteRenderingSessionNotFoundError:
        log.info("Session %s does not exist (any more); nothing to stop", session_id)
        return SessionStopOutcome("NotFound", status)
    log.info("Stopped session %s (it was %s)", session_id, status.value if status else "of unknown status")
    return SessionStopOutcome(SessionStatus.STOPPED.value, status, datetime.now(UTC))
