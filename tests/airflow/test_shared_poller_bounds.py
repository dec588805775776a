"""Issue 18 in the triggerer's shared poller: foreign items fail no wait (rule 4); a poll that hangs, loops
or fails for one wait holds no wait past its deadline (rule 3). Calls are counted; times bounded loosely."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_arr.emulator.oddities import FOREIGN_KINDS
from airflow_provider_arr.hooks.steps import DEADLINE_GRACE
from tests.airflow.test_shared_poller import new_session, only_event, trigger_for
from tests.helpers import FAST_RETRIES

PATIENT = {"retry_min_wait": 0.05, "retry_max_wait": 0.2, "retry_max_time": 60, "read_timeout": 30}
#: A deadline 1 s away, its grace, and room for a loaded machine; far below the 30 s a hung call takes.
BOUND = 1.0 + DEADLINE_GRACE + 8


@pytest.fixture(params=["v1", "2021-01-01"])
def api_emu(request, emu, monkeypatch):
    for name, value in emu.env(api_version=request.param, **FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    return emu


def patient(emu, monkeypatch, api_version: str = "v1") -> None:
    for name, value in emu.env(api_version=api_version, **PATIENT).items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("kind", FOREIGN_KINDS)
async def test_foreign_items_of_any_kind_fail_no_wait_of_the_account(api_emu, kind):
    sessions = [new_session(api_emu) for _ in range(5)]
    api_emu.state.add_foreign_items(kind, 3)
    api_emu.state.reset_counts()

    events = await asyncio.gather(*(only_event(trigger_for(s)) for s in sessions))

    assert {(event["status"], event["last_status"]) for event in events} == {("success", "Ready")}
    assert api_emu.state.request_counts["properties"] == 0  # the list answered every wait


@pytest.mark.parametrize("text", ["Hibernating", "Unknown", "Suspended"])
async def test_our_session_in_an_unknown_status_times_out_reporting_it(api_emu, text):
    api_emu.state.start_delay = 60
    mine, other = new_session(api_emu), new_session(api_emu)
    api_emu.state.report_status(mine, text)

    event, _ = await asyncio.gather(
        only_event(trigger_for(mine, timeout=1.0)), only_event(trigger_for(other, timeout=1.0))
    )

    assert (event["status"], event["last_status"]) == ("timeout", text)
    assert f"was still {text} when the wait timed out" in event["message"]


@pytest.mark.parametrize(
    "hang",
    [
        {"delay": 30},
        {"status": 503, "headers": {"Retry-After": "30"}, "count": 3},
        {"action": "drop_before", "delay": 30},
    ],
    ids=["late-answer", "retry-after-30", "dropped-late"],
)
@pytest.mark.parametrize("api_version", ["v1", "2021-01-01"])
async def test_a_hung_list_holds_no_wait_past_its_deadline(emu, monkeypatch, hang, api_version):
    patient(emu, monkeypatch, api_version)
    emu.state.start_delay = 60
    sessions = [new_session(emu) for _ in range(5)]
    emu.state.add_fault("list", status=None, delay=0.0)  # the first poll answers
    emu.state.add_fault("list", **({"count": 50} | hang))
    started = time.monotonic()

    events = await asyncio.gather(*(only_event(trigger_for(s, timeout=2.0)) for s in sessions))

    assert time.monotonic() - started < BOUND + 1.0
    assert {(event["status"], event["last_status"]) for event in events} == {("timeout", "Starting")}
    # The poll in flight at the deadline was abandoned (unless a loaded machine answered the first
    # poll only after the deadline: then that answer ended the wait, as in time).
    assert all("when the wait timed out" in event["message"] for event in events)


@pytest.mark.parametrize(("loop", "pages"), [("self", 2), ("cycle", 2), ("cycle", 4)])
async def test_a_looping_list_is_every_waits_error_not_an_endless_poll(emu, monkeypatch, loop, pages):
    for name, value in emu.env(api_version="2021-01-01", **FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    sessions = [new_session(emu) for _ in range(3)]
    emu.state.loop_next_link(loop, pages=pages)
    emu.state.reset_counts()

    events = await asyncio.wait_for(
        asyncio.gather(*(only_event(trigger_for(s, timeout=600)) for s in sessions)), timeout=60
    )

    assert {event["status"] for event in events} == {"error"}
    assert all("already read" in event["message"] for event in events)
    assert emu.state.request_counts["list"] == pages if loop == "cycle" else 1


async def test_one_waits_hung_read_holds_no_other_wait(emu, monkeypatch):
    patient(emu, monkeypatch)
    emu.state.start_delay = 0.5
    ended, ready = new_session(emu), new_session(emu)
    emu.state.stop_session_externally(ended)  # not listed: its wait reads it on its own
    emu.state.add_fault("properties", delay=30, count=50)
    started = time.monotonic()

    ended_event, ready_event = await asyncio.gather(
        only_event(trigger_for(ended, timeout=1.5)), only_event(trigger_for(ready, timeout=20))
    )

    assert ready_event["status"] == "success"
    assert ended_event["status"] == "timeout"
    assert time.monotonic() - started < 1.5 + DEADLINE_GRACE + 8
