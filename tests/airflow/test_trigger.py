"""The trigger as an async generator against the emulator, its serialization and its on_kill."""

from __future__ import annotations

import asyncio
import time

import pytest
from airflow.triggers.base import TriggerEvent

from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.triggers import remote_rendering as trigger_module
from airflow_provider_arr.triggers.remote_rendering import RemoteRenderingSessionTrigger, validate_event
from tests.airflow.conftest import session, wait_for_status

CLASSPATH = "airflow_provider_arr.triggers.remote_rendering.RemoteRenderingSessionTrigger"


async def started_session(lease: str = "1:00:00") -> str:
    async with RemoteRenderingHook() as hook:
        return await hook.acreate_session(lease)


def make_trigger(session_id: str, timeout: float = 10, **kwargs) -> RemoteRenderingSessionTrigger:
    kwargs.setdefault("poll_interval", 0.05)
    return RemoteRenderingSessionTrigger(
        session_id=session_id, arr_conn_id="arr_default", end_time=time.time() + timeout, **kwargs
    )


async def all_events(trigger: RemoteRenderingSessionTrigger) -> list[dict]:
    events = [event async for event in trigger.run()]
    assert len(events) == 1  # exactly one event, then the generator ends
    assert isinstance(events[0], TriggerEvent)
    return [validate_event(event.payload) for event in events]


async def test_ready_session_yields_success_with_properties(emu):
    emu.state.start_delay = 1.0  # Starting for twenty poll intervals, even on a loaded machine
    session_id = await started_session()
    emu.state.reset_counts()  # a v1 create lists the account first
    (event,) = await all_events(make_trigger(session_id))

    assert event["status"] == "success"
    assert event["session_id"] == session_id
    assert event["last_status"] == "Ready"
    assert event["properties"]["hostname"] == session(emu, session_id).hostname
    assert emu.state.request_counts["list"] >= 2  # the shared poller listed while it was Starting
    assert emu.state.request_counts["properties"] == 0  # and Ready was in the list: no read of its own


async def test_a_wait_of_its_own_reads_its_session(emu):
    emu.state.start_delay = 1.0
    session_id = await started_session()
    emu.state.reset_counts()  # a v1 create lists the account first
    (event,) = await all_events(make_trigger(session_id, shared_poll=False))

    assert (event["status"], event["last_status"]) == ("success", "Ready")
    assert event["properties"]["hostname"] == session(emu, session_id).hostname
    assert emu.state.request_counts["properties"] >= 2
    assert emu.state.request_counts["list"] == 0


async def test_failed_start_yields_failed_with_the_service_message(emu):
    emu.state.fail_next_start("Out of GPUs")
    session_id = await started_session()
    (event,) = await all_events(make_trigger(session_id))

    assert event["status"] == "failed"
    assert event["last_status"] == "Error"
    assert "Out of GPUs" in event["message"]


async def test_session_expiring_while_starting_yields_failed(emu):
    emu.state.start_delay = 30
    session_id = await started_session()
    trigger_run = asyncio.ensure_future(all_events(make_trigger(session_id)))
    await asyncio.sleep(0.15)
    emu.state.expire_session(session_id, "lease over")
    (event,) = await trigger_run
    assert (event["status"], event["last_status"]) == ("failed", "Expired")
    assert "lease over" in event["message"]


async def test_deadline_yields_timeout(emu):
    emu.state.start_delay = 30
    session_id = await started_session()
    started = time.monotonic()
    (event,) = await all_events(make_trigger(session_id, timeout=0.4, poll_interval=10))

    assert event["status"] == "timeout"
    assert event["last_status"] == "Starting"
    assert 0.3 < time.monotonic() - started < 2  # sleeps no longer than the time left
    assert session(emu, session_id).status == "Starting"  # the trigger alone stops nothing


async def test_deadline_is_wall_clock_and_survives_a_rebuild(emu):
    """A triggerer restart rebuilds the trigger from serialize(): the deadline does not move."""
    emu.state.start_delay = 30
    session_id = await started_session()
    emu.state.reset_counts()
    _, kwargs = make_trigger(session_id, timeout=-1).serialize()
    rebuilt = RemoteRenderingSessionTrigger(**kwargs)

    (event,) = await all_events(rebuilt)
    assert event["status"] == "timeout"
    assert emu.state.request_counts["list"] == 1  # one last look, then the deadline
    assert emu.state.request_counts["properties"] == 0


@pytest.mark.parametrize(("shared_poll", "operation"), [(True, "list"), (False, "properties")])
async def test_transient_503_mid_wait_still_succeeds(emu, shared_poll, operation):
    session_id = await started_session()
    emu.state.add_fault(operation, 503, body="busy", count=2)
    (event,) = await all_events(make_trigger(session_id, shared_poll=shared_poll))

    assert event["status"] == "success"
    assert emu.state.request_counts[operation] >= 3


async def test_revoked_token_mid_wait_is_renewed(emu):
    emu.state.start_delay = 0.6
    session_id = await started_session()
    trigger_run = asyncio.ensure_future(all_events(make_trigger(session_id)))
    await asyncio.sleep(0.2)
    tokens_before = emu.state.request_counts["token"]
    emu.state.revoke_tokens()
    (event,) = await trigger_run

    assert event["status"] == "success"
    assert emu.state.request_counts["token"] > tokens_before


