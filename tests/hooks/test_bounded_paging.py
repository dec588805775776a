"""Issue 18, rule 3 for paging: a list stops on a next link already read, and at a page cap, with a clear
error; the calls are counted on the emulator (both dialects, sync and async, sessions and conversions)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_arr.exceptions import RemoteRenderingError
from airflow_provider_arr.hooks import paging
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from tests.helpers import FAST_RETRIES

#: (mode, pages, spelling) of the emulator's looping link, and the list calls a client should make.
LOOPS = [
    pytest.param("self", 2, "exact", 1, id="self"),
    pytest.param("self", 2, "relative", 1, id="self-relative"),
    pytest.param("self", 2, "upper_host", 1, id="self-upper-host"),
    pytest.param("cycle", 2, "exact", 2, id="cycle-of-2"),
    pytest.param("cycle", 3, "relative", 3, id="cycle-of-3-relative"),
    pytest.param("cycle", 5, "upper_host", 5, id="cycle-of-5-upper-host"),
]


def listing(kind: str, mode: str):
    hook = RemoteRenderingHook()
    call = {"sessions": (hook.list_sessions, hook.alist_sessions)}.get(
        kind, (hook.list_conversions, hook.alist_conversions)
    )
    return call[0]() if mode == "sync" else asyncio.run(call[1]())


@pytest.fixture(params=["v1", "2021-01-01"])
def api_version(request, arr_conn, monkeypatch):
    for name, value in arr_conn.env(api_version=request.param, **FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    return request.param


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(("loop", "pages", "spelling", "calls"), LOOPS)
def test_a_next_link_back_to_a_page_already_read_ends_the_list(
    arr_conn, api_version, mode, loop, pages, spelling, calls
):
    RemoteRenderingHook().create_session("1:00:00")
    arr_conn.state.loop_next_link(loop, pages=pages, spelling=spelling)
    arr_conn.state.reset_counts()
    with pytest.raises(RemoteRenderingError, match="leads back to a page already read") as caught:
        listing("sessions", mode)
    assert arr_conn.state.request_counts["list"] == calls
    assert "MS-CV: none" not in str(caught.value)


@pytest.mark.parametrize(("loop", "pages", "spelling", "calls"), LOOPS)
def test_a_conversion_list_stops_the_same_way(arr_conn, monkeypatch, loop, pages, spelling, calls):
    for name, value in arr_conn.env(api_version="2021-01-01", **FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    arr_conn.state.loop_next_link(loop, pages=pages, spelling=spelling, resource="conversions")
    with pytest.raises(RemoteRenderingError, match=r"list_conversions failed.*already read"):
        listing("conversions", "sync")
    assert arr_conn.state.request_counts["conversion_list"] == calls


@pytest.mark.parametrize("cap", [1, 2, 7])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_endless_list_stops_at_the_page_cap(arr_conn, api_version, monkeypatch, cap, mode):
    monkeypatch.setattr(paging, "MAX_LIST_PAGES", cap)
    arr_conn.state.loop_next_link("endless")
    with pytest.raises(RemoteRenderingError, match=f"did not end within {cap} pages"):
        listing("sessions", mode)
    assert arr_conn.state.request_counts["list"] == cap


def test_real_pages_are_still_all_read(arr_conn, monkeypatch):
    for name, value in arr_conn.env(api_version="2021-01-01", **FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    arr_conn.state.page_size = 2
    hook = RemoteRenderingHook()
    made = {hook.create_session("1:00:00") for _ in range(7)}
    assert {session.session_id for session in hook.list_sessions()} == made
    assert arr_conn.state.request_counts["list"] == 4


BASE = "https://remoterendering.westus2.mixedreality.azure.com/accounts/a/sessions"


@pytest.mark.parametrize(
    "other",
    [
        BASE + "?api-version=2021-01-01",
        "HTTPS://RemoteRendering.WestUS2.MixedReality.Azure.com/accounts/a/sessions?api-version=2021-01-01",
        BASE.replace(".com/", ".com:443/") + "?api-version=2021-01-01",
        BASE.replace(".com/", ".com./") + "?api-version=2021-01-01",
        BASE + "/?api-version=2021-01-01",
        BASE.replace("/accounts/", "/Accounts/") + "?API-Version=2021-01-01",
        BASE.replace("/a/", "/%61/") + "?api-version=2021-01-01#fragment",
    ],
)
def test_links_that_differ_only_in_spelling_are_the_same_page(other):
    assert paging.page_key(other) == paging.page_key(BASE + "?api-version=2021-01-01")


@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1),
)
def test_continuation_tokens_tell_pages_apart_case_sensitively(first, second):
    key = paging.page_key
    same = key(f"{BASE}?api-version=2021-01-01&continuationToken={first}") == key(
        f"{BASE}?continuationToken={second}&api-version=2021-01-01"
    )
    assert same == (first == second)
