"""The state machine alone, with a fake clock: no server, no sleeping."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_arr.emulator import DEFAULT_ACCOUNT_ID, DEFAULT_ACCOUNT_KEY, EmulatorState
from airflow_provider_arr.emulator.state import (
    AuthenticationError,
    InvalidLeaseError,
    InvalidSizeError,
    InvalidTokenError,
    LeaseNotExtendedError,
    SessionConflictError,
    SessionEndedError,
    SessionNotFoundError,
)

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def state(clock):
    return EmulatorState(start_delay=5, clock=clock, region="westeurope")


def test_default_account_and_added_accounts(state):
    assert (state.account_id, state.account_key) == (DEFAULT_ACCOUNT_ID, DEFAULT_ACCOUNT_KEY)
    account_id, key = state.add_account()
    assert state.verify_token(state.issue_token(account_id, key)) == account_id
    upper_id, _ = state.add_account(account_id.upper(), "k")
    assert upper_id == account_id
    with pytest.raises(AuthenticationError):
        state.issue_token(account_id, key)  # re-keyed above
    with pytest.raises(AuthenticationError):
        state.issue_token("00000000-0000-0000-0000-000000000000", "k")


def test_session_life_cycle_is_computed_from_the_clock(state, clock):
    created = state.create_session(DEFAULT_ACCOUNT_ID, 2 * HOUR, "PREMIUM", ["https://x/y.arrAsset"])
    assert (created.status, created.size, created.hostname, created.models) == (
        "Starting",
        "Premium",
        None,
        ("https://x/y.arrAsset",),
    )
    clock.now += 4.9
    assert state.get_session(created.session_id).status == "Starting"
    clock.now += 0.1
    ready = state.get_session(created.session_id)
    assert ready.status == "Ready"
    assert ready.ready_at == created.created_at + 5
    assert ready.hostname.endswith(".remoterenderingvm.westeurope.mixedreality.azure.com")
    assert ready.elapsed_time == timedelta(seconds=5)

    state.update_session(created.session_id, 3 * HOUR)
    clock.now += 2 * 3600
    assert state.get_session(created.session_id).status == "Ready"  # the lease was extended in time
    clock.now += 3600
    expired = state.get_session(created.session_id)
    assert expired.status == "Expired"
    assert "03:00:00 ran out" in expired.message
    assert expired.elapsed_time == 3 * HOUR
    clock.now += 100
    assert state.get_session(created.session_id).elapsed_time == 3 * HOUR
    assert state.active_sessions() == []
    assert [record.status for record in state.sessions()] == ["Expired"]


def test_a_lease_shorter_than_the_start_expires_while_starting(state, clock):
    session_id = state.create_session(DEFAULT_ACCOUNT_ID, timedelta(seconds=3)).session_id
    clock.now += 10
    record = state.get_session(session_id)
    assert (record.status, record.elapsed_time, record.ready_at) == ("Expired", timedelta(seconds=3), None)


def test_update_rules(state, clock):
    session_id = state.create_session(DEFAULT_ACCOUNT_ID, 4 * HOUR).session_id
    for smaller_or_equal in (4 * HOUR, HOUR):
        with pytest.raises(LeaseNotExtendedError, match="larger than the current lease of 04:00:00"):
            state.update_session(session_id, smaller_or_equal)
    with pytest.raises(InvalidLeaseError, match="24 hours"):
        state.update_session(session_id, timedelta(hours=24, seconds=1))
    assert state.update_session(session_id, timedelta(hours=24)).max_lease_time == timedelta(hours=24)
    state.stop_session(session_id)
    with pytest.raises(SessionEndedError, match="Stopped"):
        state.update_session(session_id, timedelta(hours=25))
    with pytest.raises(SessionNotFoundError):
        state.update_session("nope", 5 * HOUR)


def test_stop_freezes_elapsed_and_is_idempotent(state, clock):
    session_id = state.create_session(DEFAULT_ACCOUNT_ID, HOUR).session_id
    clock.now += 60
    stopped = state.stop_session(session_id)
    assert (stopped.status, stopped.elapsed_time) == ("Stopped", timedelta(seconds=60))
    clock.now += 7200
    again = state.stop_session(session_id)
    assert (again.status, again.elapsed_time, again.ended_at) == (
        "Stopped",
        timedelta(seconds=60),
        stopped.ended_at,
    )


def test_sessions_belong_to_their_account(state):
    other, _ = state.add_account()
    session_id = state.create_session(DEFAULT_ACCOUNT_ID, HOUR).session_id
    with pytest.raises(SessionNotFoundError):
        state.get_session(session_id, other)
    assert state.list_sessions(other) == []
    assert [r.session_id for r in state.list_sessions(DEFAULT_ACCOUNT_ID.upper())] == [session_id]


@pytest.mark.parametrize(
    ("lease", "size", "error"),
    [
        (timedelta(0), "standard", InvalidLeaseError),
        (-HOUR, "standard", InvalidLeaseError),
        (timedelta(hours=25), "standard", InvalidLeaseError),
        (HOUR, "large", InvalidSizeError),
    ],
)
def test_create_validates(state, lease, size, error):
    with pytest.raises(error):
        state.create_session(DEFAULT_ACCOUNT_ID, lease, size)
    assert state.sessions() == []


def test_start_failures(state, clock):
    state.fail_next_start("no capacity")
    failing = state.create_session(DEFAULT_ACCOUNT_ID, HOUR).session_id
    healthy = state.create_session(DEFAULT_ACCOUNT_ID, HOUR).session_id
    third = state.create_session(DEFAULT_ACCOUNT_ID, HOUR).session_id
    state.fail_session_start(third, "boot failed")
    assert state.get_session(failing).status == "Starting"
    clock.now += 5
    assert (state.get_session(failing).status, state.get_session(failing).message) == ("Error", "no capacity")
    assert state.get_session(healthy).status == "Ready"
    assert (state.get_session(third).status, state.get_session(third).message) == ("Error", "boot failed")
    assert state.get_session(failing).hostname is None
    with pytest.raises(SessionEndedError):
        state.fail_session_start(healthy, "too late")


def test_external_endings(state, clock):
    first = state.create_session(DEFAULT_ACCOUNT_ID, HOUR).session_id
    second = state.create_session(DEFAULT_ACCOUNT_ID, HOUR).session_id
    clock.now += 10
    state.expire_session(first)
    state.stop_session_externally(second)
    assert state.get_session(first).status == "Expired"
    assert "ran out" in state.get_session(first).message
    assert (state.get_session(second).status, state.get_session(second).message) == ("Stopped", None)
    with pytest.raises(SessionEndedError):
        state.expire_session(second, "again")


def test_tokens_expire_and_can_be_revoked():
    wall = Clock()
    wall.now = 1_700_000_000.0
    state = EmulatorState(token_lifetime=60, wall_clock=wall)
    token = state.issue_token(state.account_id, state.account_key)
    assert state.verify_token(token) == state.account_id
    wall.now += 60
    with pytest.raises(InvalidTokenError, match="expired"):
        state.verify_token(token)
    fresh = state.issue_token(state.account_id, state.account_key)
    state.revoke_tokens()
    with pytest.raises(InvalidTokenError, match="Signature"):
        state.verify_token(fresh)


def test_faults_are_consumed_in_order_and_counted(state):
    state.add_fault("list", 429, count=2)
    state.add_fault("list", 503)
    statuses = [getattr(state.begin_request("list"), "status", None) for _ in range(4)]
    assert statuses == [429, 429, 503, None]
    assert state.begin_request("create") is None
    assert state.request_counts == {"list": 4, "create": 1}
    state.reset_counts()
    assert state.request_counts == {}


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"operation": "delete", "status": 500}, "operation"),
        ({"operation": "list", "status": 42}, "status"),
        ({"operation": "list", "status": 500, "count": 0}, "count"),
    ],
)
def test_add_fault_rejects_nonsense(state, kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        state.add_fault(**kwargs)


def test_reset_forgets_everything_but_accounts(state):
    state.create_session(DEFAULT_ACCOUNT_ID, HOUR)
    state.add_fault("list", 500)
    state.begin_request("token")
    token = state.issue_token(state.account_id, state.account_key)
    state.reset()
    assert (state.sessions(), state.request_counts) == ([], {})
    assert state.begin_request("list") is None
    with pytest.raises(InvalidTokenError):
        state.verify_token(token)
    assert state.issue_token(state.account_id, state.account_key)


# ---------------------------------------------------------------- sessions named by the client (2021)


def test_named_session_lease_counts_from_ready(state, clock):
    wall = Clock()
    wall.now = 1_663_117_532.4773534
    state.wall_clock = wall
    created, was_created = state.create_session_with_id(
        DEFAULT_ACCOUNT_ID, "rr-test-id", 15 * MINUTE, "standard"
    )
    assert was_created
    assert (created.session_id, created.lease_from_ready, created.creation_time) == (
        "rr-test-id",
        True,
        wall.now,
    )
    clock.now += 60  # Ready after 5 s; 55 s of it count
    assert state.get_session("rr-test-id").elapsed_time == timedelta(seconds=55)
    clock.now += 15 * 60 - 55 - 1
    assert state.get_session("rr-test-id").status == "Ready"
    clock.now += 1
    expired = state.get_session("rr-test-id")
    assert (expired.status, expired.elapsed_time) == ("Expired", 15 * MINUTE)
    assert expired.ended_at == expired.ready_at + 15 * 60


def test_named_session_that_never_got_ready_has_no_elapsed_time(state, clock):
    state.create_session_with_id(DEFAULT_ACCOUNT_ID, "short", timedelta(seconds=1))
    clock.now += 3
    assert state.get_session("short").status == "Starting"  # the lease has not begun
    stopped = state.stop_session("short")
    assert (stopped.status, stopped.elapsed_time, stopped.ready_at) == ("Stopped", timedelta(0), None)


def test_named_session_retry_and_conflict(state, clock):
    first, _ = state.create_session_with_id(DEFAULT_ACCOUNT_ID, "again", HOUR, "Premium")
    clock.now += 10
    retried, was_created = state.create_session_with_id(DEFAULT_ACCOUNT_ID.upper(), "again", HOUR, "premium")
    assert not was_created
    assert (retried.session_id, retried.status, retried.created_at) == ("again", "Ready", first.created_at)
    with pytest.raises(SessionConflictError):
        state.create_session_with_id(DEFAULT_ACCOUNT_ID, "again", 2 * HOUR, "premium")
    other, _ = state.add_account()
    with pytest.raises(SessionConflictError):
        state.create_session_with_id(other, "again", HOUR, "premium")
    assert len(state.sessions()) == 1


def test_named_session_lease_may_be_zero_but_not_negative(state):
    assert state.create_session_with_id(DEFAULT_ACCOUNT_ID, "zero", timedelta(0))[1]
    with pytest.raises(InvalidLeaseError, match="negative"):
        state.create_session_with_id(DEFAULT_ACCOUNT_ID, "negative", -MINUTE)
    with pytest.raises(InvalidLeaseError, match="24 hours"):
        state.create_session_with_id(DEFAULT_ACCOUNT_ID, "long", timedelta(hours=24, minutes=1))
    with pytest.raises(LeaseNotExtendedError) as raised:
        state.update_session("zero", timedelta(0))
    assert (raised.value.current, raised.value.requested) == (timedelta(0), timedelta(0))


def test_list_pages_continue_after_the_last_id(state, clock):
    ids = [state.create_session(DEFAULT_ACCOUNT_ID, HOUR).session_id for _ in range(3)]
    ids += [
        state.create_session_with_id(DEFAULT_ACCOUNT_ID, f"named-{i}", HOUR)[0].session_id for i in range(2)
    ]
    other, _ = state.add_account()
    state.create_session_with_id(other, "not-mine", HOUR)
    first, after = state.list_sessions_page(DEFAULT_ACCOUNT_ID, 2)
    assert ([r.session_id for r in first], after) == (ids[:2], ids[1])
    state.stop_session(ids[1])
    state.stop_session(ids[2])
    second, after = state.list_sessions_page(DEFAULT_ACCOUNT_ID, 2, after)
    assert ([r.session_id for r in second], after) == (ids[3:], None)
    with pytest.raises(SessionNotFoundError):
        state.list_sessions_page(DEFAULT_ACCOUNT_ID, 2, "forged")


def test_page_size_must_be_positive():
    with pytest.raises(ValueError, match="page_size"):
        EmulatorState(page_size=0)
