"""The sensor that waits until an Azure Remote Rendering session is Ready."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException

from airflow_provider_arr.exceptions import (
    RemoteRenderingSessionNotFoundError,
    RemoteRenderingWaitInterruptedError,
)
from airflow_provider_arr.models import ArrInputError, SessionStatus, never_ready_message

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook


def wait_deadline(timeout: float, execution_timeout: timedelta | None) -> float:
    """The absolute end (UNIX time) of a deferred wait: the nearer of ``timeout`` and ``execution_timeout``.

    Airflow does not enforce ``execution_timeout`` while a task is deferred, so the trigger must.
    """
    seconds = float(timeout)
    if execution_timeout is not None:
        seconds = min(seconds, execution_timeout.total_seconds())
    return time.time() + seconds


class RemoteRenderingSessionReadySensor(BaseSensorOperator):
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
        super().__init__(poke_interval=poke_interval, timeout=timeout, mode=mode, **kwargs)
        self.session_id = session_id
        self.arr_conn_id = arr_conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> RemoteRenderingHook:
        """The hook for :attr:`arr_conn_id` (imported lazily to keep DAG parsing cheap)."""
        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

        return RemoteRenderingHook(arr_conn_id=self.arr_conn_id)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        try:  # the first check, with the outcomes the base sensor gives its pokes
            ready = self.poke(context)
        except (AirflowFailException, AirflowSensorTimeout) as error:
            if self.soft_fail:
                raise AirflowSkipException("Skipping due to soft_fail is set to True.") from error
            if self.never_fail:
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from error
            raise
        if isinstance(ready, PokeReturnValue):
            return ready.xcom_value
        from airflow_provider_arr.triggers.remote_rendering import RemoteRenderingSessionTrigger

        trigger = RemoteRenderingSessionTrigger(
            session_id=self._session_id(),
            arr_conn_id=self.arr_conn_id,
            poll_interval=float(self.poke_interval),
            end_time=wait_deadline(self.timeout, self.execution_timeout),
        )
        self.defer(trigger=trigger, method_name="execute_complete", timeout=None)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Resume after the trigger; a service outage is a failure to retry, never a ``soft_fail`` skip."""
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSkipException as skip:
            if self.soft_fail and isinstance(skip.__cause__, RemoteRenderingWaitInterruptedError):
                raise skip.__cause__ from None
            raise

    def _session_id(self) -> str:
        try:
            return self.hook.dialect.check_session_id(self.session_id)
        except ArrInputError as error:
            raise AirflowFailException(str(error)) from None

    def poke(self, context: Context) -> bool | PokeReturnValue:
        session_id = self._session_id()
        try:
            properties = self.hook.get_session(session_id)
        except RemoteRenderingSessionNotFoundError as error:
            raise AirflowFailException(f"Session {session_id} does not exist: {error}") from None
        self.log.info("%s", properties.describe())
        if properties.status == SessionStatus.READY:
            self.log.info("Session %s is Ready at %s", session_id, properties.hostname)
            return PokeReturnValue(is_done=True, xcom_value=properties.to_dict())
        if properties.status != SessionStatus.STARTING:
            raise AirflowFailException(never_ready_message(properties))
        return False

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger: return the session's properties if Ready, else fail."""
        from airflow_provider_arr.triggers.events import validate_event

        event = validate_event(event)
        status = event["status"]
        if status == "success":
            self.log.info("%s", event["message"])
            return dict(event["properties"])
        if status == "failed":
            raise AirflowFailException(event["message"])
        if status == "timeout":
            raise AirflowSensorTimeout(event["message"])
        raise RemoteRenderingWaitInterruptedError(event["message"])
