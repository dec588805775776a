"""One shared poller per account and event loop: the triggerer's waits of one account, one list call each.

N deferrable waits reading their own session every interval cost N requests per interval, and the
service throttles (HTTP 429) well before N = 1,000. Here the waits of one account on one event loop
register with one :class:`SharedPoller`, which lists the account's sessions (or, on 2021-01-01,
conversions) once per interval, every page, and hands each wait the answer for its own resource: the
listed properties; or, for one missing from the list (a session that has ended), a Ready session listed
without a hostname and a failed conversion (for its own ``MS-CV``), a read of its own; or the list's
error after the hook's retries, as the wait's own read would have got it.

**The poller only fetches.** Each wait logs and decides in its own coroutine (:func:`wait_until_ready`,
:func:`wait_for_conversion`, awaited in the trigger's ``run()``): Airflow's triggerer routes a line to a
task's log by the asyncio context of the trigger that emitted it. The hook's own lines during a shared
call (a retry after a 429 or a 503) are handed to every wait too (:class:`Notice`), which logs them. The
poller's task runs in an empty context: it belongs to no trigger, and cancelling the trigger that started
it does not stop it (its last wait leaving does).

The interval is the shortest any registered wait asked for; a wait whose deadline falls between two
polls gets one more poll at its deadline (the "one last look" a wait of its own took). A 429 on the list
is retried by the hook's policy (``Retry-After``), so every wait backs off together. "Same account" means
the same connection settings, compared with the account key hashed, never in clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import hashlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_arr.exceptions import (
    RemoteRenderingConversionFailedError,
    RemoteRenderingError,
    RemoteRenderingSessionNeverReadyError,
    RemoteRenderingWaitTimeoutError,
)
from airflow_provider_arr.hooks import conversions, sessions
from airflow_provider_arr.hooks.base import Steps
from airflow_provider_arr.hooks.dialects import Dialect
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.hooks.settings import ConnectionSettings
from airflow_provider_arr.hooks.transport import Logger
from airflow_provider_arr.models import (
    ConversionProperties,
    ConversionStatus,
    SessionProperties,
    SessionStatus,
    never_ready_message,
)

__all__ = [
    "Notice",
    "SharedPoller",
    "active_pollers",
    "poller_key",
    "wait_for_conversion",
    "wait_until_ready",
]

_log = logging.getLogger(__name__)

#: Connection settings with the secrets (account key, client secret) hashed: what tells two accounts apart.
PollerKey = tuple[Any, ...]


def poller_key(settings: ConnectionSettings) -> PollerKey:
    """The settings as a tuple, the secrets hashed (every field counts: URLs, dialect, retries, identity)."""

    def hashed(secret: str | None) -> str | None:
        return hashlib.sha256(secret.encode()).hexdigest() if secret is not None else None

    return dataclasses.astuple(
        dataclasses.replace(
            settings,
            account_key=hashed(settings.account_key),
            client_secret=hashed(settings.client_secret),
        )
    )


@dataclass(frozen=True)
class Notice:
    """A line the hook logged during a shared call; every wait logs it with its own logger."""

    level: str  # the logger method: "info" or "warning"
    event: Any
    args: tuple[Any, ...]


@dataclass(frozen=True)
class _Kind:
    """What is polled: how to list it, read one, and which listed answers need a read of their own."""

    name: str
    list_steps: Callable[[Dialect], Steps[list[Any]]]
    item_id: Callable[[Any], str]
    read: Callable[[Dialect, str], Steps[Any]]
    listed_answer: Callable[[Any], Any]
    needs_own_read: Callable[[Any], bool]


def _read_conversion(dialect: Dialect, conversion_id: str) -> Steps[tuple[ConversionProperties, str | None]]:
    properties, response = yield from conversions.read_steps(dialect, conversion_id)
    return properties, response.ms_cv


_SESSIONS = _Kind(
    name="sessions",
    list_steps=sessions.list_steps,
    item_id=lambda listed: listed.session_id,
    read=sessions.get_steps,
    listed_answer=lambda listed: listed,
    # Missing (ended), or Ready without the hostname the event carries.
    needs_own_read=lambda answer: (
        not isinstance(answer, SessionProperties)
        or (answer.status == SessionStatus.READY and not answer.hostname)
    ),
)
_CONVERSIONS = _Kind(
    name="conversions",
    list_steps=conversions.list_steps,
    item_id=lambda listed: listed.conversion_id,
    read=_read_conversion,
    listed_answer=lambda listed: (listed, None),
    # Missing, or failed: its own answer gives the failure's MS-CV, as a wait of its own reported.
    needs_own_read=lambda answer: not isinstance(answer, tuple) or answer[0].status.is_failed,
)


@dataclass(eq=False)
class _Waiter:
    """One wait: its resource, interval and deadline, and the answers the poller hands it."""

    item_id: str
    poll_interval: float
    end_time: float
    inbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue, repr=False)

    async def next_answer(self, log: Logger) -> Any:
        """The next poll's answer for this wait; log the hook's notices on the way; raise its error."""
        while True:
            item = await self.inbox.get()
            if isinstance(item, Notice):
                getattr(log, item.level)(item.event, *item.args)
            elif isinstance(item, BaseException):
                raise item.with_traceback(None)  # one error, many waits: no traceback grows per raise
            else:
                return item


class _Broadcast:
    """The poller hook's logger: what a wait's own hook would have logged goes to every wait."""

    def __init__(self, poller: SharedPoller) -> None:
        self._poller = poller

    def debug(self, event: Any, *args: Any) -> None:
        _log.debug(event, *args)  # per-request lines: the triggerer's own log, not N task logs

    def info(self, event: Any, *args: Any) -> None:
        self._poller.notify(Notice("info", event, args))

    def warning(self, event: Any, *args: Any) -> None:
        self._poller.notify(Notice("warning", event, args))


class SharedPoller:
    """Lists one account's sessions (or conversions) every interval and hands each wait its answer.

    :param key: ``(kind, poller_key(settings))``.
    :param hook: a hook on the account (settings loaded); the poller owns it and closes it when it stops.
    """

    def __init__(self, key: PollerKey, kind: _Kind, hook: RemoteRenderingHook, dialect: Dialect) -> None:
        self.key = key
        self.kind = kind
        self._hook = hook
        hook.log_to(_Broadcast(self))
        self._dialect = dialect
        self._waiters: set[_Waiter] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._last_poll = 0.0  # time.monotonic() when the latest poll began
        self._last_poll_wall = 0.0  # and time.time() then: deadlines up to it have had their last look
        self._next_poll = 0.0  # time.monotonic() when the next one is planned
        #: Polls begun and finished (each: a list call per page, and the reads of its own); counted by tests.
        self.polls = self.polls_done = 0

    @property
    def waiting(self) -> int:
        """How many waits are registered."""
        return len(self._waiters)

    def add(self, waiter: _Waiter) -> None:
        """Register a wait; the first one starts the polling task (in a context of its own)."""
        self._waiters.add(waiter)
        if self._task is None:
            # An empty context: not the first trigger's (its log routing, its contextvars).
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"arr-shared-poller-{self.kind.name}", context=contextvars.Context()
            )
        due = min(self._last_poll + waiter.poll_interval, time.monotonic() + waiter.end_time - time.time())
        if due < self._next_poll:
            self._wake.set()  # a shorter interval or an earlier deadline moves the next poll

    def remove(self, waiter: _Waiter) -> None:
        """Unregister a wait (answered, or its trigger cancelled); the last one out stops the poller."""
        if waiter in self._waiters:
            self._waiters.discard(waiter)
            if not self._waiters:
                self._stop()

    def notify(self, item: Any) -> None:
        """Hand ``item`` (a :class:`Notice` or an error) to every registered wait."""
        for waiter in self._waiters:
            waiter.inbox.put_nowait(item)

    def _stop(self) -> None:
        """Leave the registry at once (a new wait gets a new poller) and end the polling task."""
        self._unregister()
        self._wake.set()
        task = self._task
        if task is not None and task is not asyncio.current_task() and not self._closing:
            task.cancel()  # it may be in a list call, or backing off a 429: nobody waits for it now

    async def _run(self) -> None:
        try:
            while self._waiters:
                self._last_poll = time.monotonic()
                await self._poll()
                await asyncio.sleep(0)  # the answered waits run (and those done leave) before planning
                await self._pause(self._last_poll)
        except Exception as error:  # a bug, not an answer: every wait hears of it, none hangs
            _log.exception("Shared %s poller failed", self.kind.name)
            self.notify(error)
        finally:
            self._closing = True
            self._unregister()  # a new wait must not join a poller that no longer polls
            if self._waiters:  # cancelled from outside (the loop is shutting down): none may hang
                self.notify(RemoteRenderingError(f"list_{self.kind.name}", service_message="poller stopped"))
            await asyncio.shield(self._hook.aclose())

    def _unregister(self) -> None:
        pollers = _pollers.get(asyncio.get_running_loop())
        if pollers is not None and pollers.get(self.key) is self:
            del pollers[self.key]

    async def _pause(self, started: float) -> None:
        """Sleep until the next interval or the earliest deadline; a new or leaving wait re-plans it."""
        while self._waiters:
            interval = min(waiter.poll_interval for waiter in self._waiters)
            ahead = [w.end_time for w in self._waiters if w.end_time > self._last_poll_wall]
            to_deadline = min(ahead) - time.time() if ahead else interval
            now = time.monotonic()
            delay = min(started + interval - now, to_deadline)
            self._next_poll = now + delay
            if delay <= 0:
                return
            self._wake.clear()
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                return

    async def _poll(self) -> None:
        """One list (every page), then one read per wait whose resource needs its own."""
        self.polls += 1
        self._last_poll_wall = time.time()
        try:
            await self._poll_and_answer()
        finally:
            self.polls_done += 1

    async def _poll_and_answer(self) -> None:
        kind = self.kind
        try:
            listed = await self._hook._arun(kind.list_steps(self._dialect))
        except Exception as error:  # after the hook's retries: what each wait's own read would have got
            self.notify(error)
            return
        answers: dict[str, Any] = {kind.item_id(item): kind.listed_answer(item) for item in listed}
        waiters = list(self._waiters)  # waits registered during the call are answered by it too
        alone = sorted({w.item_id for w in waiters if kind.needs_own_read(answers.get(w.item_id))})
        if alone:
            reads = await asyncio.gather(*(self._read(item_id) for item_id in alone))
            answers.update(zip(alone, reads, strict=True))
        for waiter in waiters:
            if waiter in self._waiters:
                waiter.inbox.put_nowait(answers[waiter.item_id])

    async def _read(self, item_id: str) -> Any:
        try:
            return await self._hook._arun(self.kind.read(self._dialect, item_id))
        except Exception as error:
            return error


#: The pollers of each event loop, by key.
_pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[PollerKey, SharedPoller]] = (
    weakref.WeakKeyDictionary()
)


def active_pollers() -> list[SharedPoller]:
    """The pollers running on the current event loop (tests and benchmarks look at them)."""
    return list(_pollers.get(asyncio.get_running_loop(), {}).values())


@contextlib.asynccontextmanager
async def _registered(
    kind: _Kind, hook: RemoteRenderingHook, dialect: Dialect, item_id: str, interval: float, end_time: float
) -> AsyncIterator[_Waiter]:
    """The wait, registered with its account's poller (made with ``hook`` if there is none) until it ends."""
    waiter = _Waiter(item_id, float(interval), float(end_time))
    pollers = _pollers.setdefault(asyncio.get_running_loop(), {})
    key = (kind.name, *poller_key(dialect.settings))
    poller = pollers.get(key)
    if poller is None:  # no await between the look-up and add(): the poller cannot stop in between
        poller = pollers[key] = SharedPoller(key, kind, hook, dialect)
    poller.add(waiter)
    try:
        if poller._hook is not hook:
            await hook.aclose()  # never used: the poller has its own
        yield waiter
    finally:
        poller.remove(waiter)


