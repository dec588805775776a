"""The steps of a multi-request call, and the time bound of every wait (issue 18, rule 3).

A call that takes several requests is written once, as a generator of steps (:data:`Steps`): it yields a
:class:`~airflow_provider_arr.hooks.transport.Request` (and receives its answer, or has the call's error
thrown in) or a :class:`Pause`; the hook's drivers (``base.py``) run it sync or async.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_arr.exceptions import RemoteRenderingDeadlineError, RemoteRenderingError

if TYPE_CHECKING:  # the transport is imported when a request is sent, not when a DAG file is parsed
    from airflow_provider_arr.hooks.transport import Request, Response

T = TypeVar("T")


@dataclass(frozen=True)
class Pause:
    """A step that waits ``seconds`` before the next request (``time.sleep`` or ``asyncio.sleep``)."""

    seconds: float


#: A multi-request call: yields a :class:`Request` or a :class:`Pause`, receives the :class:`Response`.
Steps = Generator["Request | Pause", "Response | None", T]
#: What the last step came to: its answer, or the call's error (thrown into the steps).
Outcome = tuple["Response | None", RemoteRenderingError | None]


@dataclass(frozen=True)
class Finished:
    """The steps returned ``value``."""

    value: Any


def advance(steps: Steps[Any], outcome: Outcome) -> Request | Pause | Finished:
    """Hand the last outcome to the steps (an error is thrown in); return the next step, or the result."""
    answer, error = outcome
    try:
        return steps.throw(error) if error is not None else steps.send(answer)
    except StopIteration as done:
        return Finished(done.value)


#: Seconds a request that began at (or just before) a wait's deadline, the wait's last look, may take.
DEADLINE_GRACE = 2.0
#: How often a sync wait looks at ``cancel`` and its deadline while a request is in flight.
_SLICE = 0.05


def abandon_at(end_time: float) -> float:
    """When a request of a wait with deadline ``end_time`` is abandoned if it is still in flight.

    **Every wait is bounded by time (issue 18, rule 3)**, also while a request is in flight: at its
    deadline, or :data:`DEADLINE_GRACE` seconds after the request began if it began later than that
    before the deadline (the last look a wait takes at its deadline). So no wait ends later than
    ``end_time + DEADLINE_GRACE``, whatever the service does (hangs, retries, a page walk).

    :param end_time: the wait's deadline (UNIX time).
    """
    return max(end_time, time.time() + DEADLINE_GRACE)


def deadline_error(request: Request, end_time: float) -> RemoteRenderingDeadlineError:
    late = time.time() - end_time
    return RemoteRenderingDeadlineError(
        request.operation,
        service_message=f"no answer by the wait's deadline (abandoned {max(late, 0.0):.1f} s after it)",
    )
