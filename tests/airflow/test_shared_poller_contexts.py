"""Whose context the shared poller works in: each trigger logs its own lines; the poller is no trigger's.

Airflow's triggerer binds ``trigger_id`` (structlog contextvars) in the asyncio task of each trigger and
routes every log line to the task log of the trigger whose id is bound where the line was emitted. These
tests run triggers the same way (one task each, ``trigger_id`` bound first) against the real emulator,
and record, for every line and every HTTP call, which ``trigger_id`` was bound when it happened.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from structlog.contextvars import bind_contextvars, get_contextvars

from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.triggers import _poller
from airflow_provider_arr.triggers.remote_rendering import RemoteRenderingSessionTrigger, validate_event

POLL = 0.2


class RecordingLog:
    """A trigger's logger that notes which trigger's context each line was emitted in."""

    def __init__(self, lines: list[tuple[Any, str, str]]) -> None:
        self.lines = lines

    def _note(self, level: str, event: Any, *args: Any) -> None:
        text = str(event) % args if args else str(event)
        self.lines.append((get_contextvars().get("trigger_id"), level, text))

    def debug(self, event: Any, *args: Any) -> None:
        self._note("debug", event, *args)

    def info(self, event: Any, *args: Any) -> None:
        self._note("info", event, *args)

    def warning(self, event: Any, *args: Any) -> None:
        self._note("warning", event, *args)

    def error(self, event: Any, *args: Any) -> None:
        self._note("error", event, *args)


def new_session(emu) -> str:
    return emu.state.create_session(emu.state.account_id, timedelta(hours=1)).session_id


def trigger_for(session_id: str, lines: list, timeout: float = 20) -> RemoteRenderingSessionTrigger:
    trigger = RemoteRenderingSessionTrigger(session_id, "arr_default", POLL, time.time() + timeout)
    trigger._log = RecordingLog(lines)  # type: ignore[assignment]
    return trigger


async def run_as_the_triggerer(trigger_id: int, trigger: RemoteRenderingSessionTrigger) -> dict:
    """What ``TriggerRunner.run_trigger`` does: bind the id in the trigger's own task, then run it."""
    bind_contextvars(trigger_id=trigger_id)
    events = [validate_event(event.payload) async for event in trigger.run()]
    assert len(events) == 1
    return events[0]


async def until(condition, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
def calls_by_context(monkeypatch) -> list[tuple[Any, str]]:
    """Every call the hook runs, with the ``trigger_id`` bound where it ran."""
    calls: list[tuple[Any, str]] = []
    original = RemoteRenderingHook._arun

    async def recording(self, steps):
        calls.append((get_contextvars().get("trigger_id"), steps.__name__))
        return await original(self, steps)

    monkeypatch.setattr(RemoteRenderingHook, "_arun", recording)
    return calls


async def test_each_trigger_logs_its_own_lines_in_its_own_context(emu, calls_by_context):
    emu.state.start_delay = 1.0
    sessions = {trigger_id: new_session(emu) for trigger_id in range(1, 11)}
    lines: list[tuple[Any, str, str]] = []
    runs = {
        trigger_id: asyncio.ensure_future(run_as_the_triggerer(trigger_id, trigger_for(session_id, lines)))
        for trigger_id, session_id in sessions.items()
    }
    await until(lambda: _poller.active_pollers() and _poller.active_pollers()[0].waiting == 10)
    (poller,) = _poller.active_pollers()
    await until(lambda: poller.polls_done >= 1)
    emu.state.add_fault("list", 503, body="busy", count=1)  # the next shared list is retried once
    events = {trigger_id: await run for trigger_id, run in runs.items()}

    assert {(e["status"], e["last_status"]) for e in events.values()} == {("success", "Ready")}
    assert emu.state.faults_injected["503"] == 1
    for trigger_id, session_id in sessions.items():
        own = [text for where, _, text in lines if where == trigger_id]
        # Its progress lines, as the per-session wait logs them, in its own context...
        assert any(text.startswith(f"Session {session_id} is Starting (elapsed") for text in own), own
        assert any(text.startswith(f"Session {session_id} is Ready at ") for text in own), own
        # ...the shared call's retry, which held it up too...
        assert any("HTTP 503" in text and "retrying in" in text for text in own), own
        # ...and nothing about another trigger's session.
        others = set(sessions.values()) - {session_id}
        assert not [text for text in own if any(other in text for other in others)]
    assert all(where in sessions for where, _, _ in lines), "a line was logged outside every trigger"
    # The HTTP calls ran in the poller's task, which carries no trigger's id.
    lists = [where for where, name in calls_by_context if name == "list_steps"]
    assert len(lists) == poller.polls >= 2
    assert set(lists) == {None}
    assert emu.state.request_counts["properties"] == 0


async def test_cancelling_the_trigger_that_started_the_poller_leaves_the_others_polling(
    emu, calls_by_context, monkeypatch
):
    emu.state.start_delay = 60  # until the first trigger is gone, nobody is Ready
    first = new_session(emu)
    others = {trigger_id: new_session(emu) for trigger_id in range(2, 6)}
    lines: list[tuple[Any, str, str]] = []
    first_run = asyncio.ensure_future(run_as_the_triggerer(1, trigger_for(first, lines)))
    await until(lambda: bool(_poller.active_pollers()))  # the first trigger made the poller
    (poller,) = _poller.active_pollers()
    runs = {
        trigger_id: asyncio.ensure_future(run_as_the_triggerer(trigger_id, trigger_for(session_id, lines)))
        for trigger_id, session_id in others.items()
    }
    await until(lambda: poller.waiting == 5 and poller.polls_done >= 2)

    first_run.cancel("cancelled by user action")  # what the triggerer does on clear or mark-failed
    with pytest.raises(asyncio.CancelledError):
        await first_run
    polls_at_cancel = poller.polls_done
    assert poller.waiting == 4
    await until(lambda: poller.polls_done >= polls_at_cancel + 2)  # it goes on polling for the others
    assert _poller.active_pollers() == [poller]
    clock = emu.state.clock
    monkeypatch.setattr(emu.state, "clock", lambda: clock() + 120)  # their start delay is over: Ready
    events = {trigger_id: await run for trigger_id, run in runs.items()}

    assert {(e["status"], e["last_status"]) for e in events.values()} == {("success", "Ready")}
    for trigger_id, session_id in others.items():
        assert any(w == trigger_id and f"Session {session_id} is Ready" in t for w, _, t in lines)
    # The first trigger's id was never bound where the poller worked, before or after its cancel.
    assert {where for where, name in calls_by_context if name == "list_steps"} == {None}
    assert not [text for where, _, text in lines if where == 1 and first not in text]
    assert not _poller.active_pollers()
