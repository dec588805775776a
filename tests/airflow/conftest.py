"""Fixtures for the Airflow layer's tests: one emulator on a loopback port, a connection pointing at it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_arr.emulator import ArrEmulator
from airflow_provider_arr.hooks import remote_rendering as hook_module
from tests.helpers import FAST_RETRIES

START_DELAY = 0.3


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[ArrEmulator]:
    with ArrEmulator(start_delay=START_DELAY, token_lifetime=3600) as emulator:
        yield emulator


@pytest.fixture
def emu(shared_emulator: ArrEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[ArrEmulator]:
    """The shared emulator with a fresh state, and ``AIRFLOW_CONN_ARR_DEFAULT`` pointing at it."""
    state = shared_emulator.state
    state.reset()
    state.clock, state.start_delay = time.monotonic, START_DELAY
    hook_module.clear_token_cache()
    for name, value in shared_emulator.env(**FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    yield shared_emulator
    state.reset()
    hook_module.clear_token_cache()


class FakeTaskInstance:
    """
    Just enough of a runtime task instance for ``execute``: its identity, and the XComs it pushes.

    Airflow keeps the identity (dag, run, task, map index) across tries and clears the XComs when a
    new try starts: make a new one per try, with the same identity.
    """

    def __init__(
        self,
        task_id: str = "task",
        map_index: int = -1,
        *,
        dag_id: str = "arr_test",
        run_id: str = "manual__test",
        try_number: int = 1,
    ) -> None:
        self.dag_id = dag_id
        self.run_id = run_id
        self.task_id = task_id
        self.map_index = map_index
        self.try_number = try_number
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value", **kwargs: Any) -> Any:
        return self.xcom.get(key)

    def get_first_reschedule_date(self, context: Any) -> None:
        return None


@pytest.fixture
def ti() -> FakeTaskInstance:
    return FakeTaskInstance()


@pytest.fixture
def context(ti: FakeTaskInstance) -> dict[str, Any]:
    return {"ti": ti}


def wait_for_status(emulator: ArrEmulator, session_id: str, status: str, timeout: float = 5.0) -> None:
    """Wait until the emulator reports a session in ``status``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if session(emulator, session_id).status == status:
            return
        time.sleep(0.02)
    raise AssertionError(f"session {session_id} is {session(emulator, session_id).status}, not {status}")


def session(emulator: ArrEmulator, session_id: str) -> Any:
    """The emulator's record of one session."""
    (record,) = [record for record in emulator.state.sessions() if record.session_id == session_id]
    return record
