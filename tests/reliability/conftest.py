"""Fixtures of the reliability tests: one emulator for the module, reset per test, and two connections.

``arr_default`` speaks v1 and ``arr_2021`` the 2021-01-01 dialect, both with :data:`RELIABILITY_EXTRAS`:
the suite's fast retries made tighter still, and a one-second read timeout (so that a ``delay`` fault
of :data:`LATE` seconds makes the client time out).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_arr.emulator import ArrEmulator
from airflow_provider_arr.hooks import remote_rendering as hook_module
from tests.airflow.conftest import FakeTaskInstance
from tests.helpers import FAST_RETRIES

READ_TIMEOUT = 1.0
#: A late answer: the service acts at once but answers after the client gave up.
LATE = 1.6
#: :data:`tests.helpers.FAST_RETRIES`, tightened for fault injection: nearly every test here provokes
#: retries, so the waits are shorter; a fixed number of attempts, with a budget long enough for all of
#: them to time out, makes giving up deterministic; and the read timeout is shorter than :data:`LATE`.
RELIABILITY_EXTRAS = {
    **FAST_RETRIES,
    "retry_min_wait": 0.01,
    "retry_max_wait": 0.05,
    "retry_max_time": 10,
    "retry_limit": 4,
    "read_timeout": READ_TIMEOUT,
    "connect_timeout": 2,
}
START_DELAY = 0.1
V1, V2021 = "arr_default", "arr_2021"


@pytest.fixture(scope="module")
def reliability_emulator() -> Iterator[ArrEmulator]:
    with ArrEmulator(start_delay=START_DELAY, token_lifetime=3600) as emulator:
        yield emulator


@pytest.fixture
def emu(reliability_emulator: ArrEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[ArrEmulator]:
    """The module's emulator with a fresh state; ``arr_default`` (v1) and ``arr_2021`` point at it."""
    state = reliability_emulator.state
    state.reset()
    state.clock, state.start_delay = time.monotonic, START_DELAY
    hook_module.clear_token_cache()
    monkeypatch.setenv(*next(iter(reliability_emulator.env(V1, **RELIABILITY_EXTRAS).items())))
    extras = {**RELIABILITY_EXTRAS, "api_version": "2021-01-01"}
    monkeypatch.setenv(*next(iter(reliability_emulator.env(V2021, **extras).items())))
    yield reliability_emulator
    state.reset()
    hook_module.clear_token_cache()


class TaskInstance(FakeTaskInstance):
    """One try of a task instance of the reliability DAG (see :class:`FakeTaskInstance`).

    :param task_id: the task's id.
    :param run_id: the DAG run's id.
    :param try_number: which try this is.
    """

    def __init__(
        self, task_id: str = "create", run_id: str = "manual__reliability", try_number: int = 1
    ) -> None:
        super().__init__(task_id, dag_id="arr_reliability", run_id=run_id, try_number=try_number)


def context_for(ti: TaskInstance) -> dict[str, Any]:
    return {"ti": ti}


def active_ids(emulator: ArrEmulator) -> set[str]:
    return {record.session_id for record in emulator.state.active_sessions()}
