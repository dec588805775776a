"""The trigger that waits, in the triggerer, for a rendering session to become Ready.

It polls the session through the hook's async methods (one HTTP client shared by every trigger on
the event loop, the hook's retry policy and process-wide token cache), and yields exactly one event.
The deadline is absolute wall-clock time, so a triggerer restart or a hand-over to another triggerer
does not reset it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_arr.exceptions import RemoteRenderingError, RemoteRenderingSessionNotFoundError
from airflow_provider_arr.models import ArrInputError, SessionProperties, SessionStatus, format_timespan

#: The statuses a trigger event can have; anything else is refused by :func:`validate_event`.
EVENT_STATUSES = frozenset({"success", "failed", "timeout", "error"})
EVENT_KEYS = ("status", "message", "session_id", "last_status", "properties")

#: How long ``on_kill`` may spend stopping the session (below ``[triggerer] on_kill_timeout``, 30 s).
STOP_ON_KILL_TIMEOUT = 20.0


def validate_event(event: Any) -> dict[str, Any]:
    """Check an event given to ``execute_complete``; raise instead of succeeding on anything odd.

    ``dag.test()`` and some triggerer failures resume a task with ``event=None``: that must fail the
    task, never pass it silently.

    :param event: the ``event`` keyword argument of ``execute_complete``.
    """
    if event is None:
        raise AirflowException(
            "The task resumed without a trigger event (event=None); the session wait did not finish."
        )
    if not isinstance(event, Mapping):
        raise AirflowException(f"The trigger event should be a dict, got {type(event).__name__}: {event!r}")
    missing = [key for key in EVENT_KEYS if key not in event]
    if missing:
        raise AirflowException(f"The trigger event lacks the key(s) {', '.join(missing)}: {dict(event)!r}")
    if event["status"] not in EVENT_STATUSES:
        raise AirflowException(
            f"The trigger event has an unknown status {event['status']!r} "
            f"(known: {', '.join(sorted(EVENT_STATUSES))})"
        )
    if event["status"] == "success" and not isinstance(event["properties"], Mapping):
        raise AirflowException(f"The trigger reported success without session properties: {dict(event)!r}")
    return dict(event)


def _event(
    status: str, message: str, session_id: str, properties: SessionProperties | None = None
) -> dict[str, Any]:
    return {
        "status": status,
        "message": message,
        "session_id": session_id,
        "last_status": properties.status.value if properties else None,
        "properties": properties.to_dict() if properties else None,
    }


def failure_message(properties: SessionProperties) -> str:
    """Explain why a session that is not Starting will never become Ready (with the service's message).

    :param properties: the session's latest properties.
    """
    reason = f": {properties.message}" if properties.message else " (the service gave no message)"
    return f"Session {properties.session_id} is {properties.status.value} and will not become Ready{reason}"


class RemoteRenderingSessionTrigger(BaseTrigger):
    """Wait until a rendering session is Ready, has failed, or a deadline passes.

    Yields one event ``{"status", "message", "session_id", "last_status", "properties"}`` where
    ``status`` is ``success`` (Ready; ``properties`` holds the session's properties), ``failed``
    (Error, Expired, Stopping or Stopped), ``timeout`` (``end_time`` passed) or ``error`` (the service
    could not be asked, after the hook's retries).

    :param session_id: the session to wait for.
    :param arr_conn_id: the Airflow connection id.
    :param poll_interval: seconds between two status reads.
    :param end_time: the deadline as a UNIX timestamp (``time.time()`` clock).
    :param stop_on_kill: stop the session when a user kills the deferred task (mark failed or success,
        clear); set by an operator that created the session.
    """

    def __init__(
        self,
        session_id: str,
        arr_conn_id: str,
        poll_interval: float,
        end_time: float,
        stop_on_kill: bool = False,
    ) -> None:
        super().__init__()
        self.session_id = session_id
        self.arr_conn_id = arr_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = float(end_time)
        self.stop_on_kill = bool(stop_on_kill)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the plain keyword arguments that rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "session_id": self.session_id,
                "arr_conn_id": self.arr_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "stop_on_kill": self.stop_on_kill,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the session and yield exactly one event."""
        event = await self._wait()
        yield TriggerEvent(event)

    async def _wait(self) -> dict[str, Any]:
        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

        properties: SessionProperties | None = None
        try:
            async with RemoteRenderingHook(self.arr_conn_id) as hook:
                while True:
                    properties = await hook.aget_session(self.session_id)
                    self.log.info(
                        "Session %s is %s (elapsed %s of lease %s)",
                        self.session_id,
                        properties.status.value,
                        format_timespan(properties.elapsed_time),
                        format_timespan(properties.max_lease_time),
                    )
                    if properties.status == SessionStatus.READY:
                        return _event(
                            "success", f"Session {self.session_id} is Ready", self.session_id, properties
                        )
                    if properties.status != SessionStatus.STARTING:
                        return _event("failed", failure_message(properties), self.session_id, properties)
                    remaining = self.end_time - time.time()
                    if remaining <= 0:
                        message = f"Session {self.session_id} was still Starting when the wait timed out"
                        return _event("timeout", message, self.session_id, properties)
                    await asyncio.sleep(min(self.poll_interval, remaining))
        except (RemoteRenderingError, ArrInputError) as error:
            message = f"Could not read the status of session {self.session_id}: {error}"
            event = _event("error", message, self.session_id)
            event["last_status"] = properties.status.value if properties else None
            return event

    async def on_kill(self) -> None:
        """Stop the session when a user kills the deferred task, if ``stop_on_kill``; never raises.

        Airflow (3.3+) calls this on mark-failed, mark-success or clear of the deferred task, not on a
        triggerer restart; :meth:`cleanup` deliberately stops nothing.
        """
        if not self.stop_on_kill:
            self.log.info("Task killed; session %s is left running (stop_on_kill is off)", self.session_id)
            return
        self.log.info("Task killed while waiting; stopping session %s", self.session_id)
        try:
            await asyncio.wait_for(self._stop_session(), timeout=STOP_ON_KILL_TIMEOUT)
        except TimeoutError:
            self.log.error(
                "Could not stop session %s within %.0f s; stop it by hand, it is billed until it stops",
                self.session_id,
                STOP_ON_KILL_TIMEOUT,
            )
        except Exception:
            self.log.exception(
                "Could not stop session %s; stop it by hand, it is billed until it stops", self.session_id
            )

    async def _stop_session(self) -> None:
        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

        async with RemoteRenderingHook(self.arr_conn_id) as hook:
            try:
                properties = await hook.aget_session(self.session_id)
                if properties.status.is_terminal:
                    self.log.info("Session %s is already %s", self.session_id, properties.status.value)
                    return
                await hook.astop_session(self.session_id)
            except RemoteRenderingSessionNotFoundError:
                self.log.info("Session %s no longer exists; nothing to stop", self.session_id)
                return
        self.log.info("Stopped session %s", self.session_id)
