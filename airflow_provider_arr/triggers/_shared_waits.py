"""The triggerer's waits on the shared poller (``_poller.py``): what is polled, and how a wait decides.

Each wait logs and decides in its own coroutine, awaited in the trigger's ``run()`` (the triggerer routes
a log line to a task's log by the asyncio context of the trigger that emitted it), exactly as the hook's
own waits (:func:`~airflow_provider_arr.hooks.sessions.wait_ready_steps`,
:func:`~airflow_provider_arr.hooks.conversions.wait_steps`) do, line for line, and with the same
bounds (issue 18): a status this client does not know is reported and waited on; the deadline holds
while the shared list call is in flight (the wait stops waiting for it at
:func:`~airflow_provider_arr.hooks.base.abandon_at`, whatever the call does for the other waits).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from airflow_provider_arr.exceptions import (
    RemoteRenderingConversionFailedError,
    RemoteRenderingWaitTimeoutError,
)
from airflow_provider_arr.hooks import conversions, sessions
from airflow_provider_arr.hooks.dialects import Dialect
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.hooks.steps import Steps
from airflow_provider_arr.hooks.transport import Logger
from airflow_provider_arr.models import (
    ConversionProperties,
    ConversionStatus,
    SessionProperties,
    SessionStatus,
    unknown_status_note,
)
from airflow_provider_arr.triggers._poller import NoAnswerByDeadline, PolledKind, registered

__all__ = ["wait_for_conversion", "wait_until_ready"]


def _read_session(dialect: Dialect, session_id: str) -> Steps[tuple[SessionProperties, str | None]]:
    properties, response = yield from sessions.read_steps(dialect, session_id)
    return properties, response.ms_cv


def _read_conversion(dialect: Dialect, conversion_id: str) -> Steps[tuple[ConversionProperties, str | None]]:
    properties, response = yield from conversions.read_steps(dialect, conversion_id)
    return properties, response.ms_cv


#: Sessions. Read on their own: one missing (ended), Ready without the hostname the event carries, or in
#: a status this client does not know (its own answer gives the MS-CV the wait reports).
SESSIONS = PolledKind(
    name="sessions",
    list_steps=sessions.list_steps,
    item_id=lambda listed: listed.session_id,
    read=_read_session,
    listed_answer=lambda listed: (listed, None),
    needs_own_read=lambda answer: (
        not isinstance(answer, tuple)
        or answer[0].status == SessionStatus.UNKNOWN
        or (answer[0].status == SessionStatus.READY and not answer[0].hostname)
    ),
)
#: Conversions (2021-01-01). Read on their own: missing, failed or unknown (for the answer's MS-CV).
CONVERSIONS = PolledKind(
    name="conversions",
    list_steps=conversions.list_steps,
    item_id=lambda listed: listed.conversion_id,
    read=_read_conversion,
    listed_answer=lambda listed: (listed, None),
    needs_own_read=lambda answer: (
        not isinstance(answer, tuple)
        or answer[0].status.is_failed
        or answer[0].status == ConversionStatus.UNKNOWN
    ),
)


async def _account(arr_conn_id: str, check: Callable[[Dialect], Any]) -> tuple[RemoteRenderingHook, Dialect]:
    """A hook with its settings loaded, and the id checked by ``check`` (bad input fails before any HTTP)."""
    hook = RemoteRenderingHook(arr_conn_id)
    try:
        dialect = await hook.adialect()
        check(dialect)
    except BaseException:
        await hook.aclose()
        raise
    return hook, dialect


async def wait_until_ready(
    arr_conn_id: str, session_id: str, poll_interval: float, end_time: float, log: Logger
) -> SessionProperties:
    """
    Wait, with the account's shared poller, until the session is Ready: the trigger's wait.

    It logs and decides as :func:`~airflow_provider_arr.hooks.sessions.wait_ready_steps` does, line for
    line, in the caller's coroutine (so the lines reach the trigger's task log), and raises what
    :meth:`RemoteRenderingHook.await_until_ready` raises, for the same reasons.

    :param end_time: the deadline as a UNIX timestamp.
    :param log: the trigger's logger.
    """
    hook, dialect = await _account(arr_conn_id, lambda dialect: dialect.check_session_id(session_id))
    properties: SessionProperties | None = None
    async with registered(SESSIONS, hook, dialect, session_id, poll_interval, end_time) as waiter:
        while True:
            try:
                properties, ms_cv = await waiter.next_answer(log)
            except NoAnswerByDeadline as error:
                message = sessions.timeout_message(session_id, properties, error)
                raise RemoteRenderingWaitTimeoutError(message, properties) from None
            if sessions.is_ready(session_id, properties, ms_cv, log):
                return properties
            if end_time - time.time() <= 0:
                raise RemoteRenderingWaitTimeoutError(
                    sessions.timeout_message(session_id, properties), properties
                )


async def wait_for_conversion(
    arr_conn_id: str, conversion_id: str, poll_interval: float, end_time: float, log: Logger
) -> ConversionProperties:
    """
    Wait until the conversion has ended; with the shared poller where the API lists conversions.

    On 2021-01-01 it logs and decides as :func:`~airflow_provider_arr.hooks.conversions.wait_steps`
    does, in the caller's coroutine; on v1, which cannot list conversions, it is that wait (one read
    per interval). Raises what :meth:`RemoteRenderingHook.await_conversion` raises.
    """
    hook, dialect = await _account(
        arr_conn_id, lambda dialect: dialect.lists_conversions and dialect.check_conversion_id(conversion_id)
    )
    if not dialect.lists_conversions:
        async with hook:
            hook.log_to(log)  # the poll lines belong in the task's log
            return await hook.await_conversion(conversion_id, poll_interval, end_time)
    properties: ConversionProperties | None = None
    async with registered(CONVERSIONS, hook, dialect, conversion_id, poll_interval, end_time) as waiter:
        while True:
            try:
                properties, ms_cv = await waiter.next_answer(log)
            except NoAnswerByDeadline as error:
                message = conversions.conversion_timeout_message(conversion_id, properties, error)
                raise RemoteRenderingWaitTimeoutError(message, properties) from None
            log.info("Conversion %s is %s", conversion_id, properties.status_text)
            if properties.status == ConversionStatus.SUCCEEDED:
                return properties
            if properties.status.is_failed:
                message = conversions.conversion_failed_message(properties, ms_cv)
                raise RemoteRenderingConversionFailedError(message, properties)
            if properties.status == ConversionStatus.UNKNOWN:
                text = properties.status_text
                log.warning("%s", unknown_status_note("Conversion", conversion_id, text, ms_cv))
            if end_time - time.time() <= 0:
                message = conversions.conversion_timeout_message(conversion_id, properties)
                raise RemoteRenderingWaitTimeoutError(message, properties)
