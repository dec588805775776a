"""The hook for the Azure Remote Rendering session-management REST API.

It is the only code that speaks HTTP to the service. The ``hooks`` package is split by concern:
``settings`` (the connection, checked once), ``tokens`` (the process-wide token cache), ``transport``
(one pooled ``requests.Session`` per hook, one ``httpx.AsyncClient`` per event loop), ``policy`` (what
an answer means; retries), ``dialects`` (URLs, bodies and answers of ``v1`` and ``2021-01-01``),
``base`` (settings, token and the sync and async drivers), ``sessions`` (the session calls that take
several requests, written once), ``conversion_dialects`` and ``conversions`` (the asset-conversion
requests and calls) and this module, the public calls.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_arr.hooks.base import RemoteRenderingBaseHook
from airflow_provider_arr.hooks.conversions import RemoteRenderingConversionCalls

if TYPE_CHECKING:
    from airflow_provider_arr.hooks.dialects import Dialect
    from airflow_provider_arr.hooks.settings import DEFAULT_STS_URL, REGION_URL, ConnectionSettings
    from airflow_provider_arr.hooks.steps import Steps
    from airflow_provider_arr.hooks.tokens import clear_token_cache
    from airflow_provider_arr.models import SessionProperties, SessionStopOutcome

__all__ = [
    "DEFAULT_STS_URL",
    "REGION_URL",
    "ConnectionSettings",
    "RemoteRenderingHook",
    "clear_token_cache",
]

#: Public names of this module that live in the hook's other modules, imported when first asked for: a DAG
#: file that imports this module (or an operator) does not import the settings or the token cache.
_LAZY = {
    "DEFAULT_STS_URL": "airflow_provider_arr.hooks.settings",
    "REGION_URL": "airflow_provider_arr.hooks.settings",
    "ConnectionSettings": "airflow_provider_arr.hooks.settings",
    "clear_token_cache": "airflow_provider_arr.hooks.tokens",
}


def __getattr__(name: str) -> Any:
    from airflow_provider_arr._lazy import load

    return load(__name__, _LAZY, globals(), name)


class RemoteRenderingHook(RemoteRenderingConversionCalls):
    """Talk to the Azure Remote Rendering API: tokens, sessions and asset conversions.

    Sessions: create / get / list / update / stop and the wait for Ready. Asset conversions: create /
    get / list and the wait, from ``hooks/conversions.py``.

    The connection's ``host`` is the service URL (or extra ``region``), ``login`` the account id,
    ``password`` the account key; extras: ``sts_url``, ``api_version``, ``connect_timeout``,
    ``read_timeout``, ``retry_limit``, ``retry_max_time``, ``retry_min_wait``, ``retry_max_wait``.
    Every call raises :class:`~airflow_provider_arr.exceptions.RemoteRenderingError` (or a subclass)
    when the service refuses or cannot be reached after the retries, and
    :class:`~airflow_provider_arr.models.ArrInputError` for bad input, before any HTTP.

    :param arr_conn_id: the Airflow connection id.
    """

    conn_name_attr = "arr_conn_id"
    default_conn_name = "arr_default"

    def __init__(self, arr_conn_id: str = RemoteRenderingBaseHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(arr_conn_id, **kwargs)
        #: The account's active sessions just before this hook's latest v1 create was sent: what
        #: :meth:`create_session` (and a killed task's cleanup) compares with to find the new one.
        self.sessions_before_create: set[str] | None = None

    # ---------------------------------------------------------------- the five session calls

    def create_session(
        self,
        max_lease_time: timedelta | str,
        size: str = "standard",
        models: Sequence[str] | None = (),
        session_id: str | None = None,
        *,
        sessions_before: Collection[str] | None = None,
    ) -> str:
        """
        Start a new rendering session (billed until it stops) and return its id.

        On ``2021-01-01`` the client names the session: the same ``session_id`` sent again reconnects
        to the session it already started (the service answers 200), which makes retries safe. On ``v1``
        a create whose answer is lost is not sent again: the account is listed and the one new session
        that matches is adopted; if none or several appear,
        :class:`~airflow_provider_arr.exceptions.RemoteRenderingSessionMayExistError` says so.

        :param max_lease_time: the lease (``timedelta`` or ``"4:0:0"``); on ``v1`` the total time since
            start, on ``2021-01-01`` the time after Ready, in whole minutes.
        :param size: ``standard`` or ``premium``.
        :param models: asset-container URLs to preload (``v1`` only).
        :param session_id: ``2021-01-01`` only: the id to give the session; a random one by default.
        :param sessions_before: ``v1`` only: the ids of the account's sessions just before this create,
            if the caller has listed them already (to record them durably); listed here otherwise.
        """
        return self._run(
            self._create_steps(self.dialect, (max_lease_time, size, models, session_id), sessions_before)
        )

    async def acreate_session(
        self,
        max_lease_time: timedelta | str,
        size: str = "standard",
        models: Sequence[str] | None = (),
        session_id: str | None = None,
        *,
        sessions_before: Collection[str] | None = None,
    ) -> str:
        """Async :meth:`create_session`."""
        dialect = await self.adialect()
        return await self._arun(
            self._create_steps(dialect, (max_lease_time, size, models, session_id), sessions_before)
        )

    def get_session(self, session_id: str) -> SessionProperties:
        """
        Return a session's properties (status, hostname, lease...).

        :param session_id: the session's id.
        :raises RemoteRenderingSessionNotFoundError: the service does not know it (HTTP 404).
        """
        from airflow_provider_arr.hooks import sessions

        return self._run(sessions.get_steps(self.dialect, session_id))

    async def aget_session(self, session_id: str) -> SessionProperties:
        """Async :meth:`get_session`."""
        from airflow_provider_arr.hooks import sessions

        return await self._arun(sessions.get_steps(await self.adialect(), session_id))

    def list_sessions(self) -> list[SessionProperties]:
        """Return the account's active sessions (stopped ones are not listed), following every page."""
        from airflow_provider_arr.hooks import sessions

        return self._run(sessions.list_steps(self.dialect, self.log))

    async def alist_sessions(self) -> list[SessionProperties]:
        """Async :meth:`list_sessions`."""
        from airflow_provider_arr.hooks import sessions

        return await self._arun(sessions.list_steps(await self.adialect(), self.log))

    def update_session(self, session_id: str, max_lease_time: timedelta | str) -> None:
        """
        Set a session's lease to a new total; the service only extends.

        A refusal (400/422) is accepted when the session already has the lease asked for: an earlier
        attempt whose answer was lost set it.

        :param session_id: the session's id.
        :param max_lease_time: the new total lease.
        """
        from airflow_provider_arr.hooks import sessions

        self._run(sessions.update_steps(self.dialect, self.log, session_id, max_lease_time))

    async def aupdate_session(self, session_id: str, max_lease_time: timedelta | str) -> None:
        """Async :meth:`update_session`."""
        from airflow_provider_arr.hooks import sessions

        await self._arun(sessions.update_steps(await self.adialect(), self.log, session_id, max_lease_time))

    def stop_session(self, session_id: str) -> None:
        """
        Stop a session (billing ends).

        :param session_id: the session's id.
        :raises RemoteRenderingSessionNotFoundError: the service does not know it (HTTP 404).
        """
        self._call(self.dialect.stop_request(session_id))

    async def astop_session(self, session_id: str) -> None:
        """Async :meth:`stop_session`."""
        await self._acall((await self.adialect()).stop_request(session_id))

    def stop_session_if_active(self, session_id: str) -> str:
        """
        Stop a session unless it has ended or is ending; safe to call again, and on an unknown id.

        :param session_id: the session's id.
        :return: ``"Stopped"`` after a stop call, else the status it already had (``Stopping``,
            ``Stopped``, ``Expired``, ``Error``) or ``"NotFound"``.
        """
        return self.end_session(session_id).outcome

    async def astop_session_if_active(self, session_id: str) -> str:
        """Async :meth:`stop_session_if_active`."""
        from airflow_provider_arr.hooks import sessions

        steps = sessions.stop_if_active_steps(await self.adialect(), self.log, session_id)
        return (await self._arun(steps)).outcome

    def end_session(self, session_id: str) -> SessionStopOutcome:
        """
        :meth:`stop_session_if_active`, also saying what the session was and when the stop was answered.

        :param session_id: the session's id.
        :return: the outcome, the status before the stop call and its answer's time (UTC).
        """
        from airflow_provider_arr.hooks import sessions

        return self._run(sessions.stop_if_active_steps(self.dialect, self.log, session_id))

    def wait_until_ready(
        self, session_id: str, poll_interval: float, end_time: float, cancel: threading.Event | None = None
    ) -> SessionProperties:
        """
        Block until the session is Ready, reading it every ``poll_interval`` seconds.

        :param session_id: the session's id.
        :param poll_interval: seconds between two reads (the service suggests 5 to 10).
        :param end_time: the deadline as a UNIX timestamp.
        :param cancel: set it (from another thread, e.g. ``on_kill``) to end the wait at once.
        :raises RemoteRenderingSessionNeverReadyError: the session ended or is ending.
        :raises RemoteRenderingWaitTimeoutError: the deadline passed while it was Starting.
        :raises RemoteRenderingWaitCancelledError: ``cancel`` was set.
        """
        from airflow_provider_arr.hooks import sessions

        steps = sessions.wait_ready_steps(self.dialect, self.log, session_id, poll_interval, end_time)
        return self._run(steps, cancel, end_time)

    async def await_until_ready(
        self, session_id: str, poll_interval: float, end_time: float
    ) -> SessionProperties:
        """Async :meth:`wait_until_ready` (cancel it by cancelling the task)."""
        from airflow_provider_arr.hooks import sessions

        steps = sessions.wait_ready_steps(
            await self.adialect(), self.log, session_id, poll_interval, end_time
        )
        return await self._arun(steps, end_time)

    def test_connection(self) -> tuple[bool, str]:
        """Fetch a token and list the sessions; used by Airflow's "Test connection" button.

        Each call is tried once with short timeouts, and a failure says which field to change (see
        ``hooks/connection_test.py``).
        """
        from airflow_provider_arr.hooks.connection_test import test_connection

        return test_connection(self)

    def _create_steps(
        self, dialect: Dialect, create: tuple[Any, Any, Any, Any], sessions_before: Collection[str] | None
    ) -> Steps[str]:
        from airflow_provider_arr.hooks import sessions

        def remember(before: set[str]) -> None:
            self.sessions_before_create = before

        return sessions.create_steps(dialect, self.log, create, sessions_before, remember)
