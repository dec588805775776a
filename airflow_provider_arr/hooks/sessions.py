"""The session calls that take more than one request, written once for the sync and async drivers.

Each function is a generator of steps (see ``base.py``): a paged list, a v1 create that looks for
its session when the answer was lost, and an extend that checks whether a lost attempt already
extended.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Any

from airflow_provider_arr.exceptions import RemoteRenderingError, RemoteRenderingSessionMayExistError
from airflow_provider_arr.hooks.base import Pause, Steps

__all__ = ["ADOPTION_LISTINGS", "Steps", "create_steps", "get_steps", "list_steps", "update_steps"]
from airflow_provider_arr.hooks.dialects import SESSION_MAY_EXIST, Dialect
from airflow_provider_arr.hooks.transport import Logger, Request
from airflow_provider_arr.models import (
    SessionProperties,
    format_timespan,
    new_matching_sessions,
    validate_lease,
)

#: How many times the account is listed, after a v1 create whose answer was lost, to find the session.
ADOPTION_LISTINGS = 3


def get_steps(dialect: Dialect, session_id: str) -> Steps[SessionProperties]:
    """Read one session."""
    request = dialect.get_request(session_id)
    response = yield request
    assert response is not None
    return dialect.properties(request, response)


def list_steps(dialect: Dialect) -> Steps[list[SessionProperties]]:
    """List the account's active sessions, following every ``@nextLink``."""
    sessions: list[SessionProperties] = []
    request: Request | None = dialect.list_request()
    while request is not None:
        response = yield request
        assert response is not None
        page, request = dialect.session_page(response)
        sessions.extend(page)
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
        sessions_before = {session.session_id for session in (yield from list_steps(dialect))}
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
                after = yield from list_steps(dialect)
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
