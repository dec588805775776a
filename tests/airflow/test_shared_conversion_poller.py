"""Conversion waits: one list call per poll on 2021-01-01 (counted, not timed); v1 reads each conversion."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.triggers import _poller
from airflow_provider_arr.triggers.conversion import RemoteRenderingConversionTrigger
from airflow_provider_arr.triggers.events import validate_conversion_event
from tests.helpers import FAST_RETRIES

IN = "https://contosoin.blob.core.windows.net/models"
OUT = "https://contosoout.blob.core.windows.net/assets"
POLL = 0.2


@pytest.fixture
def on_dialect(emu, monkeypatch):
    def use(api_version: str):
        for name, value in emu.env(api_version=api_version, **FAST_RETRIES).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(emu.state, "conversion_delay", 1.0)
        monkeypatch.setattr(emu.state, "page_size", 5)
        return emu

    return use


def start(count: int, prefix: str) -> list[str]:
    hook = RemoteRenderingHook()
    return [hook.create_conversion(IN, f"{prefix}{i}.fbx", OUT) for i in range(count)]


async def only_event(conversion_id: str, timeout: float = 20, **kwargs) -> dict:
    end_time = time.time() + timeout
    trigger = RemoteRenderingConversionTrigger(conversion_id, "arr_default", POLL, end_time, **kwargs)
    events = [validate_conversion_event(event.payload) async for event in trigger.run()]
    assert len(events) == 1
    return events[0]


async def test_conversion_waits_share_one_list_per_poll_on_2021(on_dialect):
    emu = on_dialect("2021-01-01")
    emu.state.fail_next_conversion("Bad geometry.")
    (failing,) = start(1, "broken")
    converting = start(11, "house")  # with the failing one, three pages of five
    unknown = "no-such-conversion"
    emu.state.reset_counts()

    ids = [*converting, failing, unknown]
    runs = [asyncio.ensure_future(only_event(conversion_id)) for conversion_id in ids]
    async with asyncio.timeout(5):
        while not _poller.active_pollers():
            await asyncio.sleep(0.01)
    (poller,) = _poller.active_pollers()
    events = dict(zip(ids, await asyncio.gather(*runs), strict=True))

    assert all(events[c]["status"] == "success" for c in converting)
    assert all(events[c]["properties"]["output_asset_uri"] for c in converting)
    assert events[failing]["status"] == "failed"
    assert "Bad geometry." in events[failing]["message"]
    assert "MS-CV of the answer: none" not in events[failing]["message"]  # its own answer's MS-CV
    assert events[unknown]["status"] == "failed"  # as the sensor's poke fails on a 404: no retry
    assert "does not exist" in events[unknown]["message"]
    assert "HTTP 404" in events[unknown]["message"]
    counts = emu.state.request_counts
    # Every poll listed every page (12 conversions, 5 a page); only the failed and the unknown
    # conversion were read on their own, once each.
    assert counts["conversion_list"] == 3 * poller.polls
    assert poller.polls >= 2  # it polled while they converted
    assert counts["conversion_properties"] == 2
    assert not _poller.active_pollers()


async def test_v1_conversion_waits_read_their_own_conversion(on_dialect):
    emu = on_dialect("v1")
    ids = start(3, "house")
    emu.state.reset_counts()

    events = await asyncio.gather(*(only_event(conversion_id) for conversion_id in ids))

    assert {event["status"] for event in events} == {"success"}
    counts = emu.state.request_counts
    assert counts["conversion_list"] == 0  # v1 has no list call
    assert counts["conversion_properties"] >= 2 * len(ids)  # each read its own while it converted


async def test_a_wait_of_its_own_on_2021(on_dialect):
    emu = on_dialect("2021-01-01")
    (conversion_id,) = start(1, "house")
    emu.state.reset_counts()
    event = await only_event(conversion_id, shared_poll=False)
    assert event["status"] == "success"
    assert emu.state.request_counts["conversion_list"] == 0
    assert emu.state.request_counts["conversion_properties"] >= 2
    _, kwargs = RemoteRenderingConversionTrigger(conversion_id, "c", 5, 1.0, shared_poll=False).serialize()
    assert kwargs["shared_poll"] is False


async def test_a_failing_conversion_list_is_each_waits_error(on_dialect):
    emu = on_dialect("2021-01-01")
    ids = start(4, "house")
    emu.state.reset_counts()
    emu.state.add_fault("conversion_list", 500, body="internal", count=100)

    events = await asyncio.gather(*(only_event(conversion_id) for conversion_id in ids))

    assert {event["status"] for event in events} == {"error"}
    assert all("HTTP 500" in event["message"] and "internal" in event["message"] for event in events)
    counts = emu.state.request_counts
    assert 1 < counts["conversion_list"] <= FAST_RETRIES.get("retry_limit", 6)  # one call's retries
    assert counts["conversion_properties"] == 0
