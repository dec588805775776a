"""Issue 18, rule 3 for waits: the deadline holds while a read is in flight (a hung answer, a retry that
sleeps): the read is abandoned, and the wait times out with what it last knew. Bounds are generous: the
connection would otherwise hold each read 30 s and retry for 60 s."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from airflow_provider_arr.exceptions import RemoteRenderingWaitCancelledError, RemoteRenderingWaitTimeoutError
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.hooks.steps import DEADLINE_GRACE

#: Patient connection settings: without the bound, one hung read would hold a wait 30 s or more.
PATIENT = {"retry_min_wait": 0.05, "retry_max_wait": 0.2, "retry_max_time": 60, "read_timeout": 30}
#: What keeps the next read in flight: a late answer, or throttling that asks for 30 s.
HANGS = {
    "late-answer": {"delay": 30},
    "retry-after-30": {"status": 503, "headers": {"Retry-After": "30"}, "count": 3},
    "dropped-late": {"action": "drop_before", "delay": 30},
}
#: Far below what the hang costs without the bound (30 s), far above the deadline plus its grace.
BOUND = 1.0 + DEADLINE_GRACE + 8


@pytest.fixture(params=["v1", "2021-01-01"])
def patient(request, arr_conn, monkeypatch):
    for name, value in arr_conn.env(api_version=request.param, **PATIENT).items():
        monkeypatch.setenv(name, value)
    arr_conn.state.start_delay = 60
    return arr_conn


def run_wait(kind: str, mode: str, hook: RemoteRenderingHook, item_id: str, end_time: float):
    if kind == "session":
        if mode == "sync":
            return hook.wait_until_ready(item_id, 0.1, end_time)
        return asyncio.run(hook.await_until_ready(item_id, 0.1, end_time))
    if mode == "sync":
        return hook.wait_for_conversion(item_id, 0.1, end_time)
    return asyncio.run(hook.await_conversion(item_id, 0.1, end_time))


@pytest.mark.parametrize("hang", sorted(HANGS))
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("kind", ["session", "conversion"])
def test_a_read_in_flight_at_the_deadline_is_abandoned(patient, hang, mode, kind):
    state = patient.state
    state.conversion_delay = 60
    hook = RemoteRenderingHook()
    if kind == "session":
        item_id, operation = hook.create_session("1:00:00"), "properties"
    else:
        item_id = hook.create_conversion(
            "https://in0.blob.core.windows.net/models",
            "house.fbx",
            "https://out0.blob.core.windows.net/assets",
        )
        operation = "conversion_properties"
    hook.get_token()
    started = time.monotonic()
    end_time = time.time() + 1.0
    # The first read answers (the wait knows the status); every later one hangs.
    state.add_fault(operation, status=None, delay=0.0)
    state.add_fault(operation, **({"count": 50} | HANGS[hang]))

    with pytest.raises(RemoteRenderingWaitTimeoutError) as caught:
        run_wait(kind, mode, hook, item_id, end_time)

    elapsed = time.monotonic() - started
    assert time.time() >= end_time
    assert elapsed < BOUND, f"the wait ended {elapsed:.1f} s after it began; its deadline was at 1 s"
    assert "when the wait timed out" in str(caught.value)
    assert "no answer by the wait's deadline" in str(caught.value)
    assert caught.value.properties is not None  # what it last knew


def test_a_wait_whose_first_read_hangs_times_out_without_a_status(patient):
    hook = RemoteRenderingHook()
    session_id = hook.create_session("1:00:00")
    patient.state.add_fault("properties", delay=30, count=50)
    started = time.monotonic()
    with pytest.raises(RemoteRenderingWaitTimeoutError, match="No status of session") as caught:
        hook.wait_until_ready(session_id, 0.1, time.time() + 0.5)
    assert time.monotonic() - started < BOUND
    assert caught.value.properties is None


def test_cancel_abandons_a_read_in_flight(patient):
    hook = RemoteRenderingHook()
    session_id = hook.create_session("1:00:00")
    patient.state.add_fault("properties", delay=30, count=50)
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(RemoteRenderingWaitCancelledError):
        hook.wait_until_ready(session_id, 0.1, time.time() + 600, cancel)
    assert time.monotonic() - started < 10
