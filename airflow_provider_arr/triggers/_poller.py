"""One shared poller per account and event loop: the triggerer's waits of one account, one list call each.

N deferrable waits reading their own session every interval cost N requests per interval, and the
service throttles (HTTP 429) well before N = 1,000. Here the waits of one account on one event loop
register with one :class:`SharedPoller`, which lists the account's sessions (or, on 2021-01-01,
conversions) once per interval, every page, and hands each wait the answer for its own resource: the
listed properties; or, for one missing from the list (a session that has ended), a Ready session listed
without a hostname and a failed conversion (for its own ``MS-CV``), a read of its own; or the list's
error after the hook's retries, as the wait's own read would have got it.

**The poller only fetches.** Each wait logs and decides in its own coroutine (``_shared_waits.py``,
awaited in the trigger's ``run()``): Airflow's triggerer routes a line to a task's log by the asyncio
context of the trigger that emitted it. The hook's own lines during a shared call (a retry after a 429
or a 503) are handed to every wait too (:class:`Notice`), which logs them. The poller's task runs in an
empty context: it belongs to no trigger, and cancelling the trigger that started it does not stop it
(its last wait leaving does).

The interval is the shortest any registered wait asked for; a wait whose deadline falls between two
polls gets one more poll at its deadline (the "one last look" a wait of its own took). A 429 on the list
is retried by the hook's policy (``Retry-After``), so every wait backs off together. "Same account" means
the same connection settings, compared with the account key hashed, never in clear.

**Bounded (issue 18, rule 3).** A list call reads at most ``MAX_LIST_PAGES`` pages and never one twice
(``paging.PageWalk``); each wait stops waiting for an answer at its own deadline (plus the last look's
grace, ``base.abandon_at``) even while a poll is in flight, hung or failing; and the waits its listing
answers are answered before the reads of their own that others need, each as it ends.
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

from airflow_provider_arr.exceptions import RemoteRenderingDeadlineError, RemoteRenderingError
from airflow_provider_arr.hooks.dialects import Dialect
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.hooks.settings import ConnectionSettings
from airflow_provider_arr.hooks.steps import Steps, abandon_at
from airflow_provider_arr.hooks.transport import Logger

__all__ = [
    "NoAnswerByDeadline",
    "Notice",
    "PolledKind",
    "SharedPoller",
    "active_pollers",
    "poller_key",
    "registered",
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
class PolledKind:
    """What is polled: how to list it, read one, and which listed answers need a read of their own."""

    name: str
    list_steps: Callable[[Dialect, Logger], Steps[list[Any]]]
    item_id: Callable[[Any], str]
    read: Callable[[Dialect, str], Steps[Any]]
    listed_answer: Callable[[Any], Any]
    needs_own_read: Callable[[Any], bool]


@dataclass(eq=False)
class _Waiter:
    """One wait: its resource, interval and deadline, and the answers the poller hands it."""

    item_id: str
    poll_interval: float
    end_time: float
    kind_name: str = "sessions"
    inbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue, repr=False)
    #: Answers handed to the wait and not yet taken: a wait with one pending needs no new one (a slow
    #: triggerer must not make a poll read an ended session twice, or queue stale answers).
    unread: int = 0

    def hand(self, answer: Any) -> None:
        """Queue an answer (listed properties, a read of its own, or an error) for the wait."""
        self.unread += 1
        self.inbox.put_nowait(answer)

    async def next_answer(self, log: Logger) -> Any:
        """The next poll's answer for this wait; log the hook's notices on the way; raise its error.

        :raises NoAnswerByDeadline: none came by :func:`abandon_at` of the wait's deadline: a poll still
            in flight (a hung or endless call) does not hold this wait, whatever it does to the others.
        """
        try:
            async with asyncio.timeout(abandon_at(self.end_time) - time.time()):
                while True:
                    item = await self.inbox.get()
                    if isinstance(item, Notice):
                        getattr(log, item.level)(item.event, *item.args)
                        continue
                    self.unread -= 1
                    if isinstance(item, BaseException):
                        raise item.with_traceback(None)  # one error, many waits: no traceback grows per raise
                    return item
        except TimeoutError:
            raise NoAnswerByDeadline(
                f"list_{self.kind_name}", service_message="the shared poll did not answer by the deadline"
            ) from None


class NoAnswerByDeadline(RemoteRenderingDeadlineError):
    """A wait's deadline passed while the poll that would answer it was still in flight."""


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


