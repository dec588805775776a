"""Every way a session ends, in both dialects, as the contract describes it, on the loopback socket.

2021-01-01 (the official contract and the recordings): the ``error`` object describes a start-up
failure only, so it is present on an ``Error`` session and absent on ``Stopped`` and ``Expired``
ones (the official SDK's poller raises on any ``error``); an ended session has no ports and no
host name, and keeps ``teraflops`` if it was Ready. v1 (the v1 documentation): ``message`` holds
the details when the status is ``Error`` or ``Expired`` and is null otherwise. No ended session is
listed, in either dialect.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.emulator.conftest import PROPERTY_FIELDS, STARTING_FIELDS

API = {"api-version": "2021-01-01"}
START_FAILURE = "No Standard server is free in westus2."
#: The 2021-01-01 fields of an ended session, by how it ended.
ENDED_FIELDS = {
    "Stopped": [*STARTING_FIELDS, "teraflops"],
    "Expired": [*STARTING_FIELDS, "teraflops"],
    "Error": [*STARTING_FIELDS, "error"],
}


class Dialect:
    """Creates, stops, reads and lists sessions of one dialect through the API."""

    def __init__(self, name: str, client: httpx.Client, account_id: str, auth: dict[str, str]) -> None:
        self.name, self.client, self.auth = name, client, auth
        self.sessions = (
            f"/v1/accounts/{account_id}/sessions" if name == "v1" else f"/accounts/{account_id}/sessions"
        )
        self.params = None if name == "v1" else API

    def create(self) -> str:
        """A session with a one-minute lease (counted from creation on v1, from Ready on 2021-01-01)."""
        if self.name == "v1":
            body = {"maxLeaseTime": "0:1:0", "size": "standard"}
            created = self.client.post(f"{self.sessions}/create", json=body, headers=self.auth)
            assert created.status_code == 202, created.text
            return created.json()["sessionId"]
        body = {"maxLeaseTimeMinutes": 1, "size": "Standard"}
        created = self.client.put(f"{self.sessions}/ending", params=API, json=body, headers=self.auth)
        assert created.status_code == 201, created.text
        return "ending"

    def stop(self, session_id: str) -> None:
        if self.name == "v1":
            stopped = self.client.delete(f"{self.sessions}/{session_id}", headers=self.auth)
        else:
            stopped = self.client.post(f"{self.sessions}/{session_id}/:stop", params=API, headers=self.auth)
        assert stopped.status_code == 204, stopped.text

    def get(self, session_id: str) -> httpx.Response:
        suffix = "/properties" if self.name == "v1" else ""
        return self.client.get(f"{self.sessions}/{session_id}{suffix}", params=self.params, headers=self.auth)

    def listed(self) -> list[dict]:
        answer = self.client.get(self.sessions, params=self.params, headers=self.auth)
        assert answer.status_code == 200, answer.text
        return answer.json()["sessions"]


def end_session(how: str, dialect: Dialect, emulator, clock) -> str:
    """Create a session and end it: stopped by its owner, its lease run out, or its start failed."""
    if how == "Error":
        emulator.state.fail_next_start(START_FAILURE)
    session_id = dialect.create()
    clock.advance(5)  # Ready (or Error) after the start delay
    if how == "Stopped":
        dialect.stop(session_id)
    elif how == "Expired":
        clock.advance(60)
    return session_id


@pytest.fixture
def dialect_for(client, emulator, auth) -> Callable[[str], Dialect]:
    return lambda name: Dialect(name, client, emulator.account_id, auth)


@pytest.mark.parametrize("how", ["Stopped", "Expired", "Error"])
def test_an_ended_2021_session_is_what_the_contract_describes(how, dialect_for, emulator, clock):
    dialect = dialect_for("2021-01-01")
    session_id = end_session(how, dialect, emulator, clock)

    answer = dialect.get(session_id)

    assert answer.status_code == 200
    body = answer.json()
    assert (body["id"], body["status"]) == (session_id, how)
    assert list(body) == ENDED_FIELDS[how]  # no ports, no host name once it ended
    if how == "Error":
        assert body["error"] == {"code": "SessionStartFailed", "message": START_FAILURE}
    else:
        assert "error" not in body  # an Expired or Stopped session is no start-up failure
        assert body["teraflops"] == pytest.approx(8.1)
    assert dialect.listed() == []


@pytest.mark.parametrize("how", ["Stopped", "Expired", "Error"])
def test_an_ended_v1_session_says_why_only_when_it_failed_or_expired(how, dialect_for, emulator, clock):
    dialect = dialect_for("v1")
    session_id = end_session(how, dialect, emulator, clock)

    answer = dialect.get(session_id)

    assert answer.status_code == 200
    body = answer.json()
    assert list(body) == PROPERTY_FIELDS
    assert (body["sessionId"], body["sessionStatus"]) == (session_id, how)
    expected_message = {
        "Stopped": None,
        "Expired": "The session expired: its maximum lease time of 00:01:00 ran out.",
        "Error": START_FAILURE,
    }
    assert body["message"] == expected_message[how]
    assert "error" not in body
    assert dialect.listed() == []


@pytest.mark.parametrize(
    ("end", "status", "v1_message"),
    [
        ("expire_session", "Expired", "Lease ran out (forced)."),
        ("stop_session_externally", "Stopped", None),
    ],
)
@pytest.mark.parametrize("name", ["v1", "2021-01-01"])
def test_an_end_forced_by_the_test_looks_like_a_natural_one(
    name, end, status, v1_message, dialect_for, emulator, clock
):
    dialect = dialect_for(name)
    session_id = dialect.create()
    clock.advance(5)
    getattr(emulator.state, end)(session_id, *([v1_message] if v1_message else []))

    body = dialect.get(session_id).json()

    if name == "v1":
        assert (body["sessionStatus"], body["message"]) == (status, v1_message)
    else:
        assert (body["status"], list(body)) == (status, ENDED_FIELDS[status])
