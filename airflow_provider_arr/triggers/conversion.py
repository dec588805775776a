"""The trigger that waits, in the triggerer, for an asset conversion to end.

It runs the hook's one conversion wait on the async path (``Retry-After`` honoured) and yields exactly
one event ``{"status", "message", "conversion_id", "last_status", "properties"}``: ``success``
(Succeeded; ``properties`` holds the conversion), ``failed`` (Failed or Cancelled; the message has the
service's words and the ``MS-CV``), ``timeout`` (the deadline passed; the conversion goes on) or
``error`` (the service could not be asked, after the hook's retries). The deadline is absolute
wall-clock time, so a triggerer restart does not reset it. There is no cancel call, so a killed task
leaves the conversion running.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_arr.exceptions import (
    RemoteRenderingConversionFailedError,
    RemoteRenderingError,
    RemoteRenderingWaitTimeoutError,
)
from airflow_provider_arr.models import ArrInputError, ConversionProperties
from airflow_provider_arr.triggers.events import (
    CONVERSION_EVENT_KEYS,
    EVENT_STATUSES,
    validate_conversion_event,
)

__all__ = [
    "CONVERSION_EVENT_KEYS",
    "CONVERSION_EVENT_STATUSES",
    "RemoteRenderingConversionTrigger",
    "validate_conversion_event",
]

#: Kept for code that imported it from here; the event contract is ``triggers/events.py``.
CONVERSION_EVENT_STATUSES = EVENT_STATUSES


def _event(status: str, message: str, conversion_id: str, properties: object | None = None) -> dict[str, Any]:
    known = properties if isinstance(properties, ConversionProperties) else None
    return {
        "status": status,
        "message": message,
        "conversion_id": conversion_id,
        "last_status": known.status.value if known else None,
        "properties": known.to_dict() if known else None,
    }


class RemoteRenderingConversionTrigger(BaseTrigger):
    """Wait until an asset conversion has Succeeded, has failed, or a deadline passes.

    :param conversion_id: the conversion to wait for.
    :param arr_conn_id: the Airflow connection id.
    :param poll_interval: seconds between two status reads (longer when the service's ``Retry-After``
        asks for it).
    :param end_time: the deadline as a UNIX timestamp (``time.time()`` clock).
    """

    def __init__(self, conversion_id: str, arr_conn_id: str, poll_interval: float, end_time: float) -> None:
        super().__init__()
        self.conversion_id = conversion_id
        self.arr_conn_id = arr_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = float(end_time)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the plain keyword arguments that rebuild this trigger."""
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "conversion_id": self.conversion_id,
            "arr_conn_id": self.arr_conn_id,
            "poll_interval": self.poll_interval,
            "end_time": self.end_time,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the conversion and yield exactly one event."""
        yield TriggerEvent(await self._wait())

    async def _wait(self) -> dict[str, Any]:
        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

        conversion_id = self.conversion_id
        try:
            async with RemoteRenderingHook(self.arr_conn_id) as hook:
                hook.log_to(self.log)
                done = await hook.await_conversion(conversion_id, self.poll_interval, self.end_time)
        except RemoteRenderingConversionFailedError as error:
            return _event("failed", str(error), conversion_id, error.properties)
        except RemoteRenderingWaitTimeoutError as error:
            return _event("timeout", str(error), conversion_id, error.properties)
        except (RemoteRenderingError, ArrInputError) as error:
            message = f"Could not read the status of conversion {conversion_id}: {error}"
            return _event("error", message, conversion_id)
        return _event("success", f"Conversion {conversion_id} Succeeded", conversion_id, done)
