"""The hook against the emulator on a real loopback socket: wire format, tokens, retries, errors."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import traceback
from datetime import timedelta

import pytest

from airflow_provider_arr.exceptions import (
    RemoteRenderingError,
    RemoteRenderingSessionMayExistError,
    RemoteRenderingSessionNotFoundError,
)
from airflow_provider_arr.hooks import sessions as hook_sessions
from airflow_provider_arr.hooks import tokens
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook, clear_token_cache
from airflow_provider_arr.models import ArrInputError, SessionStatus
from tests.helpers import FAST_RETRIES

MS_CV = re.compile(r"MS-CV: [A-Za-z0-9+/]{22}\.0")
UNKNOWN = "00000000-1111-2222-3333-444444444444"


def wait_for_status(hook, session_id, status, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        props = hook.get_session(session_id)
        if props.status is status:
            return props
        time.sleep(0.05)
    raise AssertionError(f"session {session_id} never became {status}")


def total_requests(emulator):
    return sum(emulator.state.request_counts.values())


def test_life_cycle_on_the_wire(arr_conn):
    hook = RemoteRenderingHook()
    session_id = hook.create_session("1:0:0", size="Premium", models=["https://example/model.arrAsset"])
    record = next(s for s in arr_conn.state.sessions() if s.session_id == session_id)
    assert record.max_lease_time == timedelta(hours=1)
    assert record.size.lower() == "premium"

    starting = hook.get_session(session_id)
    assert starting.status is SessionStatus.STARTING
    assert starting.max_lease_time == timedelta(hours=1)

    ready = wait_for_status(hook, session_id, SessionStatus.READY)
    assert ready.hostname
    assert ready.hostname.endswith(".mixedreality.azure.com")
    assert ready.size == "Premium"
    assert [s.session_id for s in hook.list_sessions()] == [session_id]

    hook.update_session(session_id, timedelta(hours=2))
    assert hook.get_session(session_id).max_lease_time == timedelta(hours=2)

    hook.stop_session(session_id)
    assert hook.get_session(session_id).status is SessionStatus.STOPPED
    assert hook.list_sessions() == []
    counts = arr_conn.state.request_counts
    assert (counts["token"], counts["create"], counts["update"], counts["stop"]) == (1, 1, 1, 1)


def test_one_sts_call_for_many_hook_instances(arr_conn):
    session_id = RemoteRenderingHook().create_session("0:10:0")
    for _ in range(5):
        RemoteRenderingHook().get_session(session_id)
    assert arr_conn.state.request_counts["token"] == 1
    assert arr_conn.state.request_counts["properties"] == 5


def test_token_refreshed_five_minutes_before_expiry(arr_conn, monkeypatch):
    hook = RemoteRenderingHook()
    first = hook.get_token()
    assert hook.get_token() == first
    assert arr_conn.state.request_counts["token"] == 1
    real_time = time.time
    # The emulator's tokens live 3600 s: 3400 s later we are inside the 5-minute lead.
    monkeypatch.setattr(time, "time", lambda: real_time() + 3400)
    second = hook.get_token()
    assert arr_conn.state.request_counts["token"] == 2
    assert second != first


def test_token_fetched_again_once_on_401(arr_conn):
    hook = RemoteRenderingHook()
    hook.list_sessions()
    arr_conn.state.revoke_tokens()
    assert hook.list_sessions() == []
    assert arr_conn.state.request_counts["token"] == 2
    assert arr_conn.state.request_counts["list"] == 3


def test_429_with_retry_after_waits_that_long(arr_conn):
    hook = RemoteRenderingHook()
    hook.get_token()
    arr_conn.state.add_fault("list", 429, body='{"error": "Too many requests"}', headers={"Retry-After": "1"})
    started = time.monotonic()
    assert hook.list_sessions() == []
    assert time.monotonic() - started >= 0.95
    assert arr_conn.state.request_counts["list"] == 2


def test_503_is_retried(arr_conn):
    hook = RemoteRenderingHook()
    arr_conn.state.add_fault("list", 503, count=2)
    assert hook.list_sessions() == []
    assert arr_conn.state.request_counts["list"] == 3


def test_retry_budget_is_bounded_and_says_so(arr_conn, monkeypatch):
    extra = {"retry_min_wait": 0.05, "retry_max_wait": 0.1, "retry_limit": 3}
    for name, value in arr_conn.env(**extra).items():
        monkeypatch.setenv(name, value)
    arr_conn.state.add_fault("list", 503, body='{"error": "busy"}', count=50)
    with pytest.raises(RemoteRenderingError, match=r"HTTP 503.*busy.*Gave up after 3 attempt"):
        RemoteRenderingHook().list_sessions()
    assert arr_conn.state.request_counts["list"] == 3


def test_404_names_operation_status_and_ms_cv(arr_conn):
    with pytest.raises(RemoteRenderingSessionNotFoundError) as error:
        RemoteRenderingHook().get_session(UNKNOWN)
    text = str(error.value)
    assert "get_session failed: HTTP 404" in text
    assert MS_CV.search(text), text
    assert error.value.http_status == 404
    assert error.value.ms_cv


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda h: h.create_session("4h"), "max_lease_time"),
        (lambda h: h.create_session("25:00:00"), "max_lease_time"),
        (lambda h: h.create_session("1:0:0", size="huge"), "size"),
        (lambda h: h.create_session("1:0:0", models="one"), "models"),
        (lambda h: h.get_session("../../token"), "session_id"),
        (lambda h: h.get_session(""), "session_id"),
        (lambda h: h.get_session(None), "session_id"),
        (lambda h: h.stop_session("abc"), "session_id"),
        (lambda h: h.update_session("abc", "2:0:0"), "session_id"),
        (lambda h: h.update_session(UNKNOWN, "-1:00:00"), "max_lease_time"),
    ],
)
def test_bad_input_rejected_before_any_request(arr_conn, call, field):
    with pytest.raises(ArrInputError) as error:
        call(RemoteRenderingHook())
    assert error.value.field == field
    assert total_requests(arr_conn) == 0


def test_create_is_not_retried_after_a_500_and_says_nothing_appeared(arr_conn):
    arr_conn.state.add_fault("create", 500, body='{"error": "internal"}')
    with pytest.raises(RemoteRenderingSessionMayExistError, match="No new session appeared") as error:
        RemoteRenderingHook().create_session("1:0:0")
    assert "HTTP 500" in str(error.value)
    assert arr_conn.state.request_counts["create"] == 1
    assert arr_conn.state.sessions() == []


def test_create_whose_answer_was_lost_adopts_the_one_new_session(arr_conn, monkeypatch):
    for name, value in arr_conn.env(read_timeout=0.3, retry_min_wait=0.05).items():
        monkeypatch.setenv(name, value)
    hook = RemoteRenderingHook()
    existing = hook.create_session("2:0:0")  # someone else's session, there before
    arr_conn.state.add_fault("create", None, delay=1.0)  # processed, but the answer comes too late
    adopted = hook.create_session("1:0:0")
    sessions = {s.session_id: s for s in arr_conn.state.sessions()}
    assert len(sessions) == 2  # no second VM was started by a blind retry...
    assert adopted in sessions  # ...and the one that was started is not forgotten
    assert adopted != existing
    assert sessions[adopted].max_lease_time == timedelta(hours=1)
    assert arr_conn.state.request_counts["create"] == 2


def test_create_with_several_candidates_names_them_and_guesses_nothing(arr_conn, monkeypatch):
    for name, value in arr_conn.env(read_timeout=0.3, retry_min_wait=0.05).items():
        monkeypatch.setenv(name, value)
    hook = RemoteRenderingHook()
    arr_conn.state.add_fault("create", None, delay=1.0)
    real_list = hook_sessions.list_steps
    calls = []

    def list_with_a_concurrent_creator(dialect, log=None):
        calls.append(1)
        if len(calls) == 2:  # right after our lost create, another client creates an identical one
            RemoteRenderingHook().create_session("1:0:0")
        return (yield from real_list(dialect, log))

    monkeypatch.setattr(hook_sessions, "list_steps", list_with_a_concurrent_creator)
    with pytest.raises(RemoteRenderingSessionMayExistError, match="2 matching sessions appeared") as error:
        hook.create_session("1:0:0")
    for session in arr_conn.state.sessions():
        assert session.session_id in str(error.value)


async def test_async_create_adopts_too(arr_conn, monkeypatch):
    for name, value in arr_conn.env(read_timeout=0.3, retry_min_wait=0.05).items():
        monkeypatch.setenv(name, value)
    arr_conn.state.add_fault("create", None, delay=1.0)
    async with RemoteRenderingHook() as hook:
        adopted = await hook.acreate_session("1:0:0")
    assert [s.session_id for s in arr_conn.state.sessions()] == [adopted]


def test_create_is_retried_when_the_service_did_not_act(arr_conn):
    arr_conn.state.add_fault("create", 429, headers={"Retry-After": "0"})
    arr_conn.state.add_fault("create", 503)
    session_id = RemoteRenderingHook().create_session("1:0:0")
    assert [s.session_id for s in arr_conn.state.sessions()] == [session_id]


def test_sts_401_with_empty_body_says_check_account(arr_conn, monkeypatch):
    conn = arr_conn.connection(**{"retry_min_wait": 0.05})
    conn["password"] = "wrong-key"
    monkeypatch.setenv("AIRFLOW_CONN_ARR_DEFAULT", json.dumps(conn))
    with pytest.raises(RemoteRenderingError) as error:
        RemoteRenderingHook().list_sessions()
    text = str(error.value)
    assert "get_token failed: HTTP 401" in text
    assert "check your account id" in text
    assert "account key" in text
    assert "wrong-key" not in text
    assert arr_conn.state.request_counts["token"] == 1  # a 401 is not retried
    # What the task log shows: our calls down to the failed request, none of the retry machinery.
    frames = traceback.extract_tb(error.value.__traceback__)
    assert [frame for frame in frames if "tenacity" in frame.filename] == []
    assert len(frames) <= 8, traceback.format_tb(error.value.__traceback__)


def test_secrets_never_in_debug_logs_or_errors(arr_conn, debug_logs):
    hook = RemoteRenderingHook()
    session_id = hook.create_session("1:0:0")
    hook.get_session(session_id)
    arr_conn.state.revoke_tokens()
    hook.list_sessions()
    with pytest.raises(RemoteRenderingError) as error:
        hook.get_session(UNKNOWN)
    hook.stop_session(session_id)
    token = hook.get_token()
    logs = debug_logs()
    assert "ARR POST /v1/accounts/" in logs  # the calls were logged...
    assert "MS-CV" in logs
    assert "-> 401" in logs
    assert "-> 404" in logs
    for secret in (arr_conn.account_key, token):
        assert secret not in logs  # ...but never with a secret
        assert secret not in str(error.value)


def test_plain_http_refused_unless_loopback(arr_conn, monkeypatch):
    conn = arr_conn.connection()
    conn["host"] = "http://remoterendering.westus2.mixedreality.azure.com"
    monkeypatch.setenv("AIRFLOW_CONN_ARR_DEFAULT", json.dumps(conn))
    with pytest.raises(ArrInputError, match="plain http://"):
        RemoteRenderingHook().list_sessions()
    assert total_requests(arr_conn) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"host": "remoterendering.westus2.mixedreality.azure.com"}, "host"),
        ({"host": "", "extra": {}}, "host"),
        ({"login": "not-a-guid"}, "login"),
        ({"password": ""}, "password"),
        ({"extra": {"sts_url": "ftp://x"}}, "sts_url"),
        ({"extra": {"sts_url": "http://127.0.0.1:1", "read_timeout": "soon"}}, "read_timeout"),
        ({"extra": {"sts_url": "http://127.0.0.1:1", "api_version": "v9"}}, "api_version"),
    ],
)
def test_bad_connection_names_the_field(arr_conn, monkeypatch, change, field):
    conn = {**arr_conn.connection(), **change}
    monkeypatch.setenv("AIRFLOW_CONN_ARR_DEFAULT", json.dumps(conn))
    with pytest.raises(ArrInputError, match=field) as error:
        RemoteRenderingHook().list_sessions()
    assert "connection 'arr_default'" in str(error.value)
    assert total_requests(arr_conn) == 0


def test_region_shortcut(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ARR_DEFAULT",
        json.dumps(
            {
                "conn_type": "azure_remote_rendering",
                "login": UNKNOWN,
                "password": "k",
                "extra": {"region": "westus2"},
            }
        ),
    )
    settings = RemoteRenderingHook().settings
    assert settings.base_url == "https://remoterendering.westus2.mixedreality.azure.com"
    assert settings.sts_url == "https://sts.mixedreality.azure.com"


def test_test_connection(arr_conn, monkeypatch):
    ok, message = RemoteRenderingHook().test_connection()
    assert ok, message
    assert "0 active session" in message
    conn = arr_conn.connection()
    conn["password"] = "nope"
    monkeypatch.setenv("AIRFLOW_CONN_ARR_DEFAULT", json.dumps(conn))
    # No cache clearing: a token fetched with the right key must not make a wrong key look good.
    ok, message = RemoteRenderingHook().test_connection()
    assert not ok
    assert "check your account id" in message


async def test_async_twins_share_one_token(arr_conn):
    async with RemoteRenderingHook() as hook:
        session_id = await hook.acreate_session("0:30:0")
        results = await asyncio.gather(*(hook.aget_session(session_id) for _ in range(20)))
        assert {r.session_id for r in results} == {session_id}
        assert [s.session_id for s in await hook.alist_sessions()] == [session_id]
        await hook.aupdate_session(session_id, "1:0:0")
        await hook.astop_session(session_id)
    async with RemoteRenderingHook() as other:
        assert (await other.aget_session(session_id)).status is SessionStatus.STOPPED
    assert arr_conn.state.request_counts["token"] == 1


async def test_async_path_retries_and_refetches_like_the_sync_one(arr_conn):
    async with RemoteRenderingHook() as hook:
        await hook.alist_sessions()
        arr_conn.state.revoke_tokens()
        arr_conn.state.add_fault("list", 503)
        assert await hook.alist_sessions() == []
    assert arr_conn.state.request_counts["token"] == 2


@pytest.fixture
def sleeps(monkeypatch):
    """Record the waits between attempts (this thread's ``time.sleep`` calls) instead of waiting."""
    recorded: list[float] = []
    real_sleep, caller = time.sleep, threading.current_thread()

    def sleep(seconds: float) -> None:
        if threading.current_thread() is caller:
            recorded.append(seconds)
        else:
            real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    return recorded


def list_throttled_once(arr_conn, monkeypatch, retry_after: str) -> list[dict]:
    """List the sessions, answered first by a 429 with this ``Retry-After``; backoff alone waits 1-2 s."""
    extras = {**FAST_RETRIES, "retry_min_wait": 2, "retry_max_wait": 2, "retry_max_time": 120}
    for name, value in arr_conn.env(**extras).items():
        monkeypatch.setenv(name, value)
    arr_conn.state.add_fault("list", 429, headers={"Retry-After": retry_after})
    return RemoteRenderingHook().list_sessions()


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0.5", None), ("-4", None), ("soon", None), ("", None)],
)
def test_retry_after_seconds(arr_conn, monkeypatch, sleeps, header, expected):
    assert list_throttled_once(arr_conn, monkeypatch, header) == []
    (waited,) = sleeps
    if expected is None:  # shorter than the backoff, or not readable: the usual backoff, 1-2 s here
        assert 1 <= waited <= 2
    else:  # a lower bound longer than the backoff
        assert waited == expected


