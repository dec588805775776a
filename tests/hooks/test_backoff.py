"""Rule 6 of issue 18, "backoff always backs off": ``Retry-After`` is the service's lower bound.

Against the emulator on a loopback socket: its 429s carry the ``Retry-After`` (and ``Date``) a test
asks for. The waits are recorded instead of slept where they only need to be counted and compared.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_arr.exceptions import RemoteRenderingError
from airflow_provider_arr.hooks import policy
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.hooks.settings import ConnectionSettings
from tests.helpers import FAST_RETRIES

#: Four attempts, backoff ceilings 0.05, 0.1, 0.2 s: the jittered wait is at least half of each.
RETRIES = {**FAST_RETRIES, "retry_limit": 4, "retry_min_wait": 0.05, "retry_max_wait": 0.2}
BACKOFF_FLOORS = [0.025, 0.05, 0.1]


def http_date(when: datetime) -> str:
    return format_datetime(when.astimezone(UTC), usegmt=True)


NOW = datetime.now(UTC).replace(microsecond=0)
SKEWED_SERVER = datetime(2001, 1, 1, tzinfo=UTC)


@pytest.fixture
def waits(monkeypatch):
    """Record the retry waits of this thread (sync and async) instead of waiting them."""
    recorded: list[float] = []
    caller = threading.current_thread()
    real_sleep, real_asleep = time.sleep, asyncio.sleep

    def sleep(seconds: float) -> None:
        if threading.current_thread() is caller:
            recorded.append(seconds)
        else:
            real_sleep(seconds)

    async def asleep(seconds: float, *args: object) -> object:
        if threading.current_thread() is caller:
            recorded.append(seconds)
            seconds = 0
        return await real_asleep(seconds, *args)

    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(asyncio, "sleep", asleep)
    return recorded


def configure(arr_conn, monkeypatch, **extras: object) -> None:
    for name, value in arr_conn.env(**{**RETRIES, **extras}).items():
        monkeypatch.setenv(name, value)


def list_sessions(mode: str) -> object:
    if mode == "sync":
        return RemoteRenderingHook().list_sessions()

    async def run() -> object:
        async with RemoteRenderingHook() as hook:
            return await hook.alist_sessions()

    return asyncio.run(run())


#: Retry-After values that allow no wait at all: each must still get the full backoff.
NO_WAIT_ASKED = [
    pytest.param({"Retry-After": "0"}, id="zero"),
    pytest.param({"Retry-After": "0.0"}, id="zero-float"),
    pytest.param({"Retry-After": "000"}, id="zero-padded"),
    pytest.param({"Retry-After": "-30"}, id="negative"),
    pytest.param({"Retry-After": "nan"}, id="nan"),
    pytest.param({"Retry-After": " 0 "}, id="blanks"),
    pytest.param({"Retry-After": http_date(NOW - timedelta(minutes=5))}, id="date-past-by-local-clock"),
    pytest.param(
        {"Date": http_date(SKEWED_SERVER), "Retry-After": http_date(SKEWED_SERVER)}, id="date-equals-Date"
    ),
    pytest.param(
        {"Date": http_date(NOW), "Retry-After": http_date(NOW - timedelta(days=1))}, id="date-before-Date"
    ),
]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("headers", NO_WAIT_ASKED)
def test_a_retry_after_that_asks_for_no_wait_still_backs_off(arr_conn, monkeypatch, waits, mode, headers):
    configure(arr_conn, monkeypatch)
    arr_conn.state.add_fault("list", 429, headers=headers, count=10)
    with pytest.raises(RemoteRenderingError, match="HTTP 429"):
        list_sessions(mode)
    assert arr_conn.state.request_counts["list"] == 4
    assert len(waits) == 3
    for waited, floor in zip(waits, BACKOFF_FLOORS, strict=True):
        assert waited >= floor


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    "local_skew", [timedelta(0), timedelta(hours=-3), timedelta(hours=2), timedelta(days=1)]
)
@pytest.mark.parametrize(
    "server_now", [SKEWED_SERVER, NOW, NOW + timedelta(days=400)], ids=["2001", "now", "next-year"]
)
def test_a_retry_after_date_is_read_against_the_answers_date(
    arr_conn, monkeypatch, waits, mode, local_skew, server_now
):
    """The service asks for 1 s by its own clock; the local clock's skew does not matter."""
    configure(arr_conn, monkeypatch)
    monkeypatch.setattr(policy, "_local_now", lambda: datetime.now(UTC) + local_skew)
    headers = {"Date": http_date(server_now), "Retry-After": http_date(server_now + timedelta(seconds=1))}
    arr_conn.state.add_fault("list", 429, headers=headers)
    assert list_sessions(mode) == []
    assert arr_conn.state.request_counts["list"] == 2
    assert waits == [1.0]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    "retry_after",
    ["3600", "86400", http_date(NOW + timedelta(days=2))],
    ids=["an-hour", "a-day", "date-in-two-days"],
)
def test_a_retry_after_longer_than_the_budget_is_capped_by_it(
    arr_conn, monkeypatch, waits, mode, retry_after
):
    """The wait is cut to what is left of the budget, and the call goes on: no give-up at once."""
    configure(arr_conn, monkeypatch, retry_max_time=5)
    arr_conn.state.add_fault("list", 429, headers={"Retry-After": retry_after}, count=10)
    with pytest.raises(RemoteRenderingError, match=r"HTTP 429.*Gave up after 4 attempt"):
        list_sessions(mode)
    assert arr_conn.state.request_counts["list"] == 4
    assert len(waits) == 3
    assert all(0 < waited <= 5 for waited in waits)


def settings(**retries: float) -> ConnectionSettings:
    return ConnectionSettings(
        "http://127.0.0.1:1", "http://127.0.0.1:1", "00000000-0000-0000-0000-000000000000", "key", **retries
    )


retry_after_values = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.timedeltas(timedelta(days=-400), timedelta(days=400)).map(lambda d: http_date(NOW + d)),
    st.text(max_size=8),
)


@given(
    retry_after=retry_after_values,
    with_date=st.booleans(),
    attempt=st.integers(1, 8),
    elapsed=st.floats(0, 200),
    min_wait=st.floats(0.01, 5),
)
def test_every_wait_is_at_least_the_backoff_and_at_most_the_budget(
    retry_after, with_date, attempt, elapsed, min_wait
):
    """A property of the policy's wait: backoff <= wait, Retry-After <= wait, wait <= what is left."""
    config = settings(retry_min_wait=min_wait, retry_max_wait=min_wait * 8, retry_max_time=120.0)
    headers = {"Retry-After": retry_after, **({"Date": http_date(NOW)} if with_date else {})}
    error = policy.TransientError("list_sessions", retry_after=policy.retry_after(headers))
    outcome = SimpleNamespace(exception=lambda: error)
    state = SimpleNamespace(outcome=outcome, attempt_number=attempt, seconds_since_start=elapsed)
    wait = policy.retry_kwargs(config, None, None)["wait"](state)  # type: ignore[arg-type]
    left = max(config.retry_max_time - elapsed, 0.0)
    floor = min(config.retry_max_wait, min_wait * 2 ** (attempt - 1)) / 2
    assert 0.0 <= wait <= left
    assert wait >= min(floor, left)
    if error.retry_after is not None:
        assert wait >= min(error.retry_after, left)
