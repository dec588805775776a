"""The trigger that waits, in the triggerer, for an asset conversion to end.

On 2021-01-01 the conversion waits of one account on one event loop share one poller (``_poller.py``):
one list call per poll interval answers all of them; each trigger logs and decides in its own ``run()``.
On v1, which cannot list conversions, it runs the hook's one conversion wait on the async path
(``Retry-After`` honoured). It yields exactly
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
    RemoteRenderingConversionNotFoundError,
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
        "last_status": known.status_text if known else None,
        "properties": known.to_dict() if known else None,
    }


class RemoteRenderingConversionTrigger(BaseTrigger):
    """Wait until an asset conversion has Succeeded, has failed, or a deadline passes.

    :param conversion_id: the conversion to wait for.
    :param arr_conn_id: the Airflow connection id.
    :param poll_interval: seconds between two status reads (longer when the service's ``Retry-After``
        asks for it).
    :param end_time: the deadline as a UNIX timestamp (``time.time()`` clock).
    :param shared_poll: on 2021-01-01, wait with the account's shared poller (the default); ``False``
        reads this conversion on its own every ``poll_interval``. v1 always reads its own.
    """

    def __init__(
        self,
        conversion_id: str,
        arr_conn_id: str,
        poll_interval: float,
        end_time: float,
        shared_poll: bool = True,
    ) -> None:
        super().__init__()
        self.conversion_id = conversion_id
        self.arr_conn_id = arr_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = float(end_time)
        self.shared_poll = bool(shared_poll)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the plain keyword arguments that rebuild this trigger."""
        kwargs: dict[str, Any] = {
            "conversion_id": self.conversion_id,
            "arr_conn_id": self.arr_conn_id,
            "poll_interval": self.poll_interval,
            "end_time": self.end_time,
        }
        if not self.shared_poll:
            kwargs["shared_poll"] = False
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the conversion and yield exactly one event."""
        yield TriggerEvent(await self._wait())

    async def _wait(self) -> dict[str, Any]:
        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
        from airflow_provider_arr.triggers._shared_waits import wait_for_conversion

        conversion_id = self.conversion_id
        try:
            if self.shared_poll:  # the status lines go to self.log, so to the task's log
                done = await wait_for_conversion(
                    self.arr_conn_id, conversion_id, self.poll_interval, self.end_time, self.log
                )
            else:
                async with RemoteRenderingHook(self.arr_conn_id) as hook:
                    hook.log_to(self.log)
                    done = await hook.await_conversion(conversion_id, self.poll_interval, self.end_time)
        except RemoteRenderingConversionFailedError as error:
            return _event("failed", str(error), conversion_id, error.properties)
        except RemoteRenderingWaitTimeoutError as error:
            return _event("timeout", str(error), conversion_id, error.properties)
        except RemoteRenderingConversionNotFoundError as error:  # gone while waiting: as a poke finds it
            return _event("failed", f"Conversion {conversion_id} does not exist: {error}", conversion_id)
        except (RemoteRenderingError, ArrInputError) as error:
            message = f"Could not read the status of conversion {conversion_id}: {error}"
            return _event("error", message, conversion_id)
        return _event("success", f"Conversion {conversion_id} Succeeded", conversion_id, done)