def test_retry_after_http_date(arr_conn, monkeypatch, sleeps):
    from email.utils import formatdate

    assert list_throttled_once(arr_conn, monkeypatch, formatdate(time.time() + 30, usegmt=True)) == []
    (seconds,) = sleeps
    assert 25 <= seconds <= 31


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"error": "flat v1 message"}', "flat v1 message"),
        ('{"error": {"code": "BadRequest", "message": "negative"}}', "BadRequest: negative"),
        ("plain text", "plain text"),
        ("", None),
    ],
)
def test_service_message_from_every_error_shape(arr_conn, body, expected):
    arr_conn.state.add_fault("list", 400, body=body)
    with pytest.raises(RemoteRenderingError) as raised:
        RemoteRenderingHook().list_sessions()
    assert raised.value.service_message == expected


def test_non_jwt_token_gets_a_conservative_lifetime(arr_conn, monkeypatch):
    real_time = time.time
    now = real_time()
    hook = RemoteRenderingHook()

    def token_at(offset: float) -> str:
        monkeypatch.setattr(time, "time", lambda: now + offset)
        return hook.get_token()

    # An opaque token (the STS may answer one): kept for more than 200 s, at most its assumed lifetime.
    arr_conn.state.add_fault("token", 200, body={"AccessToken": "opaque-token"}, count=2)
    assert token_at(0) == token_at(200) == "opaque-token"
    assert arr_conn.state.request_counts["token"] == 1
    token_at(tokens.NON_JWT_TOKEN_LIFETIME)
    assert arr_conn.state.request_counts["token"] == 2

    # The recordings' fake token: exp 2147483647, refreshed 5 minutes before.
    clear_token_cache()
    fake_jwt = "fake.eyJleHAiOjIxNDc0ODM2NDd9.fake"
    arr_conn.state.add_fault("token", 200, body={"AccessToken": fake_jwt}, count=2)
    now = 2147483647 - 300  # when it is due
    assert token_at(-1000) == token_at(-0.001) == fake_jwt
    assert arr_conn.state.request_counts["token"] == 3
    token_at(0)
    assert arr_conn.state.request_counts["token"] == 4
