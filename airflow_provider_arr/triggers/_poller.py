"""One shared poller per account and event loop: the session waits of the triggerer, one list call each.

Every deferrable wait used to read its own session every poll interval: N waits on one account cost N
requests per interval, and the service throttles (HTTP 429) well before N = 1,000. Here the waits of
one account on one event loop register with one :class:`SessionPoller`, which lists the account's
sessions once per interval (every page) and answers them all from that list:

- a listed session answers its waits with the listed properties (Ready: success; Stopping: failed;
  Starting: wait on, unless the wait's deadline passed);
- a session missing from the list has ended (the list shows active sessions only): it alone is read
  on its own, for its final status and message (a 404 there is the same error a wait's own read gave);
- a Ready session listed without a hostname (a dialect whose list leaves it out) is read on its own.

The interval is the shortest any registered wait asked for; a wait whose deadline falls between two
polls gets one more poll at its deadline (the "one last look" a wait of its own took). A 429 on the list
is retried by the hook's policy (``Retry-After``), so every wait backs off together; a list that fails
after the retries fails each wait with that error, as its own read would have. The poller starts with its
first wait and stops (closing its hook) when its last wait leaves: answered, or cancelled.

"Same account" means the same connection settings; they are compared with the account key hashed, as
the token cache does, never in clear.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_arr.exceptions import (
    RemoteRenderingError,
    RemoteRenderingSessionNeverReadyError,
    RemoteRenderingWaitTimeoutError,
)
from airflow_provider_arr.hooks.dialects import Dialect
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.hooks.sessions import get_steps, list_steps
from airflow_provider_arr.hooks.settings import ConnectionSettings
from airflow_provider_arr.hooks.transport import Logger
from airflow_provider_arr.models import (
    SessionProperties,
    SessionStatus,
    never_ready_message,
)

__all__ = ["SessionPoller", "active_pollers", "poller_key", "wait_until_ready"]

#: Connection settings with the account key replaced by its SHA-256: what tells two accounts apart.
PollerKey = tuple[Any, ...]


def poller_key(settings: ConnectionSettings) -> PollerKey:
    """The settings as a tuple, the account key hashed (every field counts: URLs, dialect, retries)."""
    hashed = hashlib.sha256(settings.account_key.encode()).hexdigest()
    return dataclasses.astuple(dataclasses.replace(settings, account_key=hashed))


@dataclass(eq=False)
class _Waiter:
    """One wait: its session, interval, deadline, the trigger's logger and the outcome to settle."""

    session_id: str
    poll_interval: float
    end_time: float
    log: Logger
    outcome: asyncio.Future[SessionProperties] = field(repr=False)


