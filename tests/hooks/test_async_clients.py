"""Rule 8 of issue 18, clients end with their loop: no connection outlives its event loop or its hook.

The public async API on several event loops without ``async with``: the emulator's server counts the
connections still open on a real loopback socket (a client that shuts its socket is seen at once). Its
server keeps an idle connection for two minutes here, so only the client can end one within a test.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import pytest

from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook


@pytest.fixture
def emulator(monkeypatch):
    """The suite's emulator, but one whose server keeps idle connections open (uvicorn's default: 5 s)."""
    from airflow_provider_arr.emulator import ArrEmulator, server

    original = server.server_config

    def patient(*args, **kwargs):
        config = original(*args, **kwargs)
        config.timeout_keep_alive = 120
        return config

    monkeypatch.setattr(server, "server_config", patient)
    with ArrEmulator(start_delay=0.2, token_lifetime=3600) as emu:
        yield emu


def open_connections(emulator, until: int | None = None) -> int:
    """The connections the emulator holds open; with ``until``, wait (at most 10 s) for that many."""
    deadline = time.monotonic() + 10
    while True:
        count = len(emulator._server.server_state.connections)
        if until is None or count == until or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


def use_with_asyncio_run(hook, loops: int) -> list[object]:
    for _ in range(loops):
        asyncio.run(hook.alist_sessions())
    return []


def use_on_idle_loops(hook, loops: int) -> list[asyncio.AbstractEventLoop]:
    """``run_until_complete`` on loops that stay open (and idle) afterwards."""
    kept = []
    for _ in range(loops):
        loop = asyncio.new_event_loop()
        loop.run_until_complete(hook.alist_sessions())
        kept.append(loop)
    return kept


def use_on_running_loops(hook, loops: int) -> list[asyncio.AbstractEventLoop]:
    """Loops that run on in threads of their own (a triggerer's), each called into once."""
    kept = []
    for _ in range(loops):
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(hook.alist_sessions(), loop).result(30)
        kept.append(loop)
    return kept


def stop(loops: list[asyncio.AbstractEventLoop]) -> None:
    for loop in loops:
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
            while loop.is_running():
                time.sleep(0.01)
        loop.close()


@pytest.mark.parametrize("loops", [1, 3])
def test_asyncio_run_leaves_no_connection_open_even_while_the_hook_lives(arr_conn, loops):
    hook = RemoteRenderingHook()
    use_with_asyncio_run(hook, loops)
    assert open_connections(arr_conn, until=0) == 0
    assert arr_conn.state.request_counts["list"] == loops
    del hook


@pytest.mark.parametrize("loops", [1, 3])
@pytest.mark.parametrize(
    ("use", "then_close_loops"),
    [
        (use_on_idle_loops, False),
        (use_on_idle_loops, True),
        (use_on_running_loops, False),
        (use_on_running_loops, True),
    ],
    ids=["idle-loops", "idle-loops-closed", "running-loops", "running-loops-stopped"],
)
def test_no_connection_stays_open_after_the_hook_is_gone(arr_conn, loops, use, then_close_loops):
    hook = RemoteRenderingHook()
    kept = use(hook, loops)
    try:
        assert open_connections(arr_conn) >= 1  # the hook's client on the loop it used last
        if then_close_loops:
            stop(kept)  # closed without shutdown_asyncgens(): no chance to close on the loop
        del hook
        gc.collect()
        assert open_connections(arr_conn, until=0) == 0
    finally:
        stop(kept)


@pytest.mark.parametrize("hooks", [1, 4])
def test_a_loop_that_keeps_running_closes_its_client_when_its_last_hook_is_gone(arr_conn, hooks):
    """Several hooks share the loop's one client; it ends with the last of them, not the first."""
    (loop,) = use_on_running_loops(RemoteRenderingHook(), 1)  # a first hook, already gone
    try:
        users = [RemoteRenderingHook() for _ in range(hooks)]
        for index in range(hooks):
            asyncio.run_coroutine_threadsafe(users[index].alist_sessions(), loop).result(30)
        gc.collect()
        assert open_connections(arr_conn) >= 1
        while len(users) > 1:
            users.pop()
            gc.collect()
            assert open_connections(arr_conn) >= 1
        users.clear()
        gc.collect()
        assert open_connections(arr_conn, until=0) == 0
    finally:
        stop([loop])


class CollectorWhileHeld:
    """The registry's lock, where the garbage collector runs a finalizer right after it is taken.

    A hook's finalizer (``release_soon``) runs wherever the collector happens to run: in the thread
    that holds the registry's lock, between its ``with`` and its end (here: on the first taking).
    """

    def __init__(self, finalizer) -> None:
        self._lock = threading.Lock()
        self.finalizer = finalizer

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        taken = self._lock.acquire(blocking, timeout)
        if taken and self.finalizer is not None:
            finalizer, self.finalizer = self.finalizer, None
            finalizer()
        return taken

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


async def _create_another(registry, loop, held):
    """acquire() builds a new client under the lock (the allocation that set off the collector in CI)."""
    held.closed = True  # the loop's client has ended: the next acquire builds one under the lock
    return await registry.acquire(loop)


async def _reuse(registry, loop, held):
    return await registry.acquire(loop)


async def _release(registry, loop, held):
    other = await registry.acquire(loop)  # a second hook's use, given back on its loop
    await registry.release(loop, other)


async def _release_from_another_finalizer(registry, loop, held):
    registry.release_soon(loop, await registry.acquire(loop))


async def _forget(registry, loop, held):
    registry.forget(asyncio.new_event_loop(), held)


@pytest.mark.parametrize(
    "while_busy", [_create_another, _reuse, _release, _release_from_another_finalizer, _forget]
)
def test_a_hook_collected_while_the_registry_holds_its_lock_is_released_without_a_deadlock(while_busy):
    """CI hung in ``_drop_user`` under ``acquire``: the collector ran a hook's finalizer in the thread
    that held the registry's (non-reentrant) lock. A release never waits for that lock: it is queued
    and carried out by the lock's holder when it lets go. Each row is a registry call that holds it."""
    from airflow_provider_arr.hooks.async_clients import _AsyncClients

    registry = _AsyncClients()
    outcome: dict[str, object] = {}

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        held = await registry.acquire(loop)  # the hook the collector is about to collect
        users_before = held.users
        registry._lock = CollectorWhileHeld(lambda: registry.release_soon(loop, held))
        await while_busy(registry, loop, held)
        outcome["released"] = users_before - held.users
        outcome["finalizer_ran"] = registry._lock.finalizer is None
        outcome["queued"] = len(registry._releases)

    runner = threading.Thread(target=asyncio.run, args=(scenario(),), daemon=True)
    runner.start()
    runner.join(timeout=10)
    assert not runner.is_alive(), "deadlocked: a finalizer waited for the lock its own thread holds"
    assert outcome == {"released": 1, "finalizer_ran": True, "queued": 0}