@pytest.mark.parametrize(("shared_poll", "operation"), [(True, "list"), (False, "properties")])
async def test_service_down_yields_error_after_retries(emu, shared_poll, operation):
    session_id = await started_session()
    emu.state.add_fault(operation, 500, body="internal", count=100)
    (event,) = await all_events(make_trigger(session_id, shared_poll=shared_poll))

    assert event["status"] == "error"
    assert "HTTP 500" in event["message"]
    assert "internal" in event["message"]
    assert emu.state.request_counts[operation] > 1  # the hook retried first
    assert emu.account_key not in event["message"]


@pytest.mark.parametrize("shared_poll", [True, False])
async def test_unknown_session_yields_failed_as_a_poke_does(emu, shared_poll):
    trigger = make_trigger("6d3f1a52-2f0b-4d3c-9d5e-3a1b2c4d5e6f", shared_poll=shared_poll)
    (event,) = await all_events(trigger)
    assert event["status"] == "failed"  # the task fails without retries, or skips with soft_fail
    assert "does not exist" in event["message"]
    assert "HTTP 404" in event["message"]


def test_serialize_gives_plain_values_that_rebuild_the_trigger():
    trigger = RemoteRenderingSessionTrigger(
        "sid", "conn", poll_interval=5, end_time=1234.5, stop_on_kill=True
    )
    classpath, kwargs = trigger.serialize()

    assert classpath == CLASSPATH
    assert kwargs == {
        "session_id": "sid",
        "arr_conn_id": "conn",
        "poll_interval": 5.0,
        "end_time": 1234.5,
        "stop_on_kill": True,
    }
    assert RemoteRenderingSessionTrigger(**kwargs).serialize() == (classpath, kwargs)
    _, own = RemoteRenderingSessionTrigger("sid", "conn", 5, 1234.5, shared_poll=False).serialize()
    assert own["shared_poll"] is False
    assert RemoteRenderingSessionTrigger(**own).shared_poll is False


def test_kwargs_and_events_survive_airflow_serde():
    serde = pytest.importorskip("airflow.sdk.serde")
    _, kwargs = RemoteRenderingSessionTrigger("sid", "conn", 5, 1234.5).serialize()
    assert serde.deserialize(serde.serialize(kwargs)) == kwargs
    event = {
        "status": "success",
        "message": "ok",
        "session_id": "sid",
        "last_status": "Ready",
        "properties": {"session_id": "sid", "status": "Ready", "max_lease_time": "01:00:00", "message": None},
    }
    assert validate_event(serde.deserialize(serde.serialize(event))) == event


async def test_on_kill_stops_the_session_when_asked(emu):
    emu.state.start_delay = 30
    session_id = await started_session()
    await make_trigger(session_id, stop_on_kill=True).on_kill()
    assert session(emu, session_id).status == "Stopped"


async def test_on_kill_leaves_the_session_without_stop_on_kill(emu):
    session_id = await started_session()
    await make_trigger(session_id).on_kill()
    assert emu.state.request_counts["stop"] == 0
    assert session(emu, session_id).is_active


async def test_on_kill_of_an_ended_session_does_nothing(emu):
    session_id = await started_session()
    emu.state.stop_session_externally(session_id)
    await make_trigger(session_id, stop_on_kill=True).on_kill()
    assert emu.state.request_counts["stop"] == 0


async def test_on_kill_is_bounded_and_never_raises(emu, monkeypatch):
    monkeypatch.setattr(trigger_module, "STOP_ON_KILL_TIMEOUT", 0.3)
    session_id = await started_session()
    emu.state.add_fault("properties", None, delay=3)  # the service hangs
    started = time.monotonic()
    await make_trigger(session_id, stop_on_kill=True).on_kill()
    assert time.monotonic() - started < 1.5


async def test_cleanup_stops_nothing(emu):
    session_id = await started_session()
    trigger = make_trigger(session_id, stop_on_kill=True)
    await trigger.cleanup()  # runs on every triggerer restart
    wait_for_status(emu, session_id, "Ready")
    assert emu.state.request_counts["stop"] == 0


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (None, "without a trigger event"),
        ("x", "should be a dict"),
        ({}, "lacks the key"),
        ({"status": "weird"}, "lacks the key"),
        (
            {"status": "weird", "message": "", "session_id": "s", "last_status": None, "properties": None},
            "unknown status",
        ),
    ],
)
def test_validate_event_fails_closed(event, message):
    from airflow.sdk.exceptions import AirflowException

    with pytest.raises(AirflowException, match=message):
        validate_event(event)


async def test_no_secret_reaches_the_trigger_logs(emu, debug_logs):
    session_id = await started_session()
    await all_events(make_trigger(session_id))
    await make_trigger(session_id, stop_on_kill=True).on_kill()
    async with RemoteRenderingHook() as hook:
        token = await hook.aget_token()

    logs = debug_logs()
    assert session_id in logs
    assert emu.account_key not in logs
    assert token not in logs
