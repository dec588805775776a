"""Issue 18, rule 4 on the wire: items that are not ours never fail our call; our own unknown status is
reported and waited on until the deadline (both dialects, the emulator on a loopback socket)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from airflow_provider_arr.emulator.oddities import FOREIGN_KINDS
from airflow_provider_arr.exceptions import (
    RemoteRenderingSessionNeverReadyError,
    RemoteRenderingWaitTimeoutError,
)
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.models import ConversionStatus, SessionStatus
from tests.helpers import FAST_RETRIES

#: Foreign items the client reads (and lists), and those it skips.
READABLE = {"unknown_status", "missing_fields", "extra_fields"}
NEW_STATUSES = ["Hibernating", "Suspended", "Unknown", "READYING"]


@pytest.fixture(params=["v1", "2021-01-01"])
def dialect_conn(request, arr_conn, monkeypatch):
    """The emulator, with ``arr_default`` speaking either dialect."""
    for name, value in arr_conn.env(api_version=request.param, **FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    arr_conn.api_version = request.param
    return arr_conn


@pytest.mark.parametrize("kind", FOREIGN_KINDS)
def test_a_foreign_item_of_any_kind_never_fails_the_list(dialect_conn, kind, debug_logs):
    hook = RemoteRenderingHook()
    mine = hook.create_session("1:00:00")
    dialect_conn.state.add_foreign_items(kind, 2)

    listed = {session.session_id: session for session in hook.list_sessions()}
    assert mine in listed
    assert len(listed) == (3 if kind in READABLE else 1)
    if kind == "unknown_status":
        assert {s.status_text for s in listed.values() if s.session_id != mine} == {"Hibernating"}
        assert {s.status for s in listed.values() if s.session_id != mine} == {SessionStatus.UNKNOWN}
    if kind not in READABLE:
        assert debug_logs().count("skipped 2 listed item(s)") == 1  # one warning, not one per item


@pytest.mark.parametrize("kind", FOREIGN_KINDS)
def test_a_v1_create_lists_beside_foreign_items_and_succeeds(arr_conn, kind):
    arr_conn.state.add_foreign_items(kind)
    hook = RemoteRenderingHook()
    session_id = hook.create_session("1:00:00")
    assert session_id in {record.session_id for record in arr_conn.state.sessions()}
    assert hook.sessions_before_create is not None
    assert session_id not in hook.sessions_before_create


@pytest.mark.parametrize("text", NEW_STATUSES)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_our_session_in_an_unknown_status_is_waited_on_until_the_deadline(
    dialect_conn, text, mode, debug_logs
):
    hook = RemoteRenderingHook()
    session_id = hook.create_session("1:00:00")
    dialect_conn.state.report_status(session_id, text)
    dialect_conn.state.reset_counts()
    end_time = time.time() + 1.0

    def wait() -> None:
        if mode == "sync":
            hook.wait_until_ready(session_id, 0.1, end_time)
        else:
            asyncio.run(hook.await_until_ready(session_id, 0.1, end_time))

    with pytest.raises(RemoteRenderingWaitTimeoutError) as caught:
        wait()

    assert time.time() >= end_time  # not before its deadline
    assert f"was still {text} when the wait timed out" in str(caught.value)
    assert caught.value.properties.status_text == text
    assert dialect_conn.state.request_counts["properties"] >= 3  # it went on reading
    logged = debug_logs()
    assert f"reports the status '{text}', which this client does not know (MS-CV of the answer: " in logged
    assert "MS-CV of the answer: none" not in logged


@pytest.mark.parametrize(
    ("ends_as", "then"), [("Ready", "ready"), ("Stopped", "never"), ("Expired", "never")]
)
def test_an_unknown_status_ends_the_wait_only_when_the_service_reports_an_end(dialect_conn, ends_as, then):
    state = dialect_conn.state
    state.start_delay = 0.5
    hook = RemoteRenderingHook()
    session_id = hook.create_session("1:00:00")
    state.report_status(session_id, "Hibernating")

    def later() -> None:
        time.sleep(0.6)
        if ends_as == "Stopped":
            state.stop_session_externally(session_id)
        elif ends_as == "Expired":
            state.expire_session(session_id)
        state.report_status(session_id, None)

    threading.Thread(target=later, daemon=True).start()
    if then == "ready":
        assert hook.wait_until_ready(session_id, 0.1, time.time() + 20).status is SessionStatus.READY
    else:
        with pytest.raises(RemoteRenderingSessionNeverReadyError, match=ends_as):
            hook.wait_until_ready(session_id, 0.1, time.time() + 20)


@pytest.mark.parametrize("kind", FOREIGN_KINDS)
def test_foreign_conversions_never_fail_the_conversion_list(arr_conn, monkeypatch, kind):
    for name, value in arr_conn.env(api_version="2021-01-01", **FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    arr_conn.state.add_foreign_items(kind, 2, resource="conversions")
    listed = RemoteRenderingHook().list_conversions()
    assert len(listed) == (2 if kind in READABLE else 0)


@pytest.mark.parametrize("text", NEW_STATUSES)
def test_our_conversion_in_an_unknown_status_is_waited_on_until_the_deadline(dialect_conn, text):
    state = dialect_conn.state
    state.conversion_delay = 60
    hook = RemoteRenderingHook()
    conversion_id = hook.create_conversion(
        "https://in0.blob.core.windows.net/models", "house.fbx", "https://out0.blob.core.windows.net/assets"
    )
    state.report_status(conversion_id, text)
    end_time = time.time() + 1.0
    with pytest.raises(RemoteRenderingWaitTimeoutError, match=f"was still {text} when") as caught:
        hook.wait_for_conversion(conversion_id, 0.1, end_time)
    assert caught.value.properties.status is ConversionStatus.UNKNOWN
