"""The trigger that waits, in the triggerer, for a rendering session to become Ready.

The waits of one account on one event loop share one poller (``_poller.py``): one list call per
poll interval answers all of them, and only a session that has ended is read on its own. The poller
only fetches; each trigger logs its session's status lines and decides in its own ``run()``, so that
the triggerer routes the lines to its task's log. It uses the hook's retry policy, the process-wide
token cache and the one HTTP client of the event loop. Each
trigger yields exactly one event (the contract is in ``events.py``). The deadline is absolute
wall-clock time, so a triggerer restart or a hand-over to another triggerer does not reset it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_arr.exceptions import (
    RemoteRenderingError,
    RemoteRenderingSessionNeverReadyError,
    RemoteRenderingSessionNotFoundError,
    RemoteRenderingWaitTimeoutError,
)
from airflow_provider_arr.models import ArrInputError, SessionProperties, never_ready_message
from airflow_provider_arr.triggers.events import EVENT_KEYS, EVENT_STATUSES, make_event, validate_event

__all__ = [
    "EVENT_KEYS",
    "EVENT_STATUSES",
    "STOP_ON_KILL_TIMEOUT",
    "RemoteRenderingSessionTrigger",
    "failure_message",
    "validate_event",
]

#: How long ``on_kill`` may spend stopping the session (below ``[triggerer] on_kill_timeout``, 30 s).
STOP_ON_KILL_TIMEOUT = 20.0

#: Kept for code that imported it from here: why a session that is not Starting will never be Ready.
failure_message = never_ready_message


class RemoteRenderingSessionTrigger(BaseTrigger):
    """Wait until a rendering session is Ready, has failed, or a deadline passes.

    Yields one event (see :mod:`airflow_provider_arr.triggers.events`).

    :param session_id: the session to wait for.
    :param arr_conn_id: the Airflow connection id.
    :param poll_interval: seconds between two status reads.
    :param end_time: the deadline as a UNIX timestamp (``time.time()`` clock).
    :param stop_on_kill: stop the session when a user kills the deferred task (mark failed or success,
        clear); set by an operator that created the session.
    :param owner_key: the ownership record of the task that created the session (set by the create
        operator): ``on_kill`` leaves the session alone if a newer try of that task has taken it over.
    :param owner_try: the try of the create task that deferred.
    :param shared_poll: wait with the account's shared poller (the default); ``False`` reads this
        session on its own every ``poll_interval`` (one request per wait and interval), as before.
    """

    def __init__(
        self,
        session_id: str,
        arr_conn_id: str,
        poll_interval: float,
        end_time: float,
        stop_on_kill: bool = False,
        owner_key: str | None = None,
        owner_try: int | None = None,
        shared_poll: bool = True,
    ) -> None:
        super().__init__()
        self.session_id = session_id
        self.arr_conn_id = arr_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = float(end_time)
        self.stop_on_kill = bool(stop_on_kill)
        self.owner_key = owner_key
        self.owner_try = owner_try
        self.shared_poll = bool(shared_poll)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the plain keyword arguments that rebuild this trigger."""
        kwargs: dict[str, Any] = {
            "session_id": self.session_id,
            "arr_conn_id": self.arr_conn_id,
            "poll_interval": self.poll_interval,
            "end_time": self.end_time,
            "stop_on_kill": self.stop_on_kill,
        }
        if self.owner_key is not None:
            kwargs |= {"owner_key": self.owner_key, "owner_try": self.owner_try}
        if not self.shared_poll:
            kwargs["shared_poll"] = False
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait for the session (with the account's shared poller) and yield exactly one event."""
        event = await self._wait()
        yield TriggerEvent(event)

    async def _wait(self) -> dict[str, Any]:
        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
        from airflow_provider_arr.triggers._shared_waits import wait_until_ready

        session_id = self.session_id
        try:
            if self.shared_poll:  # the status lines go to self.log, so to the task's log
                ready = await wait_until_ready(
                    self.arr_conn_id, session_id, self.poll_interval, self.end_time, self.log
                )
            else:
                async with RemoteRenderingHook(self.arr_conn_id) as hook:
                    hook.log_to(self.log)  # the poll lines belong in the task's log
                    ready = await hook.await_until_ready(session_id, self.poll_interval, self.end_time)
        except RemoteRenderingSessionNeverReadyError as error:
            return make_event("failed", str(error), session_id, _properties(error.properties))
        except RemoteRenderingWaitTimeoutError as error:
            return make_event("timeout", str(error), session_id, _properties(error.properties))
        except RemoteRenderingSessionNotFoundError as error:  # gone while waiting: as a poke finds it
            return make_event("failed", f"Session {session_id} does not exist: {error}", session_id)
        except (RemoteRenderingError, ArrInputError) as error:
            message = f"Could not read the status of session {session_id}: {error}"
            return make_event("error", message, session_id)
        return make_event("success", f"Session {session_id} is Ready at {ready.hostname}", session_id, ready)

    async def on_kill(self) -> None:
        """Stop the session when a user kills the deferred task, if ``stop_on_kill``; never raises.

        Airflow (3.3+) calls this on mark-failed, mark-success or clear of the deferred task, not on a
        triggerer restart; :meth:`cleanup` deliberately stops nothing. After a clear, the re-run of the
        create task may already have taken the session over (it claims the ownership record before it
        looks at the session): then the session is left to it.
        """
        if not self.stop_on_kill:
            self.log.info(
                "Task killed; session %s is left running (this wait did not create it; the task that did, "
                "or the teardown that stops it, owns it)",
                self.session_id,
            )
            return
        try:
            taken_over = await self._taken_over()
        except Exception as error:  # no positive evidence that nobody else uses it: keep it
            self.log.warning(
                "Task killed; the ownership record of session %s could not be read (%s), so it is kept; the "
                "teardown or the session janitor decides",
                self.session_id,
                type(error).__name__,
            )
            return
        if taken_over:
            return
        try:
            self.log.info("Task killed while waiting; stopping session %s", self.session_id)
            await asyncio.wait_for(self._stop_session(), timeout=STOP_ON_KILL_TIMEOUT)
        except TimeoutError:
            self.log.error(
                "Could not stop session %s within %.0f s; the teardown or the session janitor will stop it",
                self.session_id,
                STOP_ON_KILL_TIMEOUT,
            )
        except Exception:
            self.log.exception(
                "Could not stop session %s; the teardown or the session janitor will stop it", self.session_id
            )

    async def _taken_over(self) -> bool:
        """Whether a newer try of the create task claimed the session; else mark it as stopped here."""
        if self.owner_key is None or self.owner_try is None:
            return False
        from asgiref.sync import sync_to_async

        from airflow_provider_arr import ownership

        def check_and_mark() -> bool:
            text = ownership.ledger().get(str(self.owner_key))
            if text is None:
                return False
            record = ownership.OwnershipRecord.from_json(text)
            if record.claimed_by_try > int(self.owner_try or 0):
                return True
            record.kill_stopped[self.session_id] = int(self.owner_try or 0)
            ownership.save(record)
            return False

        if await sync_to_async(check_and_mark)():
            self.log.info(
                "Task killed; session %s was taken over by a newer try of its create task; left running",
                self.session_id,
            )
            return True
        return False

    async def _stop_session(self) -> None:
        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

        async with RemoteRenderingHook(self.arr_conn_id) as hook:
            hook.log_to(self.log)
            await hook.astop_session_if_active(self.session_id)


def _properties(properties: object) -> SessionProperties | None:
    return properties if isinstance(properties, SessionProperties) else None