class _OnceLog:
    """The triggerer's own log, each distinct line once (a foreign item is skipped at every poll)."""

    def __init__(self) -> None:
        self._said: set[tuple[Any, ...]] = set()

    def debug(self, event: Any, *args: Any) -> None:
        _log.debug(event, *args)

    def info(self, event: Any, *args: Any) -> None:
        _log.info(event, *args)

    def warning(self, event: Any, *args: Any) -> None:
        if (event, *args) not in self._said and len(self._said) < 100:
            self._said.add((event, *args))
            _log.warning(event, *args)


class SharedPoller:
    """Lists one account's sessions (or conversions) every interval and hands each wait its answer.

    :param key: ``(kind, poller_key(settings))``.
    :param hook: a hook on the account (settings loaded); the poller owns it and closes it when it stops.
    """

    def __init__(self, key: PollerKey, kind: PolledKind, hook: RemoteRenderingHook, dialect: Dialect) -> None:
        self.key = key
        self.kind = kind
        self._hook = hook
        hook.log_to(_Broadcast(self))
        self._dialect = dialect
        self._waiters: set[_Waiter] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._reads: dict[str, asyncio.Task[None]] = {}  # reads of their own in flight, by item id
        self._last_poll = 0.0  # time.monotonic() when the latest poll began
        self._last_poll_wall = 0.0  # and time.time() then: deadlines up to it have had their last look
        self._next_poll = 0.0  # time.monotonic() when the next one is planned
        self._list_log = _OnceLog()  # skipped foreign items: once in the triggerer's log, not per poll
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
            if isinstance(item, Notice):
                waiter.inbox.put_nowait(item)
            else:
                waiter.hand(item)

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
            for read in list(self._reads.values()):
                read.cancel()
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
        """List; answer every wait its listing answers; start the reads of their own others need.

        Those reads run beside the polls (one per item at a time), each answering its waits as it ends:
        a read that hangs or fails for one wait holds neither the other waits nor the next poll (and
        each wait's deadline holds anyway: :meth:`_Waiter.next_answer`).
        """
        kind = self.kind
        try:
            listed = await self._hook._arun(kind.list_steps(self._dialect, self._list_log))
        except Exception as error:  # after the hook's retries: what each wait's own read would have got
            self.notify(error)
            return
        answers: dict[str, Any] = {kind.item_id(item): kind.listed_answer(item) for item in listed}
        alone = set()
        for waiter in list(self._waiters):  # waits registered during the call are answered by it too
            if waiter.unread:
                continue  # it has not taken the last answer yet (the triggerer is busy): nothing new
            if kind.needs_own_read(answers.get(waiter.item_id)):
                alone.add(waiter.item_id)
            else:
                waiter.hand(answers[waiter.item_id])
        for item_id in sorted(alone - set(self._reads)):
            self._reads[item_id] = asyncio.get_running_loop().create_task(self._read(item_id))

    async def _read(self, item_id: str) -> None:
        try:
            answer = await self._hook._arun(self.kind.read(self._dialect, item_id))
        except Exception as error:
            answer = error
        finally:
            self._reads.pop(item_id, None)
        for waiter in list(self._waiters):
            if waiter.item_id == item_id:
                waiter.hand(answer)


#: The pollers of each event loop, by key.
_pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[PollerKey, SharedPoller]] = (
    weakref.WeakKeyDictionary()
)


def active_pollers() -> list[SharedPoller]:
    """The pollers running on the current event loop (tests and benchmarks look at them)."""
    return list(_pollers.get(asyncio.get_running_loop(), {}).values())


@contextlib.asynccontextmanager
async def registered(
    kind: PolledKind,
    hook: RemoteRenderingHook,
    dialect: Dialect,
    item_id: str,
    interval: float,
    end_time: float,
) -> AsyncIterator[_Waiter]:
    """The wait, registered with its account's poller (made with ``hook`` if there is none) until it ends."""
    waiter = _Waiter(item_id, float(interval), float(end_time), kind.name)
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
