"""The shared poller: N waits on one event loop cost one list per poll, not N reads (counted, not timed)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import timedelta

import pytest

from airflow_provider_arr.triggers import _poller
from airflow_provider_arr.triggers.remote_rendering import RemoteRenderingSessionTrigger, validate_event
from tests.helpers import FAST_RETRIES

UNKNOWN = "6d3f1a52-2f0b-4d3c-9d5e-3a1b2c4d5e6f"
POLL = 0.2


@pytest.fixture(params=["v1", "2021-01-01"])
def dialect_emu(request, emu, monkeypatch):
    """The shared emulator on either dialect; on 2021-01-01 a list page holds 20 sessions."""
    if request.param != "v1":
        for name, value in emu.env(api_version=request.param, **FAST_RETRIES).items():
            monkeypatch.setenv(name, value)
        emu.state.page_size = 20
    return emu


def new_session(emu) -> str:
    """A session made in the emulator's state directly: no request is counted."""
    return emu.state.create_session(emu.state.account_id, timedelta(hours=1)).session_id


def trigger_for(session_id: str, timeout: float = 20, conn_id: str = "arr_default", **kwargs):
    return RemoteRenderingSessionTrigger(
        session_id=session_id,
        arr_conn_id=conn_id,
        poll_interval=kwargs.pop("poll_interval", POLL),
        end_time=time.time() + timeout,
        **kwargs,
    )


async def only_event(trigger: RemoteRenderingSessionTrigger) -> dict:
    events = [validate_event(event.payload) async for event in trigger.run()]
    assert len(events) == 1
    return events[0]


async def first_poller(timeout: float = 5) -> _poller.SharedPoller:
    """The poller of the running loop, once the first wait registered."""
    async with asyncio.timeout(timeout):
        while not _poller.active_pollers():
            await asyncio.sleep(0.01)
    (poller,) = _poller.active_pollers()
    return poller