async def _account(arr_conn_id: str, check: Callable[[Dialect], Any]) -> tuple[RemoteRenderingHook, Dialect]:
    """A hook with its settings loaded, and the id checked by ``check`` (bad input fails before any HTTP)."""
    hook = RemoteRenderingHook(arr_conn_id)
    try:
        dialect = await hook.adialect()
        check(dialect)
    except BaseException:
        await hook.aclose()
        raise
    return hook, dialect


async def wait_until_ready(
    arr_conn_id: str, session_id: str, poll_interval: float, end_time: float, log: Logger
) -> SessionProperties:
    """
    Wait, with the account's shared poller, until the session is Ready: the trigger's wait.

    It logs and decides as :func:`~airflow_provider_arr.hooks.sessions.wait_ready_steps` does, line for
    line, in the caller's coroutine (so the lines reach the trigger's task log), and raises what
    :meth:`RemoteRenderingHook.await_until_ready` raises, for the same reasons.

    :param end_time: the deadline as a UNIX timestamp.
    :param log: the trigger's logger.
    """
    hook, dialect = await _account(arr_conn_id, lambda dialect: dialect.check_session_id(session_id))
    async with _registered(_SESSIONS, hook, dialect, session_id, poll_interval, end_time) as waiter:
        while True:
            properties: SessionProperties = await waiter.next_answer(log)
            log.info("%s", properties.describe())
            if properties.status == SessionStatus.READY:
                return properties
            if properties.status != SessionStatus.STARTING:
                raise RemoteRenderingSessionNeverReadyError(never_ready_message(properties), properties)
            if end_time - time.time() <= 0:
                raise RemoteRenderingWaitTimeoutError(
                    f"Session {session_id} was still Starting when the wait timed out", properties
                )


