"""The contract between the session trigger and the tasks that defer to it.

An event is a dict ``{"status", "message", "session_id", "last_status", "properties", "seen_at"}``;
``status`` is ``success`` (Ready; ``properties`` holds the session's properties), ``failed`` (Error,
Expired, Stopping or Stopped, or no longer known to the service: HTTP 404), ``timeout`` (the
deadline passed) or ``error`` (the service could not be asked, after the hook's retries). ``seen_at``
is when the last answer was read (UNIX time); it is optional, events of earlier versions lack it.
Every ``execute_complete`` checks an event with :func:`validate_event`, which fails closed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_arr._compat import AirflowException

if TYPE_CHECKING:
    from airflow_provider_arr.models import SessionProperties

#: The statuses a trigger event can have; anything else is refused by :func:`validate_event`.
EVENT_STATUSES = frozenset({"success", "failed", "timeout", "error"})
EVENT_KEYS = ("status", "message", "session_id", "last_status", "properties")
#: The keys of the conversion trigger's events.
CONVERSION_EVENT_KEYS = ("status", "message", "conversion_id", "last_status", "properties")


def validate_event(event: Any, keys: Sequence[str] = EVENT_KEYS, noun: str = "session") -> dict[str, Any]:
    """Check an event given to ``execute_complete``; raise instead of succeeding on anything odd.

    ``dag.test()`` and some triggerer failures resume a task with ``event=None``: that must fail the
    task, never pass it silently.

    :param event: the ``event`` keyword argument of ``execute_complete``.
    :param keys: the keys the event must have (:data:`EVENT_KEYS`, :data:`CONVERSION_EVENT_KEYS`).
    :param noun: what was waited for, for the messages.
    """
    if event is None:
        raise AirflowException(
            f"The task resumed without a trigger event (event=None); the {noun} wait did not finish."
        )
    if not isinstance(event, Mapping):
        raise AirflowException(f"The trigger event should be a dict, got {type(event).__name__}: {event!r}")
    missing = [key for key in keys if key not in event]
    if missing:
        raise AirflowException(f"The trigger event lacks the key(s) {', '.join(missing)}: {dict(event)!r}")
    if event["status"] not in EVENT_STATUSES:
        raise AirflowException(
            f"The trigger event has an unknown status {event['status']!r} "
            f"(known: {', '.join(sorted(EVENT_STATUSES))})"
        )
    if event["status"] == "success" and not isinstance(event["properties"], Mapping):
        raise AirflowException(f"The trigger reported success without {noun} properties: {dict(event)!r}")
    return dict(event)


def validate_conversion_event(event: Any) -> dict[str, Any]:
    """:func:`validate_event` for the conversion trigger's events."""
    return validate_event(event, CONVERSION_EVENT_KEYS, "conversion")


def make_event(
    status: str, message: str, session_id: str, properties: SessionProperties | None = None
) -> dict[str, Any]:
    return {
        "status": status,
        "message": message,
        "session_id": session_id,
        "last_status": properties.status_text if properties else None,
        "properties": properties.to_dict() if properties else None,
        "seen_at": time.time(),
    }
