"""Odd answers on demand: foreign list items, a reported status text, @nextLinks that loop (both dialects)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import httpx
import pytest

from airflow_provider_arr.emulator.cli import build_parser
from airflow_provider_arr.emulator.oddities import FOREIGN_KINDS

V2021 = "?api-version=2021-01-01"


def list_url(emulator, dialect: str, resource: str = "sessions") -> str:
    if dialect == "v1":
        return f"/v1/accounts/{emulator.account_id}/{resource}"
    return f"/accounts/{emulator.account_id}/{resource}{V2021}"


@pytest.mark.parametrize("dialect", ["v1", "2021-01-01"])
@pytest.mark.parametrize("kind", FOREIGN_KINDS)
def test_foreign_items_come_first_in_every_list_answer(emulator, client, auth, dialect, kind):
    state = emulator.state
    mine = state.create_session(state.account_id, timedelta(hours=1)).session_id
    ids = state.add_foreign_items(kind, 2)

    for _ in range(2):  # every answer, not just the next one
        items = client.get(list_url(emulator, dialect), headers=auth).json()["sessions"]
        assert len(items) == 3
        foreign, own = items[:2], items[2]
        assert (own.get("sessionId") or own.get("id")) == mine
    id_key, status_key = ("sessionId", "sessionStatus") if dialect == "v1" else ("id", "status")
    if kind == "not_an_object":
        assert all(isinstance(item, str) for item in foreign)
        return
    assert all(isinstance(item, dict) for item in foreign)
    assert [item.get(id_key) for item in foreign] == ([None, None] if kind == "no_id" else ids)
    statuses = [item.get(status_key) for item in foreign]
    expected = {"unknown_status": "Hibernating", "no_status": None}.get(kind, "Ready")
    assert statuses == [expected] * 2
    if kind == "missing_fields":
        assert all(set(item) == {id_key, status_key} for item in foreign)
    if kind == "extra_fields":
        assert all("futureField" in item for item in foreign)


def test_foreign_conversions_come_first_and_a_read_of_one_is_404(emulator, client, auth):
    state = emulator.state
    (foreign_id,) = state.add_foreign_items("unknown_status", resource="conversions", status="Paused")
    items = client.get(list_url(emulator, "2021-01-01", "conversions"), headers=auth).json()["conversions"]
    assert [(item["id"], item["status"]) for item in items] == [(foreign_id, "Paused")]
    url = f"/accounts/{emulator.account_id}/conversions/{foreign_id}{V2021}"
    assert client.get(url, headers=auth).status_code == 404


@pytest.mark.parametrize("dialect", ["v1", "2021-01-01"])
def test_a_reported_status_text_shows_on_reads_and_lists_while_the_life_cycle_goes_on(
    emulator, client, auth, dialect
):
    state = emulator.state
    session_id = state.create_session(state.account_id, timedelta(hours=1)).session_id
    state.report_status(session_id, "Migrating")
    status_key = "sessionStatus" if dialect == "v1" else "status"
    if dialect == "v1":
        read = f"/v1/accounts/{emulator.account_id}/sessions/{session_id}/properties"
    else:
        read = f"/accounts/{emulator.account_id}/sessions/{session_id}{V2021}"

    assert client.get(read, headers=auth).json()[status_key] == "Migrating"
    (listed,) = client.get(list_url(emulator, dialect), headers=auth).json()["sessions"]
    assert listed[status_key] == "Migrating"
    state.report_status(session_id, None)
    assert client.get(read, headers=auth).json()[status_key] in ("Starting", "Ready")


@pytest.mark.parametrize("dialect", ["v1", "2021-01-01"])
@pytest.mark.parametrize(
    ("mode", "pages", "spelling"),
    [("self", 2, "exact"), ("cycle", 2, "exact"), ("cycle", 3, "relative"), ("self", 2, "upper_host")],
)
def test_a_looping_next_link_comes_back_to_a_page_already_seen(
    emulator, client, auth, dialect, mode, pages, spelling
):
    emulator.state.loop_next_link(mode, pages=pages, spelling=spelling)
    first = emulator.url + list_url(emulator, dialect)
    url, seen = first, []
    for _ in range(pages if mode == "cycle" else 1):
        link = client.get(url, headers=auth).json()["@nextLink"]
        seen.append(url)
        url = str(httpx.URL(first).join(link))
    assert httpx.URL(url) == httpx.URL(first)  # URL equality: the scheme and host compare case-blind
    if spelling == "upper_host":
        assert link.startswith("HTTP://127.0.0.1")
    if spelling == "relative":
        assert link.startswith("/")


def test_an_endless_next_link_is_new_on_every_page(emulator, client, auth):
    emulator.state.loop_next_link("endless")
    url, links = list_url(emulator, "2021-01-01"), set()
    for _ in range(5):
        url = client.get(url, headers=auth).json()["@nextLink"]
        links.add(url)
    assert len(links) == 5


def test_the_cli_flags_set_them_up_and_are_documented():
    args = build_parser().parse_args(
        ["--foreign-item", "no_id:sessions:3", "--next-link-loop", "cycle:conversions:3:relative"]
    )
    assert args.foreign_item == [{"kind": "no_id", "resource": "sessions", "count": 3}]
    assert args.next_link_loop == [
        {"mode": "cycle", "resource": "conversions", "pages": 3, "spelling": "relative"}
    ]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--foreign-item", "sideways"])
    help_text = subprocess.run(
        [sys.executable, "-m", "airflow_provider_arr.emulator", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--foreign-item" in help_text
    assert "--next-link-loop" in help_text