async def wait_for_conversion(
    arr_conn_id: str, conversion_id: str, poll_interval: float, end_time: float, log: Logger
) -> ConversionProperties:
    """
    Wait until the conversion has ended; with the shared poller where the API lists conversions.

    On 2021-01-01 it logs and decides as :func:`~airflow_provider_arr.hooks.conversions.wait_steps`
    does, in the caller's coroutine; on v1, which cannot list conversions, it is that wait (one read
    per interval). Raises what :meth:`RemoteRenderingHook.await_conversion` raises.
    """
    hook, dialect = await _account(
        arr_conn_id, lambda dialect: dialect.lists_conversions and dialect.check_conversion_id(conversion_id)
    )
    if not dialect.lists_conversions:
        async with hook:
            hook.log_to(log)  # the poll lines belong in the task's log
            return await hook.await_conversion(conversion_id, poll_interval, end_time)
    async with _registered(_CONVERSIONS, hook, dialect, conversion_id, poll_interval, end_time) as waiter:
        while True:
            properties, ms_cv = await waiter.next_answer(log)
            log.info("Conversion %s is %s", conversion_id, properties.status.value)
            if properties.status == ConversionStatus.SUCCEEDED:
                return properties
            if properties.status.is_failed:
                message = conversions.conversion_failed_message(properties, ms_cv)
                raise RemoteRenderingConversionFailedError(message, properties)
            if end_time - time.time() <= 0:
                raise RemoteRenderingWaitTimeoutError(
                    f"Conversion {conversion_id} was still {properties.status.value} when the wait timed "
                    "out. " + conversions.STILL_RUNNING,
                    properties,
                )
