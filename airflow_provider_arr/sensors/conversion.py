"""The sensor that waits until an Azure Remote Rendering asset conversion has Succeeded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue

from airflow_provider_arr._compat import AirflowFailException, conf
from airflow_provider_arr.exceptions import (
    RemoteRenderingConversionNotFoundError,
    RemoteRenderingDeadlineError,
)
from airflow_provider_arr.models import ArrInputError
from airflow_provider_arr.sensors.base import RemoteRenderingBaseSensor
from airflow_provider_arr.triggers.events import validate_conversion_event

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_arr.triggers.conversion import RemoteRenderingConversionTrigger


class RemoteRenderingConversionSensor(RemoteRenderingBaseSensor):
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
        super().__init__(
            arr_conn_id=arr_conn_id,
            deferrable=deferrable,
            poke_interval=poke_interval,
            timeout=timeout,
            mode=mode,
            **kwargs,
        )
        self.conversion_id = conversion_id

    validate_event = staticmethod(validate_conversion_event)

    def _conversion_id(self) -> str:
        try:
            return self.hook.dialect.check_conversion_id(self.conversion_id)
        except ArrInputError as error:
            raise AirflowFailException(str(error)) from None

    def make_trigger(self, end_time: float) -> RemoteRenderingConversionTrigger:
        """The conversion trigger, for the rest of the wait."""
        from airflow_provider_arr.triggers.conversion import RemoteRenderingConversionTrigger

        return RemoteRenderingConversionTrigger(
            conversion_id=self._conversion_id(),
            arr_conn_id=self.arr_conn_id,
            poll_interval=float(self.poke_interval),
            end_time=end_time,
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        from airflow_provider_arr.hooks.conversions import conversion_failed_message, read_steps
        from airflow_provider_arr.models import ConversionStatus, unknown_status_note

        conversion_id = self._conversion_id()
        try:
            steps = read_steps(self.hook.dialect, conversion_id)
            properties, response = self.hook._run(steps, end_time=self.read_deadline)
        except RemoteRenderingConversionNotFoundError as error:
            raise AirflowFailException(f"Conversion {conversion_id} does not exist: {error}") from None
        except RemoteRenderingDeadlineError as error:
            raise self.timed_out("Conversion", conversion_id, error) from None
        self.log.info("Conversion %s is %s", conversion_id, properties.status_text)
        if properties.status.is_failed:
            raise AirflowFailException(conversion_failed_message(properties, response.ms_cv))
        if properties.status.is_terminal:
            return PokeReturnValue(is_done=True, xcom_value=properties.to_dict())
        if properties.status == ConversionStatus.UNKNOWN:
            text = properties.status_text
            self.log.warning("%s", unknown_status_note("Conversion", conversion_id, text, response.ms_cv))
        return False
