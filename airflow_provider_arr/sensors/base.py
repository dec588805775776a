"""The base of the two sensors: a hook, and the same task outcome in poke, reschedule and deferrable mode.

A wait ends Ready/Succeeded (success), never-ready or not-found (``AirflowFailException``), past its
deadline (``AirflowSensorTimeout``) or without an answer after the hook's retries (a failure to retry).
``soft_fail`` turns the first failures into a skip in every mode — the deferrable first check included —
and never the last: the service may answer again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_arr._compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    conf,
)
from airflow_provider_arr.exceptions import RemoteRenderingWaitInterruptedError

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger

    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook


def wait_deadline(timeout: float, execution_timeout: timedelta | None) -> float:
    """The absolute end (UNIX time) of a deferred wait: the nearer of ``timeout`` and ``execution_timeout``.

    Airflow does not enforce ``execution_timeout`` while a task is deferred, so the trigger must.
    """
    seconds = float(timeout)
    if execution_timeout is not None:
        seconds = min(seconds, execution_timeout.total_seconds())
    return time.time() + seconds


class RemoteRenderingBaseSensor(BaseSensorOperator):
    """A hook for :attr:`arr_conn_id`, the deferrable first check and hand-over, and the event outcomes.

    Subclasses give :meth:`poke`, :meth:`make_trigger` and :attr:`validate_event`.

    :param arr_conn_id: the Airflow connection id. (templated)
    :param deferrable: wait in the triggerer instead of the worker.
    """

    #: Checks a trigger event (``triggers/events.py``); raises on anything odd.
    validate_event: Callable[[Any], dict[str, Any]]

    def __init__(
        self,
        *,
        arr_conn_id: str = "arr_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.arr_conn_id = arr_conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> RemoteRenderingHook:
        """The hook for :attr:`arr_conn_id` (imported lazily to keep DAG parsing cheap)."""
        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

        return RemoteRenderingHook(arr_conn_id=self.arr_conn_id)

    def make_trigger(self, end_time: float) -> BaseTrigger:
        """The trigger that waits for the rest, until ``end_time`` (UNIX time)."""
        raise NotImplementedError

    #: The end of the wait (UNIX time) that a poke's read in flight is abandoned at (see ``read_bound``).
    read_deadline: float | None = None

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            self.read_deadline = self._poke_deadline(context)
            return super().execute(context)
        end_time = self.read_deadline = wait_deadline(self.timeout, self.execution_timeout)
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
        trigger = self.make_trigger(end_time)
        self.defer(trigger=trigger, method_name="execute_complete", timeout=None)

    def _poke_deadline(self, context: Context) -> float:
        """When ``timeout`` ends, as Airflow counts it: from this run's start or a rescheduled first try.

        A read still in flight then is abandoned (issue 18, rule 3): the sensor times out at its deadline
        (plus the last look's grace), not when a hung or retried read gives up.
        """
        started = time.time()
        if self.reschedule:
            try:
                first = context["ti"].get_first_reschedule_date(context)
            except (KeyError, AttributeError):
                first = None
            if first is not None:
                started = first.timestamp()
        return started + float(self.timeout)

    def timed_out(self, noun: str, item_id: str, error: Exception) -> AirflowSensorTimeout:
        """The outcome of a poke whose read was abandoned at the deadline, as Airflow's own timeout."""
        return AirflowSensorTimeout(
            f"{noun} {item_id}: the wait timed out while a read was in flight ({error})"
        )

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Resume after the trigger; a service outage is a failure to retry, never a ``soft_fail`` skip."""
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSkipException as skip:
            if self.soft_fail and isinstance(skip.__cause__, RemoteRenderingWaitInterruptedError):
                raise skip.__cause__ from None
            raise

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger: return the properties on success, else fail as a poke would."""
        event = self.validate_event(event)
        status = event["status"]
        if status == "success":
            self.log.info("%s", event["message"])
            return dict(event["properties"])
        if status == "failed":
            raise AirflowFailException(event["message"])
        if status == "timeout":
            raise AirflowSensorTimeout(event["message"])
        raise RemoteRenderingWaitInterruptedError(event["message"])
