"""The sensor that waits until an Azure Remote Rendering asset conversion has Succeeded."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException

from airflow_provider_arr.exceptions import (
    RemoteRenderingConversionNotFoundError,
    RemoteRenderingWaitInterruptedError,
)
from airflow_provider_arr.models import ArrInputError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook


class RemoteRenderingConversionSensor(BaseSensorOperator):
    """Wait until a conversion has Succeeded; its properties (``output_asset_uri``...) become the XCom value.

    Fails at once, without retries, when the conversion Failed or was Cancelled (with the service's
    message and the ``MS-CV``) or does not exist, and with ``AirflowSensorTimeout`` when ``timeout`` passes
    (the conversion goes on and is billed: there is no cancel call). The outcome is the same in
    ``poke``, ``reschedule`` and deferrable modes.

    :param conversion_id: the conversion's id. (templated)
    :param arr_conn_id: the Airflow connection id. (templated)
    :param poke_interval: seconds between two status reads.
    :param timeout: seconds to wait before failing.
    :param mode: ``poke`` or ``reschedule``.
    :param deferrable: wait in the triggerer instead of the worker.
    """

    template_fields: Sequence[str] = ("conversion_id", "arr_conn_id")

    def __init__(
        self,
        *,
        conversion_id: str,
        arr_conn_id: str = "arr_default",
        poke_interval: float = 10,
        timeout: float = 3 * 3600,
        mode: str = "poke",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, mode=mode, **kwargs)
        self.conversion_id = conversion_id
        self.arr_conn_id = arr_conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> RemoteRenderingHook:
        """The hook for :attr:`arr_conn_id` (imported lazily to keep DAG parsing cheap)."""
        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

        return RemoteRenderingHook(arr_conn_id=self.arr_conn_id)

    def _conversion_id(self) -> str:
        try:
            return self.hook.dialect.check_conversion_id(self.conversion_id)
        except ArrInputError as error:
            raise AirflowFailException(str(error)) from None

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        try:
            done = self.poke(context)
        except (AirflowFailException, AirflowSensorTimeout) as error:
            if self.soft_fail:
                raise AirflowSkipException("Skipping due to soft_fail is set to True.") from error
            raise
        if isinstance(done, PokeReturnValue):
            return done.xcom_value
        from airflow_provider_arr.sensors.remote_rendering import wait_deadline
        from airflow_provider_arr.triggers.conversion import RemoteRenderingConversionTrigger

        trigger = RemoteRenderingConversionTrigger(
            conversion_id=self._conversion_id(),
            arr_conn_id=self.arr_conn_id,
            poll_interval=float(self.poke_interval),
            end_time=wait_deadline(self.timeout, self.execution_timeout),
        )
        self.defer(trigger=trigger, method_name="execute_complete", timeout=None)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        from airflow_provider_arr.hooks.conversions import conversion_failed_message, read_steps

        conversion_id = self._conversion_id()
        try:
            properties, response = self.hook._run(read_steps(self.hook.dialect, conversion_id))
        except RemoteRenderingConversionNotFoundError as error:
            raise AirflowFailException(f"Conversion {conversion_id} does not exist: {error}") from None
        self.log.info("Conversion %s is %s", conversion_id, properties.status.value)
        if properties.status.is_failed:
            raise AirflowFailException(conversion_failed_message(properties, response.ms_cv))
        if properties.status.is_terminal:
            return PokeReturnValue(is_done=True, xcom_value=properties.to_dict())
        return False

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger: the conversion's properties once Succeeded, else fail."""
        from airflow_provider_arr.triggers.conversion import validate_conversion_event

        event = validate_conversion_event(event)
        status = event["status"]
        if status == "success":
            self.log.info("%s", event["message"])
            return dict(event["properties"])
        if status == "failed":
            raise AirflowFailException(event["message"])
        if status == "timeout":
            raise AirflowSensorTimeout(event["message"])
        raise RemoteRenderingWaitInterruptedError(event["message"])
