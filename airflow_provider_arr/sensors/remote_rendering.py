"""The sensor that waits until an Azure Remote Rendering session is Ready."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue

from airflow_provider_arr._compat import AirflowFailException, conf
from airflow_provider_arr.exceptions import (
    RemoteRenderingDeadlineError,
    RemoteRenderingSessionNotFoundError,
)
from airflow_provider_arr.links import RemoteRenderingInspectorLink, note_link
from airflow_provider_arr.models import ArrInputError
from airflow_provider_arr.sensors.base import RemoteRenderingBaseSensor, wait_deadline
from airflow_provider_arr.triggers.events import validate_event

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_arr.models import SessionProperties
    from airflow_provider_arr.triggers.remote_rendering import RemoteRenderingSessionTrigger

__all__ = ["RemoteRenderingSessionReadySensor", "wait_deadline"]


class RemoteRenderingSessionReadySensor(RemoteRenderingBaseSensor):
    """Wait until a rendering session is Ready; its properties become the task's XCom value.

    Fails at once, without retries, when the session is Error, Expired, Stopping or Stopped (it will
    never become Ready) or does not exist, and with ``AirflowSensorTimeout`` when ``timeout`` (or
    ``execution_timeout``) passes; with ``soft_fail`` each of these ends skipped instead. A service that
    cannot be reached after the hook's retries fails the task, to be retried, never skipped. The outcome
    is the same in ``poke``, ``reschedule`` and deferrable modes; in deferrable mode it checks once and
    defers only if the session is still Starting.

    :param session_id: the session's id. (templated)
    :param arr_conn_id: the Airflow connection id. (templated)
    :param poke_interval: seconds between two status reads; the service suggests 5 to 10.
    :param timeout: seconds to wait for Ready before failing.
    :param mode: ``poke`` or ``reschedule``.
    :param deferrable: wait in the triggerer instead of the worker.
    """

    template_fields: Sequence[str] = ("session_id", "arr_conn_id")
    operator_extra_links = (RemoteRenderingInspectorLink(),)

    def __init__(
        self,
        *,
        session_id: str,
        arr_conn_id: str = "arr_default",
        poke_interval: float = 10,
        timeout: float = 3600,
        mode: str = "poke",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(
            arr_conn_id=arr_conn_id,
            deferrable=deferrable,
            poke_interval=poke_interval,
            timeout=timeout,
            mode=mode,
            **kwargs,
        )
        self.session_id = session_id
        self._own: str | None = None  # the session of this map index, once found (see _session_id)

    validate_event = staticmethod(validate_event)

    def make_trigger(self, end_time: float) -> RemoteRenderingSessionTrigger:
        """The session trigger, for the rest of the wait."""
        from airflow_provider_arr.triggers.remote_rendering import RemoteRenderingSessionTrigger

        return RemoteRenderingSessionTrigger(
            session_id=self._own or self._session_id(),
            arr_conn_id=self.arr_conn_id,
            poll_interval=float(self.poke_interval),
            end_time=end_time,
        )

    def _session_id(self, context: Context | None = None) -> str:
        """The session to wait for: the one given, or, mapped, this map index's own (see ``ownership``)."""
        try:
            given = self.hook.dialect.check_session_id(self.session_id)
        except ArrInputError as error:
            raise AirflowFailException(str(error)) from None
        if context is None:
            return given
        from airflow_provider_arr.ownership.rules import create_task_of
        from airflow_provider_arr.ownership.teardown import own_session

        self._own = own_session(context.get("ti"), create_task_of(self), given, self.log)
        return self._own

    def poke(self, context: Context) -> bool | PokeReturnValue:
        from airflow_provider_arr.hooks.sessions import read_steps
        from airflow_provider_arr.models import SessionStatus, never_ready_message, unknown_status_note

        session_id = self._own or self._session_id(context)
        try:
            steps = read_steps(self.hook.dialect, session_id)
            properties, response = self.hook._run(steps, end_time=self.read_deadline)
        except RemoteRenderingSessionNotFoundError as error:
            raise AirflowFailException(f"Session {session_id} does not exist: {error}") from None
        except RemoteRenderingDeadlineError as error:
            raise self.timed_out("Session", session_id, error) from None
        self.log.info("%s", properties.describe())
        if properties.status == SessionStatus.READY:
            self.log.info("Session %s is Ready at %s", session_id, properties.hostname)
            self._ready(context, properties, time.time())
            return PokeReturnValue(is_done=True, xcom_value=properties.to_dict())
        if not properties.status.may_become_ready:
            raise AirflowFailException(never_ready_message(properties))
        if properties.status == SessionStatus.UNKNOWN:
            text = properties.status_text
            self.log.warning("%s", unknown_status_note("Session", session_id, text, response.ms_cv))
        return False

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger: the session's properties once Ready, else fail as a poke would."""
        from airflow_provider_arr.models import SessionProperties

        properties = super().execute_complete(context, event)
        seen_at = (event or {}).get("seen_at")
        self._ready(context, SessionProperties.from_dict(properties), float(seen_at or time.time()))
        return properties

    def _ready(self, context: Context, properties: SessionProperties, seen_at: float) -> None:
        """Note the ARR Inspector link, and when the session was seen Ready for its billed time."""
        from airflow_provider_arr.ownership.rules import create_task_of, note_ready

        note_link(self, RemoteRenderingInspectorLink, properties.arr_inspector_url)
        note_ready(context.get("ti"), create_task_of(self), properties.session_id, seen_at, self.log)