async def test_fifty_waits_share_one_list_per_poll(dialect_emu):
    emu = dialect_emu
    state = emu.state
    v2021 = state.page_size == 20
    ready = [new_session(emu) for _ in range(40)]
    for _ in range(3):
        state.fail_next_start("Out of GPUs")
    failing = [new_session(emu) for _ in range(3)]
    state.start_delay = 60
    expiring = [new_session(emu) for _ in range(2)]
    stopped = [new_session(emu) for _ in range(2)]
    timing_out = [new_session(emu) for _ in range(2)]
    triggers = {session_id: trigger_for(session_id) for session_id in ready + failing + expiring + stopped}
    triggers |= {session_id: trigger_for(session_id, timeout=1.0) for session_id in timing_out}
    triggers[UNKNOWN] = trigger_for(UNKNOWN)
    assert len(triggers) == 50
    state.reset_counts()

    started = time.monotonic()
    runs = {session_id: asyncio.ensure_future(only_event(t)) for session_id, t in triggers.items()}
    poller = await first_poller()
    await asyncio.sleep(2 * POLL)
    for session_id in expiring:
        state.expire_session(session_id, "lease over")
    for session_id in stopped:
        state.stop_session_externally(session_id)
    events = dict(zip(runs, await asyncio.gather(*runs.values()), strict=True))
    elapsed = time.monotonic() - started

    outcomes = {session_id: (event["status"], event["last_status"]) for session_id, event in events.items()}
    assert all(outcomes[session_id] == ("success", "Ready") for session_id in ready)
    assert all(events[session_id]["properties"]["hostname"] for session_id in ready)
    assert all(outcomes[session_id] == ("failed", "Error") for session_id in failing)
    assert all("Out of GPUs" in events[session_id]["message"] for session_id in failing)
    assert all(outcomes[session_id] == ("failed", "Expired") for session_id in expiring)
    if not v2021:  # a 2021-01-01 session says nothing about why it expired
        assert all("lease over" in events[session_id]["message"] for session_id in expiring)
    assert all(outcomes[session_id] == ("failed", "Stopped") for session_id in stopped)
    assert all(outcomes[session_id] == ("timeout", "Starting") for session_id in timing_out)
    assert outcomes[UNKNOWN] == ("failed", None)  # as the sensor's poke fails on a 404: no retry
    assert "does not exist" in events[UNKNOWN]["message"]
    assert "HTTP 404" in events[UNKNOWN]["message"]

    counts = state.request_counts
    pages = -(-len(triggers) // state.page_size) if v2021 else 1  # at most; fewer as sessions end
    # Only the sessions that ended (or never existed) were read on their own, each once.
    assert counts["properties"] == len(failing) + len(expiring) + len(stopped) + 1
    # Every poll was one list call per page; a poll per interval, whatever the number of waits.
    # One poll per interval (a slow machine makes fewer), plus a last look at each of the two deadlines.
    assert 2 <= poller.polls <= elapsed / POLL + 1 + len(timing_out)
    assert poller.polls <= counts["list"] <= poller.polls * pages
    assert counts["token"] == 1
    assert not _poller.active_pollers()  # the last wait out stopped it


async def test_list_pages_are_followed_on_2021(emu, monkeypatch):
    for name, value in emu.env(api_version="2021-01-01", **FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    emu.state.page_size = 10
    emu.state.start_delay = 60
    sessions = [new_session(emu) for _ in range(25)]  # three pages
    emu.state.reset_counts()

    runs = [asyncio.ensure_future(only_event(trigger_for(s, timeout=0.5))) for s in sessions]
    poller = await first_poller()
    events = await asyncio.gather(*runs)

    assert {event["status"] for event in events} == {"timeout"}
    counts = emu.state.request_counts
    assert counts["list"] == 3 * poller.polls  # every poll followed every page
    assert counts["properties"] == 0


async def test_a_429_on_the_shared_list_backs_every_wait_off_together(emu):
    emu.state.start_delay = 0.6
    sessions = [new_session(emu) for _ in range(20)]
    emu.state.reset_counts()
    emu.state.add_fault("list", 429, headers={"Retry-After": "0.3"}, count=2)

    runs = [asyncio.ensure_future(only_event(trigger_for(s))) for s in sessions]
    poller = await first_poller()
    events = await asyncio.gather(*runs)

    assert {(event["status"], event["last_status"]) for event in events} == {("success", "Ready")}
    counts = emu.state.request_counts
    assert emu.state.faults_injected["429"] == 2
    assert counts["list"] == poller.polls + 2  # the throttled call was retried, once per wait-all
    assert counts["properties"] == 0  # nobody fell back to reads of their own


async def test_a_failing_list_is_each_waits_error(emu):
    sessions = [new_session(emu) for _ in range(10)]
    emu.state.reset_counts()
    emu.state.add_fault("list", 500, body="internal", count=100)

    events = await asyncio.gather(*(only_event(trigger_for(s)) for s in sessions))

    assert {event["status"] for event in events} == {"error"}
    assert all("HTTP 500" in event["message"] and "internal" in event["message"] for event in events)
    assert all(emu.account_key not in event["message"] for event in events)
    counts = emu.state.request_counts
    assert 1 < counts["list"] <= FAST_RETRIES.get("retry_limit", 6)  # one call's retries, not ten
    assert counts["properties"] == 0


async def test_two_accounts_use_two_pollers(emu, monkeypatch):
    other_id, other_key = emu.state.add_account()
    other = emu.connection(**FAST_RETRIES) | {"login": other_id, "password": other_key}

    monkeypatch.setenv("AIRFLOW_CONN_ARR_OTHER", json.dumps(other))
    emu.state.start_delay = 1.5  # every wait registers before any is answered
    mine = [new_session(emu) for _ in range(3)]
    theirs = [emu.state.create_session(other_id, timedelta(hours=1)).session_id for _ in range(3)]
    # A second connection id with the same settings shares the first account's poller.
    monkeypatch.setenv("AIRFLOW_CONN_ARR_SAME", emu.connection_json(**FAST_RETRIES))
    emu.state.reset_counts()

    runs = [asyncio.ensure_future(only_event(trigger_for(s))) for s in mine]
    runs += [asyncio.ensure_future(only_event(trigger_for(s, conn_id="arr_same"))) for s in mine]
    runs += [asyncio.ensure_future(only_event(trigger_for(s, conn_id="arr_other"))) for s in theirs]
    async with asyncio.timeout(5):
        while len(_poller.active_pollers()) < 2 or sum(p.waiting for p in _poller.active_pollers()) < 9:
            await asyncio.sleep(0.01)
    pollers = _poller.active_pollers()
    events = await asyncio.gather(*runs)

    assert len(pollers) == 2
    assert sorted(poller.polls > 0 for poller in pollers) == [True, True]
    assert {event["status"] for event in events} == {"success"}
    assert emu.state.request_counts["token"] == 2  # one per account
    assert emu.state.request_counts["properties"] == 0


async def test_a_cancelled_wait_leaves_the_others_alone(emu):
    emu.state.start_delay = 1.5
    sessions = [new_session(emu) for _ in range(5)]

    runs = [asyncio.ensure_future(only_event(trigger_for(s))) for s in sessions]
    poller = await first_poller()
    async with asyncio.timeout(5):
        while poller.waiting < 5:
            await asyncio.sleep(0.01)
    runs[0].cancel()  # the triggerer cancels a trigger (its task was cleared, or the trigger moved)
    with pytest.raises(asyncio.CancelledError):
        await runs[0]
    assert poller.waiting == 4
    events = await asyncio.gather(*runs[1:])

    assert {event["status"] for event in events} == {"success"}
    assert not _poller.active_pollers()


async def test_cancelling_every_wait_stops_the_poller(emu):
    emu.state.start_delay = 60
    sessions = [new_session(emu) for _ in range(3)]
    runs = [asyncio.ensure_future(only_event(trigger_for(s))) for s in sessions]
    poller = await first_poller()
    async with asyncio.timeout(5):
        while poller.polls < 2:
            await asyncio.sleep(0.01)
    for run in runs:
        run.cancel()
    await asyncio.gather(*runs, return_exceptions=True)
    assert not _poller.active_pollers()
    assert poller._task is not None
    await asyncio.wait([poller._task], timeout=2)
    assert poller._task.done()
    await asyncio.sleep(POLL)  # a list call cancelled in flight may still reach the emulator
    lists = emu.state.request_counts["list"]
    await asyncio.sleep(3 * POLL)
    assert emu.state.request_counts["list"] == lists  # nothing polls any more


async def test_a_new_wait_after_the_last_left_gets_a_new_poller(emu):
    first = new_session(emu)
    (event,) = [await only_event(trigger_for(first))]
    assert event["status"] == "success"
    assert not _poller.active_pollers()
    second = new_session(emu)
    assert (await only_event(trigger_for(second)))["status"] == "success"
    assert not _poller.active_pollers()


async def test_the_interval_is_the_shortest_any_wait_asked_for(emu):
    emu.state.start_delay = 60
    slow, fast = new_session(emu), new_session(emu)
    emu.state.reset_counts()
    slow_run = asyncio.ensure_future(only_event(trigger_for(slow, poll_interval=30)))
    poller = await first_poller()
    async with asyncio.timeout(10):
        while poller.polls_done < 1:
            await asyncio.sleep(0.01)
    assert poller.polls == 1  # the next poll is 30 s away
    fast_run = asyncio.ensure_future(only_event(trigger_for(fast, poll_interval=0.1)))
    async with asyncio.timeout(10):  # at 30 s, no second poll would come in time
        while poller.polls_done < 3:
            await asyncio.sleep(0.01)
    assert emu.state.request_counts["list"] >= 3
    for run in (slow_run, fast_run):
        run.cancel()
    await asyncio.gather(slow_run, fast_run, return_exceptions=True)
    assert not _poller.active_pollers()


async def test_a_poller_that_fails_answers_every_wait_and_leaves_the_registry(emu, monkeypatch):
    emu.state.start_delay = 60
    sessions = [new_session(emu) for _ in range(3)]

    async def broken(self):
        raise RuntimeError("a bug in the poller")

    monkeypatch.setattr(_poller.SharedPoller, "_poll_and_answer", broken)
    async with asyncio.timeout(10):  # none hangs: the bug is each trigger's failure, as a bug of its own
        outcomes = await asyncio.gather(
            *(only_event(trigger_for(s)) for s in sessions), return_exceptions=True
        )
    assert [type(outcome) for outcome in outcomes] == [RuntimeError] * 3
    assert not _poller.active_pollers()  # a new wait gets a poller of its own, not this dead one


@pytest.mark.parametrize("ended", ["stopped", "failed", "expired"])
async def test_a_wait_slow_to_take_its_answer_is_neither_read_again_nor_queued_twice(dialect_emu, ended):
    """A busy triggerer: the poller keeps polling while a wait has not taken its answer yet."""
    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
    from airflow_provider_arr.triggers._shared_waits import SESSIONS

    emu, state = dialect_emu, dialect_emu.state
    if ended == "failed":
        state.fail_next_start("Out of GPUs")
    state.start_delay = 0 if ended == "failed" else 60
    session_id = new_session(emu)
    listed = new_session(emu)  # still Starting: answered from the list at every poll
    if ended == "stopped":
        state.stop_session_externally(session_id)
    elif ended == "expired":
        state.expire_session(session_id, "lease over")
    state.reset_counts()

    hook = RemoteRenderingHook("arr_default")
    dialect = await hook.adialect()
    end_time = time.time() + 20
    async with registered_pair(SESSIONS, hook, dialect, [session_id, listed], end_time) as (slow, busy):
        poller = await first_poller()
        while poller.polls_done < 5:  # five polls, none of the answers taken
            await asyncio.sleep(POLL / 4)
        assert state.request_counts["properties"] == 1  # the ended session was read once, not per poll
        assert (slow.unread, slow.inbox.qsize()) == (1, 1)
        assert (busy.unread, busy.inbox.qsize()) == (1, 1)  # one listed answer waiting, not five
        properties, _ = await slow.next_answer(logging.getLogger(__name__))
        expected = {"stopped": "Stopped", "failed": "Error", "expired": "Expired"}[ended]
        assert properties.status.value == expected
        assert slow.unread == 0


@contextlib.asynccontextmanager
async def registered_pair(kind, hook, dialect, item_ids, end_time):
    """Two waits registered on one poller; the second with a hook of its own (closed at once)."""
    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

    first, second = item_ids
    async with _poller.registered(kind, hook, dialect, first, POLL, end_time) as one:
        other_hook = RemoteRenderingHook("arr_default")
        other_dialect = await other_hook.adialect()
        async with _poller.registered(kind, other_hook, other_dialect, second, POLL, end_time) as two:
            yield one, two