class SessionPoller:
    """Lists one account's sessions every interval and settles the waits registered with it.

    :param key: its :func:`poller_key`.
    :param hook: a hook on the account (settings loaded); the poller owns it and closes it when it stops.
    :param dialect: the account's dialect.
    """

    def __init__(self, key: PollerKey, hook: RemoteRenderingHook, dialect: Dialect) -> None:
        self.key = key
        self._hook = hook
        self._dialect = dialect
        self._waiters: set[_Waiter] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._last_poll = 0.0  # time.monotonic() when the latest poll began
        self._next_poll = 0.0  # and when the next one is planned
        #: Polls begun and finished so far (each is one list call per page, plus a read per session
        #: missing from the list); tests and benchmarks count them.
        self.polls = 0
        self.polls_done = 0

    @property
    def waiting(self) -> int:
        """How many waits are registered."""
        return len(self._waiters)

    def add(self, waiter: _Waiter) -> None:
        """Register a wait; the first one starts the polling task."""
        self._waiters.add(waiter)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="arr-session-poller")
        due = min(self._last_poll + waiter.poll_interval, time.monotonic() + waiter.end_time - time.time())
        if due < self._next_poll:
            self._wake.set()  # a shorter interval or an earlier deadline moves the next poll

    def remove(self, waiter: _Waiter) -> None:
        """Unregister a wait (answered or cancelled); the last one out stops the poller."""
        if waiter not in self._waiters:
            return
        self._waiters.discard(waiter)
        if not self._waiters:
            self._stop()

    def _stop(self) -> None:
        """Leave the registry at once (a new wait gets a new poller) and end the polling task."""
        pollers = _pollers.get(asyncio.get_running_loop())
        if pollers is not None and pollers.get(self.key) is self:
            del pollers[self.key]
        self._wake.set()
        task = self._task
        if task is not None and task is not asyncio.current_task() and not self._closing:
            task.cancel()  # it may be in a list call, or backing off a 429: nobody waits for it now

    # ---------------------------------------------------------------- the polling task

    async def _run(self) -> None:
        try:
            while self._waiters:
                self._last_poll = time.monotonic()
                await self._poll()
                await self._pause(self._last_poll)
        except Exception as error:  # a bug, not an answer: every wait hears of it, none hangs
            for waiter in list(self._waiters):
                self._settle(waiter, error=error)
        finally:
            self._closing = True
            if self._waiters:  # cancelled from outside (the loop is shutting down): none may hang
                stopped = RemoteRenderingError("get_session", service_message="the session poller stopped")
                for waiter in list(self._waiters):
                    self._settle(waiter, error=stopped)
            await asyncio.shield(self._hook.aclose())

    async def _pause(self, started: float) -> None:
        """Sleep until the next interval or the earliest deadline; a new or leaving wait re-plans it."""
        while self._waiters:
            interval = min(waiter.poll_interval for waiter in self._waiters)
            to_deadline = min(waiter.end_time for waiter in self._waiters) - time.time()
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
        """One list (every page), then one read per wait whose session is not in it."""
        self.polls += 1
        try:
            await self._poll_and_answer()
        finally:
            self.polls_done += 1

    async def _poll_and_answer(self) -> None:
        try:
            listed = await self._hook._arun(list_steps(self._dialect))
        except Exception as error:  # after the hook's retries: what each wait's own read would have got
            for waiter in list(self._waiters):
                self._settle(waiter, error=error)
            return
        by_id: dict[str, SessionProperties | BaseException] = {p.session_id: p for p in listed}
        waiters = list(self._waiters)  # waits registered during the call are answered by it too
        alone = sorted(
            {waiter.session_id for waiter in waiters if _needs_own_read(by_id.get(waiter.session_id))}
        )
        if alone:
            reads = await asyncio.gather(*(self._read(session_id) for session_id in alone))
            by_id.update((session_id, read) for session_id, read in zip(alone, reads, strict=True))
        for waiter in waiters:
            if waiter in self._waiters:
                self._answer(waiter, by_id[waiter.session_id])

    async def _read(self, session_id: str) -> SessionProperties | BaseException:
        try:
            return await self._hook._arun(get_steps(self._dialect, session_id))
        except Exception as error:
            return error

    def _answer(self, waiter: _Waiter, answer: SessionProperties | BaseException) -> None:
        if isinstance(answer, BaseException):
            self._settle(waiter, error=answer)
            return
        properties = answer
        waiter.log.info("%s", properties.describe())
        if properties.status == SessionStatus.READY:
            self._settle(waiter, result=properties)
        elif properties.status != SessionStatus.STARTING:
            error = RemoteRenderingSessionNeverReadyError(never_ready_message(properties), properties)
            self._settle(waiter, error=error)
        elif waiter.end_time - time.time() <= 0:
            message = f"Session {waiter.session_id} was still Starting when the wait timed out"
            self._settle(waiter, error=RemoteRenderingWaitTimeoutError(message, properties))

    def _settle(
        self,
        waiter: _Waiter,
        result: SessionProperties | None = None,
        error: BaseException | None = None,
    ) -> None:
        if not waiter.outcome.done():
            if error is not None:
                waiter.outcome.set_exception(error)
            else:
                waiter.outcome.set_result(result)  # type: ignore[arg-type]
        self.remove(waiter)


def _needs_own_read(listed: SessionProperties | BaseException | None) -> bool:
    """Missing from the list (it ended), or Ready without the hostname the event carries."""
    if not isinstance(listed, SessionProperties):
        return True
    return listed.status == SessionStatus.READY and not listed.hostname


#: The pollers of each event loop, by :func:`poller_key`.
_pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[PollerKey, SessionPoller]] = (
    weakref.WeakKeyDictionary()
)


def active_pollers() -> list[SessionPoller]:
    """The pollers running on the current event loop (tests and benchmarks look at them)."""
    return list(_pollers.get(asyncio.get_running_loop(), {}).values())


async def wait_until_ready(
    arr_conn_id: str, session_id: str, poll_interval: float, end_time: float, log: Logger
) -> SessionProperties:
    """
    Wait, with the account's shared poller, until the session is Ready; the trigger's wait.

    Raises what :meth:`RemoteRenderingHook.await_until_ready` raises, for the same reasons.

    :param arr_conn_id: the Airflow connection id.
    :param session_id: the session to wait for.
    :param poll_interval: seconds between two polls (the poller uses the shortest of its waits').
    :param end_time: the deadline as a UNIX timestamp.
    :param log: where the wait's status lines go (the trigger's logger, so the task's log).
    """
    hook = RemoteRenderingHook(arr_conn_id)
    dialect = await hook.adialect()
    dialect.check_session_id(session_id)  # bad input fails before any HTTP, as a read of its own did
    loop = asyncio.get_running_loop()
    pollers = _pollers.setdefault(loop, {})
    key = poller_key(dialect.settings)
    poller = pollers.get(key)
    if poller is None:
        poller = pollers[key] = SessionPoller(key, hook, dialect)  # it takes this hook over
    waiter = _Waiter(session_id, float(poll_interval), float(end_time), log, loop.create_future())
    poller.add(waiter)
    try:
        return await waiter.outcome
    finally:
        poller.remove(waiter)
