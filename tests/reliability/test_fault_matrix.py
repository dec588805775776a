"""Every fault kind on every hook call: retried and succeeded, or a clear failure; no leak, no duplicate.

For each (call, fault) the emulator injects one fault into the call's operation, and the test checks:

- the outcome: success, or a ``RemoteRenderingError`` whose text names the operation and the HTTP
  status or the transport error, and whose meaning is the one in :data:`EXPECTED_FAILURES`;
- no leak: every session still active afterwards is one the caller knows (it got its id back, chose
  the id itself, or created it before);
- no duplicate: a create call started at most one session, any other call none.

A retried update whose first attempt was processed succeeds (the hook reads the session and finds
the lease already set), and a 2021-01-01 create whose answer was garbled returns the id it sent.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_arr.exceptions import RemoteRenderingError, RemoteRenderingSessionMayExistError
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from scripts.soak import says_what_happened
from tests.reliability.conftest import LATE, V1, V2021, active_ids

#: The faults, as ``add_fault`` arguments.
FAULTS: dict[str, dict[str, Any]] = {
    "429": {"status": 429, "headers": {"Retry-After": "0"}},
    "503": {"status": 503},
    "500": {"status": 500},
    "drop_before": {"action": "drop_before"},
    "drop_after": {"action": "drop_after"},
    "truncate": {"action": "truncate"},
    "late": {"delay": LATE},
    "garble": {"action": "garble"},
}


class Call:
    """One hook call under test.

    :param operation: the emulator operation the fault is injected into.
    :param conn_id: the connection (and so the dialect).
    :param run: makes the call: ``run(hook, session_id)``; ``session_id`` is a session created
        beforehand, or for a 2021-01-01 create the id the caller chooses.
    :param needs_session: whether a session must exist before the call.
    """

    def __init__(
        self,
        operation: str,
        conn_id: str,
        run: Callable[[RemoteRenderingHook, str], Any],
        needs_session: bool,
    ) -> None:
        self.operation, self.conn_id, self.run, self.needs_session = operation, conn_id, run, needs_session


CALLS = {
    "token": Call("token", V1, lambda hook, _: hook.get_token(), False),
    "create-v1": Call("create", V1, lambda hook, _: hook.create_session("1:00:00"), False),
    "create-2021": Call(
        "create", V2021, lambda hook, sid: hook.create_session("0:30:00", session_id=sid), False
    ),
}
for _dialect, _conn in (("v1", V1), ("2021", V2021)):
    CALLS[f"get-{_dialect}"] = Call("properties", _conn, lambda hook, sid: hook.get_session(sid), True)
    CALLS[f"list-{_dialect}"] = Call("list", _conn, lambda hook, _: hook.list_sessions(), False)
    CALLS[f"update-{_dialect}"] = Call(
        "update", _conn, lambda hook, sid: hook.update_session(sid, "2:00:00"), True
    )
    CALLS[f"stop-{_dialect}"] = Call("stop", _conn, lambda hook, sid: hook.stop_session(sid), True)

#: The calls that fail, and what their message must say; every other (call, fault) must succeed.
EXPECTED_FAILURES = {
    ("token", "garble"): r"get_token failed: HTTP 200; service message: answer is not JSON",
    # Not processed, and the hook cannot know: it lists the account, finds nothing new and says so.
    ("create-v1", "500"): r"create_session failed: HTTP 500;.*No new session appeared .* a retry is safe",
    ("create-v1", "drop_before"): r"create_session failed: no HTTP answer; service message: ConnectionError: "
    r".*broke before a complete answer came \(.*(ConnectionResetError|RemoteDisconnected)"
    r".*No new session appeared",
    ("get-v1", "garble"): r"get_session failed: HTTP 200; service message: answer is not JSON",
    ("get-2021", "garble"): r"get_session failed: HTTP 200; service message: answer is not JSON",
    ("list-v1", "garble"): r"list_sessions failed: HTTP 200; service message: answer is not JSON",
    ("list-2021", "garble"): r"list_sessions failed: HTTP 200; service message: answer is not JSON",
}


def cases() -> list[Any]:
    return [pytest.param(call, fault, id=f"{call}-{fault}") for call in CALLS for fault in FAULTS]


@pytest.mark.parametrize(("call_name", "fault"), cases())
def test_fault_on_hook_call(emu, call_name, fault):
    call = CALLS[call_name]
    known: set[str] = set()
    with RemoteRenderingHook(call.conn_id) as hook:
        session_id = f"matrix-{uuid.uuid4().hex[:12]}"  # a 2021-01-01 create's own id: the caller knows it
        if call.needs_session:
            session_id = (
                hook.create_session("1:00:00")
                if call.conn_id == V1
                else hook.create_session("0:30:00", session_id=session_id)
            )
        if call.needs_session or call_name == "create-2021":
            known.add(session_id)
        before = len(emu.state.sessions())
        emu.state.add_fault(call.operation, **FAULTS[fault])

        try:
            result: Any = call.run(hook, session_id)
            error = None
        except RemoteRenderingError as raised:
            result, error = None, raised

    assert emu.state.faults_injected[{"late": "delay"}.get(fault, fault)] == 1  # the fault was used
    created = emu.state.sessions()[before:]
    assert len(created) <= (1 if call.operation == "create" else 0), "a second session was started"
    if error is None and call.operation == "create":
        known.add(result)
        assert [record.session_id for record in created] == [result]
    assert active_ids(emu) <= known, "a session is running that its caller does not know of"

    if error is not None:
        for secret in (emu.account_key, *emu.state.issued_tokens()):
            assert secret not in str(error), "an error message holds the account key or a token"
    expected = EXPECTED_FAILURES.get((call_name, fault))
    if expected is None:
        assert error is None, f"{call_name} should have retried through {fault}: {error}"
        return
    assert error is not None, f"{call_name} should have failed on {fault}"
    assert re.search(expected, str(error), re.DOTALL), str(error)
    assert says_what_happened(error), str(error)
    if call.operation == "create" and call.conn_id == V1:
        assert isinstance(error, RemoteRenderingSessionMayExistError)
        assert created == []


def test_v1_create_whose_answer_was_cut_short_adopts_the_session(emu):
    """Processed, but the answer was lost, cut short or garbled: the one new session is adopted."""
    with RemoteRenderingHook(V1) as hook:
        for action in ("drop_after", "truncate", "garble"):
            emu.state.add_fault("create", action=action)
            adopted = hook.create_session("1:00:00")
            assert active_ids(emu) >= {adopted}
    assert len(emu.state.sessions()) == 3 == len(active_ids(emu))


def test_2021_create_whose_answer_was_lost_is_retried_with_the_same_id(emu):
    emu.state.add_fault("create", action="drop_after")
    with RemoteRenderingHook(V2021) as hook:
        assert hook.create_session("0:30:00", session_id="retried-put") == "retried-put"
    assert [record.session_id for record in emu.state.sessions()] == ["retried-put"]
    assert emu.state.request_counts["create"] == 2  # the PUT was sent again and answered 200


def test_2021_create_with_a_random_id_and_a_garbled_answer_returns_its_id(emu):
    emu.state.add_fault("create", action="garble")
    with RemoteRenderingHook(V2021) as hook:
        session_id = hook.create_session("0:30:00")  # raises today: the session runs, its id is lost
    assert active_ids(emu) == {session_id}
