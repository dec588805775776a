"""The view's figures, without Airflow or HTTP: prices, cost, billed time, what a user sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_arr.models import ArrInputError, SessionProperties, SessionStatus
from airflow_provider_arr.ownership import Owner, OwnershipRecord
from airflow_provider_arr.ownership.assess import attribute
from airflow_provider_arr.ownership.evidence import Verdict
from airflow_provider_arr.plugins.views import (
    Links,
    account_section,
    can_see,
    cost,
    parse_prices,
    session_view,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LINKS = Links("/airflow", "/arr")


def session(session_id: str = "s1", size: str = "Standard", elapsed: int = 30) -> SessionProperties:
    return SessionProperties(
        session_id, SessionStatus.READY, "vm.example", timedelta(hours=1), timedelta(minutes=elapsed), size
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, None),
        ({"price_per_hour": ""}, None),
        ({"price_per_hour": {"Standard": 2.5, "premium": 10}}, {"standard": 2.5, "premium": 10.0}),
        ({"price_per_hour": '{"standard": 3}'}, {"standard": 3.0}),  # a URI gives extras as text
    ],
)
def test_prices_are_read_from_the_connection_extra(extra, expected):
    assert parse_prices("arr", extra) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2.5", "must be an object"),
        ("{not json", "must be a JSON object"),
        ({"standard": "cheap"}, "must be a number"),
        ({"standard": -1}, "must not be negative"),
        ({"standard": True}, "must be a number"),
        ([2.5], "must be an object"),
    ],
)
def test_a_bad_price_is_refused_naming_the_connection_and_the_field(value, problem):
    with pytest.raises(ArrInputError) as error:
        parse_prices("arr_prod", {"price_per_hour": value})
    assert "connection 'arr_prod' extra 'price_per_hour'" in str(error.value)
    assert problem in str(error.value)


def test_no_price_for_the_size_means_no_cost_never_a_made_up_one():
    assert cost(3600, "Standard", {"standard": 2.5}) == 2.5
    assert cost(3600, "Premium", {"standard": 2.5}) is None
    assert cost(3600, None, {"standard": 2.5}) is None
    assert cost(3600, "Standard", None) is None


def test_billed_time_counts_from_ready_when_a_task_recorded_it_else_from_the_start():
    owner = Owner("dag", "run", "create")
    record = OwnershipRecord(owner, "arr", "v1", {"s1": {"try": 2, "ready_at": "2026-12-06T11:45:00+00:00"}})
    found = attribute(
        [session("s1"), session("s2")], [record], {owner: Verdict("in_use", "is still running")}
    )
    recorded = session_view(found[0], "arr", NOW, {"standard": 4}, {("dag", "run"): "running"}, LINKS, True)
    assert (recorded["billed_seconds"], recorded["billed_from"]) == (900, "ready")
    assert recorded["cost"] == 1.0
    assert recorded["owner"]["try"] == 2
    assert recorded["owner"]["links"]["task"] == "/airflow/dags/dag/runs/run/tasks/create"
    assert recorded["actions"]["stop"] == "/airflow/arr/connections/arr/sessions/s1/stop"
    unrecorded = session_view(found[1], "arr", NOW, None, {}, LINKS, False)
    assert (unrecorded["billed_seconds"], unrecorded["billed_from"]) == (1800, "start")
    assert (unrecorded["verdict"], unrecorded["owner"], unrecorded["cost"]) == ("unattributed", None, None)
    assert unrecorded["actions"] == {}


def test_a_user_who_cannot_read_the_connection_sees_only_sessions_of_dags_they_can_read():
    owner = Owner("visible", "run", "create")
    record = OwnershipRecord(owner, "arr", "v1", {"s1": {"try": 1}})
    owned, unowned = attribute([session("s1"), session("s2")], [record], {owner: Verdict("in_use", "x")})
    assert can_see(owned, False, lambda dag_id: dag_id == "visible")
    assert not can_see(unowned, False, lambda dag_id: True)
    assert can_see(unowned, True, lambda dag_id: False)


def test_the_run_of_a_gone_owner_makes_its_session_unattributed_and_names_the_owner():
    owner = Owner("dag", "deleted", "create")
    record = OwnershipRecord(owner, "arr", "v1", {"s1": {"try": 1}})
    (found,) = attribute([session("s1")], [record], {owner: Verdict("gone", "its DAG run no longer exists")})
    assert found.category == "unattributed"
    assert found.owner is None
    assert "dag/deleted/create" in found.reason


def test_urls_lose_their_query_so_no_sas_is_shown():
    from airflow_provider_arr.plugins.views import without_query

    text = "cannot read https://a.blob.core.windows.net/c/m.fbx?sv=1&sig=SECRET, see https://b.example/x#frag"
    assert (
        without_query(text) == "cannot read https://a.blob.core.windows.net/c/m.fbx, see https://b.example/x"
    )
    assert without_query(None) is None


@pytest.mark.parametrize(
    ("seconds", "count", "price", "total"),
    [
        (0.1, 10, 2.5, 0.0007),  # each row shows 0.0001; ten of them are 0.0007, not 0.001
        (1.0, 3, 0.05, 0.0),  # each row shows 0.0; the total too
        (7.3, 7, 3.0, 0.0426),  # rows of 0.0061 would add up to 0.0427
        (3600.0, 2, 2.5, 5.0),
    ],
)
def test_an_accounts_total_cost_prices_the_billed_seconds_not_the_rounded_rows(seconds, count, price, total):
    prices = {"standard": price}
    rows = [
        {"billed_seconds": seconds, "size": "Standard", "cost": cost(seconds, "Standard", prices)}
        for _ in range(count)
    ]

    section = account_section("arr_x", "v1", rows, prices)

    assert section["total_cost"] == total
    assert section["total_billed_seconds"] == round(seconds * count, 1)
