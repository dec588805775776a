"""Rule 7 of issue 18, single flight for tokens: concurrent callers share one fetch and its failure.

Threads, tasks on one event loop, and tasks on several loops (one per thread) alike. Against the
emulator on a loopback socket: its token route counts the fetches, and its faults make them fail.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from airflow_provider_arr.exceptions import RemoteRenderingError
from airflow_provider_arr.hooks import tokens
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from tests.helpers import FAST_RETRIES

RETRIES = {**FAST_RETRIES, "retry_limit": 3, "retry_min_wait": 0.01, "retry_max_wait": 0.02}

#: (fault arguments, STS calls one fetch makes against it): retried faults take the whole sequence.
FAULTS = {
    "503": ({"status": 503}, RETRIES["retry_limit"]),
    "500": ({"status": 500}, RETRIES["retry_limit"]),
    "429-retry-after-0": ({"status": 429, "headers": {"Retry-After": "0"}}, RETRIES["retry_limit"]),
    "401": ({"status": 401}, 1),
    "400": ({"status": 400, "body": "bad request"}, 1),
    "reset": ({"action": "drop_before"}, RETRIES["retry_limit"]),
    "not-json": ({"status": 200, "body": "<html>proxy</html>"}, 1),
    "no-access-token": ({"status": 200, "body": {"token": "x"}}, 1),
}


def connect(emulator, monkeypatch, conn_id: str = "arr_default", **extras: object) -> None:
    conn = emulator.connection(**{**RETRIES, **extras})
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def run_callers(mode: str, count: int, conn_ids: list[str] | None = None) -> list[object]:
    """``count`` concurrent ``get_token`` calls; returns each one's token or error, in caller order."""
    conn_ids = conn_ids or ["arr_default"] * count
    outcomes: list[object] = [None] * count
    hooks = [RemoteRenderingHook(conn_id) for conn_id in conn_ids]
    for hook in hooks:
        _ = hook.settings  # read the connection first, so the callers start together

    def sync_call(index: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            outcomes[index] = hooks[index].get_token()
        except RemoteRenderingError as error:
            outcomes[index] = error

    async def async_call(index: int) -> None:
        try:
            outcomes[index] = await hooks[index].aget_token()
        except RemoteRenderingError as error:
            outcomes[index] = error

    async def all_tasks(indexes: list[int]) -> None:
        await asyncio.gather(*(async_call(index) for index in indexes))

    if mode == "tasks":
        asyncio.run(all_tasks(list(range(count))))
        return outcomes
    barrier = threading.Barrier(count if mode == "threads" else 2)
    if mode == "threads":
        threads = [threading.Thread(target=sync_call, args=(i, barrier)) for i in range(count)]
    else:  # "loops": half the callers are tasks on a loop of their own thread, half threads
        half = list(range(count // 2))

        def loop_thread() -> None:
            barrier.wait()
            asyncio.run(all_tasks(half))

        def plain_threads() -> None:
            barrier.wait()
            inner = threading.Barrier(count - len(half))
            workers = [threading.Thread(target=sync_call, args=(i, inner)) for i in range(len(half), count)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()

        threads = [threading.Thread(target=loop_thread), threading.Thread(target=plain_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.parametrize("mode", ["threads", "tasks", "loops"])
@pytest.mark.parametrize("count", [2, 10])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_concurrent_callers_share_one_fetch_and_its_failure(emulator, monkeypatch, mode, count, fault):
    connect(emulator, monkeypatch)
    arguments, calls_of_one_fetch = FAULTS[fault]
    emulator.state.add_fault("token", count=100, delay=0.05, **arguments)
    outcomes = run_callers(mode, count)
    assert all(isinstance(outcome, RemoteRenderingError) for outcome in outcomes), outcomes
    assert {str(outcome) for outcome in outcomes} == {str(outcomes[0])}
    assert "get_token failed" in str(outcomes[0])
    assert emulator.state.request_counts["token"] == calls_of_one_fetch


@pytest.mark.parametrize("mode", ["threads", "tasks", "loops"])
@pytest.mark.parametrize("count", [2, 10])
def test_concurrent_callers_share_one_slow_successful_fetch(emulator, monkeypatch, mode, count):
    connect(emulator, monkeypatch)
    emulator.state.add_fault("token", delay=0.3)  # the answer is late, but it comes
    outcomes = run_callers(mode, count)
    assert all(isinstance(outcome, str) for outcome in outcomes), outcomes
    assert len(set(outcomes)) == 1
    assert emulator.state.request_counts["token"] == 1


@pytest.mark.parametrize("mode", ["threads", "tasks"])
@pytest.mark.parametrize("waiters", [1, 5])
def test_each_waiter_keeps_its_own_budget(emulator, monkeypatch, mode, waiters):
    """Callers with a 0.2 s budget give up on a 3 s fetch that another caller leads; it still ends."""
    connect(emulator, monkeypatch, "arr_patient", retry_max_time=30, read_timeout=30)
    connect(emulator, monkeypatch, "arr_hurried", retry_max_time=0.2)
    emulator.state.add_fault("token", delay=3)
    finished: list[str] = []
    leader_outcome: list[object] = []

    def lead() -> None:
        leader_outcome.append(RemoteRenderingHook("arr_patient").get_token())
        finished.append("leader")

    async def alead() -> None:
        leader_outcome.append(await RemoteRenderingHook("arr_patient").aget_token())
        finished.append("leader")

    def wait_for_the_leaders_fetch() -> None:
        deadline = time.monotonic() + 30
        while emulator.state.request_counts["token"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)

    hurried = [RemoteRenderingHook("arr_hurried") for _ in range(waiters)]
    errors: list[RemoteRenderingError] = []
    if mode == "threads":
        leader = threading.Thread(target=lead)
        leader.start()
        wait_for_the_leaders_fetch()
        for hook in hurried:
            with pytest.raises(RemoteRenderingError) as raised:
                hook.get_token()
            errors.append(raised.value)
            finished.append("waiter")
        leader.join()
    else:

        async def wait(hook: RemoteRenderingHook) -> None:
            with pytest.raises(RemoteRenderingError) as raised:
                await hook.aget_token()
            errors.append(raised.value)
            finished.append("waiter")

        async def main() -> None:
            leading = asyncio.create_task(alead())
            await asyncio.to_thread(wait_for_the_leaders_fetch)
            await asyncio.gather(*(wait(hook) for hook in hurried))
            await leading

        asyncio.run(main())
    assert finished == ["waiter"] * waiters + ["leader"]
    assert all("within its budget (0.2 s)" in str(error) for error in errors)
    assert isinstance(leader_outcome[0], str)
    assert emulator.state.request_counts["token"] == 1


def test_a_failure_is_shared_only_for_a_short_time(emulator, monkeypatch):
    connect(emulator, monkeypatch)
    monkeypatch.setattr(tokens, "TOKEN_FAILURE_SHARE_TIME", 0.5)
    emulator.state.add_fault("token", 401, count=2)
    for _ in range(3):  # the first fails at the service, the next two are handed its failure
        with pytest.raises(RemoteRenderingError, match="HTTP 401"):
            RemoteRenderingHook().get_token()
    assert emulator.state.request_counts["token"] == 1
    time.sleep(0.6)
    with pytest.raises(RemoteRenderingError, match="HTTP 401"):
        RemoteRenderingHook().get_token()
    assert emulator.state.request_counts["token"] == 2
    time.sleep(0.6)
    assert RemoteRenderingHook().get_token()  # the service answers again: the next fetch gets a token
    assert emulator.state.request_counts["token"] == 3
