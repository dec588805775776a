"""One shared ``httpx.AsyncClient`` per event loop, and the rule that it ends with its loop.

The async transport (``transport.py``) takes its loop's client here and gives it back; this module
decides when a client is closed (see :class:`_AsyncClients`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections import deque
from collections.abc import AsyncGenerator

#: Requests in flight at once on one event loop's shared client (all hosts together); more wait in turn.
#: 20 carry 200 polls a second at 100 ms each: 1,000 sessions polled every 5 s. httpcore's pool scans
#: every connection on every request, so a bigger pool costs CPU on each poll (tests/benchmarks).
ASYNC_MAX_CONNECTIONS = 20
#: Idle connections the shared client keeps open: all of them (httpcore closes an idle connection
#: whenever the pool holds more connections than this, busy ones included).
ASYNC_MAX_KEEPALIVE = ASYNC_MAX_CONNECTIONS


class SharedAsyncClient:
    """An ``httpx.AsyncClient`` for one event loop, and the slots that bound the requests in flight.

    httpcore's pool does work proportional to (queued requests x connections) on every request
    event; letting only as many requests into it as it has connections keeps that cost flat when
    thousands of triggers poll at once.
    """

    def __init__(self) -> None:
        import httpx

        self.client = httpx.AsyncClient(
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=ASYNC_MAX_CONNECTIONS, max_keepalive_connections=ASYNC_MAX_KEEPALIVE
            ),
        )
        self.slots = asyncio.Semaphore(ASYNC_MAX_CONNECTIONS)
        self.users = 0
        self.closed = False
        #: The async generator whose ``finally`` closes this client when its loop shuts down.
        self.sentinel: AsyncGenerator[None, None] | None = None

    async def aclose(self) -> None:
        """Close the client and its connections (once)."""
        if not self.closed:
            self.closed = True
            await self.client.aclose()

    def shut_sockets(self) -> None:
        """End the connections of a client whose event loop is closed, so ``aclose`` cannot run.

        Each socket is shut down (the server sees the connection end at once); the file descriptor goes
        with the transport when it is collected. This reaches into httpx/httpcore's pool (best effort: a
        layout it does not know is skipped).
        """
        self.closed = True
        pool = getattr(getattr(self.client, "_transport", None), "_pool", None)
        for connection in list(getattr(pool, "connections", ())):
            stream = getattr(getattr(connection, "_connection", None), "_network_stream", None)
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    async def acquire_slot(self, timeout: float) -> None:
        """Wait for a free slot, at most ``timeout`` seconds (httpx's pool timeout), then take it."""
        if not self.slots.locked():
            await self.slots.acquire()
            return
        import httpx

        try:
            async with asyncio.timeout(timeout):
                await self.slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout(f"no free connection within {timeout:g} s") from None


class _AsyncClients:
    """One :class:`SharedAsyncClient` per event loop, shared by the hooks on it.

    A client costs an SSL context (about 1 MB and up to 0.1 s of CPU), and a triggerer may
    run thousands of triggers on one loop: sharing one client keeps that cost, and the number of open
    connections, independent of the number of waits. Timeouts are set per request.

    Rule 8 of issue 18, "clients end with their loop": no client outlives its loop or its last hook.

    - Its last hook releases it (``aclose``, a move to another loop, or the hook's garbage collection):
      it is closed on its loop if that loop runs, and its sockets are shut at once if it does not.
    - Its loop shuts down (``asyncio.run``, or ``loop.shutdown_asyncgens()``): a sentinel async generator
      started on that loop closes it there, whoever still holds it.
    - Its loop was closed without that: its sockets are shut when the registry is next touched
      (any acquire or release, from any loop or a hook's finalizer).

    A hook's finalizer runs wherever the garbage collector happens to run, possibly in this thread
    while it holds the registry's lock (e.g. allocating a new client in :meth:`acquire`). So a release
    never waits for the lock: it is queued, and whoever holds the lock next (or this release itself, if
    the lock is free) carries it out.
    """

    def __init__(self) -> None:
        self._clients: dict[asyncio.AbstractEventLoop, SharedAsyncClient] = {}
        self._lock = threading.Lock()
        self._closing: set[asyncio.Task[None]] = set()
        #: Releases not yet carried out (appending to a deque is atomic: no lock needed to queue one).
        self._releases: deque[tuple[asyncio.AbstractEventLoop, SharedAsyncClient]] = deque()

    async def acquire(self, loop: asyncio.AbstractEventLoop) -> SharedAsyncClient:
        """The loop's client (created on first use), with one more user; ``loop`` must be running here."""
        self._sweep()
        with self._lock:
            shared = self._clients.get(loop)
            created = shared is None or shared.closed
            if created:
                shared = self._clients[loop] = SharedAsyncClient()
            assert shared is not None
            shared.users += 1
        self._carry_out_releases()
        if created:
            shared.sentinel = _close_with_loop(self, loop, shared)
            await shared.sentinel.asend(None)
        return shared

    async def release(self, loop: asyncio.AbstractEventLoop, shared: SharedAsyncClient) -> None:
        """One user less; the last one closes the client, here, on its loop."""
        if self._drop_user(loop, shared):
            await shared.aclose()

    def release_soon(self, loop: asyncio.AbstractEventLoop, shared: SharedAsyncClient) -> None:
        """One user less, from any thread or a finalizer: the last one ends the client.

        On its loop if that loop runs (a task closes it there); otherwise its sockets are shut, since
        nothing may ever run that loop again. Queued, and carried out now unless the registry's lock is
        held (by another thread, or by this one, interrupted by the garbage collector): then its holder
        carries it out when it lets go.
        """
        self._releases.append((loop, shared))
        self._carry_out_releases()

    def _carry_out_releases(self) -> None:
        """Carry out the queued releases, if the lock is free (never waiting for it)."""
        while self._releases:
            if not self._lock.acquire(blocking=False):
                return  # its holder carries them out when it lets go
            try:
                loop, shared = self._releases.popleft()
                last = self._drop_user_locked(loop, shared)
                dead = self._take_dead_locked()
            finally:
                self._lock.release()
            if last:
                self._end_released(loop, shared)
            for _, gone in dead:
                gone.shut_sockets()

    def _end_released(self, loop: asyncio.AbstractEventLoop, shared: SharedAsyncClient) -> None:
        if loop.is_running():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: shut below
                loop.call_soon_threadsafe(self._spawn_close, shared)
                return
        shared.shut_sockets()

    def forget(self, loop: asyncio.AbstractEventLoop, shared: SharedAsyncClient) -> None:
        with self._lock:
            if self._clients.get(loop) is shared:
                del self._clients[loop]
        self._carry_out_releases()

    def _drop_user(self, loop: asyncio.AbstractEventLoop, shared: SharedAsyncClient) -> bool:
        """Count a user out; whether it was the last one (the client is then no longer handed out)."""
        with self._lock:
            last = self._drop_user_locked(loop, shared)
        self._carry_out_releases()
        return last

    def _drop_user_locked(self, loop: asyncio.AbstractEventLoop, shared: SharedAsyncClient) -> bool:
        shared.users -= 1
        if shared.users > 0 or shared.closed:
            return False
        if self._clients.get(loop) is shared:
            del self._clients[loop]
        return True

    def _spawn_close(self, shared: SharedAsyncClient) -> None:
        task = asyncio.get_running_loop().create_task(shared.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _sweep(self) -> None:
        """Shut the sockets of the clients whose loop was closed without shutting them down."""
        with self._lock:
            dead = self._take_dead_locked()
        for _, shared in dead:
            shared.shut_sockets()
        self._carry_out_releases()

    def _take_dead_locked(self) -> list[tuple[asyncio.AbstractEventLoop, SharedAsyncClient]]:
        dead = [(loop, shared) for loop, shared in list(self._clients.items()) if loop.is_closed()]
        for loop, _ in dead:
            del self._clients[loop]
        return dead


async def _close_with_loop(
    clients: _AsyncClients, loop: asyncio.AbstractEventLoop, shared: SharedAsyncClient
) -> AsyncGenerator[None, None]:
    """Started on ``loop`` and left suspended: the loop's ``shutdown_asyncgens`` runs its ``finally``."""
    try:
        yield
    finally:
        clients.forget(loop, shared)
        await shared.aclose()


async_clients = _AsyncClients()
