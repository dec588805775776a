"""The 2021-01-01 dialect end to end: hook calls, and create operator retries that reuse their session."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_arr._compat import AirflowFailException
from airflow_provider_arr.exceptions import RemoteRenderingError
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.models import SessionStatus
from airflow_provider_arr.operators.remote_rendering import (
    RemoteRenderingCreateSessionOperator,
    RemoteRenderingExtendSessionOperator,
    RemoteRenderingStopSessionOperator,
    task_instance_session_id,
)
from airflow_provider_arr.sensors.remote_rendering import RemoteRenderingSessionReadySensor
from tests.airflow.conftest import FakeTaskInstance, wait_for_status
from tests.helpers import FAST_RETRIES


def retried_ti(try_number: int = 1, map_index: int = -1) -> FakeTaskInstance:
    """One try of the same task instance: the identity stays, as Airflow's does."""
    return FakeTaskInstance(
        "create",
        map_index,
        dag_id="render-nightly",
        run_id="scheduled__2026-11-26T00:00:00+00:00",
        try_number=try_number,
    )


@pytest.fixture
def emu2021(emu, monkeypatch):
    """The shared emulator, with ``arr_default`` on the 2021-01-01 dialect."""
    for name, value in emu.env(api_version="2021-01-01", **FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    return emu


def create_operator(**kwargs: Any) -> RemoteRenderingCreateSessionOperator:
    return RemoteRenderingCreateSessionOperator(task_id="create", max_lease_time="0:30:0", **kwargs)


def test_hook_life_cycle(emu2021):
    with RemoteRenderingHook() as hook:
        session_id = hook.create_session("0:15:0", "standard", session_id="rr-test-id")
        assert session_id == "rr-test-id"
        starting = hook.get_session(session_id)
        assert starting.status is SessionStatus.STARTING
        assert starting.hostname is None  # left out while Starting, as the real service does
        wait_for_status(emu2021, session_id, "Ready")
        ready = hook.get_session(session_id)
        assert ready.hostname
        assert ready.max_lease_time == timedelta(minutes=15)
        hook.update_session(session_id, "0:20:0")
        assert hook.get_session(session_id).max_lease_time == timedelta(minutes=20)
        assert [s.session_id for s in hook.list_sessions()] == ["rr-test-id"]
        hook.stop_session(session_id)
        assert hook.get_session(session_id).status is SessionStatus.STOPPED
        assert hook.list_sessions() == []


def test_same_id_other_settings_is_a_clear_conflict(emu2021):
    with RemoteRenderingHook() as hook:
        hook.create_session("0:15:0", session_id="scene-1")
        assert hook.create_session("0:15:0", session_id="scene-1") == "scene-1"  # identical: 200
        with pytest.raises(RemoteRenderingError, match=r"HTTP 409.*already exists with other settings"):
            hook.create_session("0:45:0", session_id="scene-1")
    assert len(emu2021.state.sessions()) == 1


def test_lease_that_does_not_grow_is_a_clear_422(emu2021):
    with RemoteRenderingHook() as hook:
        hook.create_session("0:30:0", session_id="scene-2")
        with pytest.raises(RemoteRenderingError, match=r"HTTP 422.*must be longer than the current one"):
            hook.update_session("scene-2", "0:10:0")


def test_lost_put_answer_is_retried_safely(emu2021, monkeypatch):
    for name, value in emu2021.env(api_version="2021-01-01", **{**FAST_RETRIES, "read_timeout": 0.3}).items():
        monkeypatch.setenv(name, value)
    emu2021.state.add_fault("create", None, delay=1.0)
    with RemoteRenderingHook() as hook:
        assert hook.create_session("0:15:0", session_id="scene-3") == "scene-3"
    assert emu2021.state.request_counts["create"] == 2  # the PUT was sent again...
    assert [s.session_id for s in emu2021.state.sessions()] == ["scene-3"]  # ...and it is one VM


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda h: h.get_session("../token"), "session_id"),
        (lambda h: h.get_session("x" * 257), "session_id"),
        (lambda h: h.create_session("0:15:30", session_id="ok"), "max_lease_time"),
        (lambda h: h.create_session("0:15:0", models=["https://m"]), "models"),
    ],
)
def test_bad_input_on_2021_rejected_before_any_request(emu2021, call, field):
    from airflow_provider_arr.models import ArrInputError

    with pytest.raises(ArrInputError) as error, RemoteRenderingHook() as hook:
        call(hook)
    assert error.value.field == field
    assert sum(emu2021.state.request_counts.values()) == 0


def test_task_instance_session_id_is_stable_valid_and_distinct():
    first = task_instance_session_id({"ti": retried_ti(try_number=1)})
    retry = task_instance_session_id({"ti": retried_ti(try_number=2)})
    mapped = task_instance_session_id({"ti": retried_ti(map_index=3)})
    assert first == retry
    assert first != mapped
    assert first.startswith("render-nightly-create--1-scheduled__2026-11-26T00-00-00-00-00-")
    long_ti = retried_ti()
    long_ti.dag_id = "d" * 300
    long_id = task_instance_session_id({"ti": long_ti})
    assert len(long_id) <= 256
    from airflow_provider_arr.models import API_2021, validate_session_id

    for session_id in (first, mapped, long_id):
        assert validate_session_id(session_id, api_version=API_2021) == session_id


def test_a_retry_of_the_create_task_reuses_its_session(emu2021):
    """Try 1 created the session and died before anyone recorded it; try 2 must reconnect."""
    first_try = retried_ti(try_number=1)
    session_id = create_operator().execute({"ti": first_try})
    second_try = retried_ti(try_number=2)
    assert create_operator().execute({"ti": second_try}) == session_id
    assert second_try.xcom["session_id"] == session_id
    assert [s.session_id for s in emu2021.state.sessions()] == [session_id]
    assert emu2021.state.request_counts["create"] == 1


def test_a_retry_after_the_session_ended_gets_a_numbered_successor(emu2021):
    session_id = create_operator().execute({"ti": retried_ti(try_number=1)})
    RemoteRenderingStopSessionOperator(task_id="stop", session_id=session_id).execute({})
    successor = create_operator().execute({"ti": retried_ti(try_number=2)})
    assert successor == f"{session_id}-2"
    statuses = {s.session_id: s.status for s in emu2021.state.sessions()}
    assert statuses == {session_id: "Stopped", successor: "Starting"}


def test_whole_operator_flow_on_2021(emu2021):
    ti = retried_ti()
    session_id = create_operator(session_id="my-own-id", wait_for_ready=True, poll_interval=0.05).execute(
        {"ti": ti}
    )
    assert session_id == "my-own-id"
    assert ti.xcom["hostname"]
    sensor = RemoteRenderingSessionReadySensor(task_id="ready", session_id=session_id, poke_interval=0.05)
    assert sensor.poke({"ti": ti}).xcom_value["status"] == "Ready"
    new = RemoteRenderingExtendSessionOperator(task_id="extend", session_id=session_id, extend_by="0:15:0")
    assert new.execute({"ti": ti}) == "00:45:00"
    with pytest.raises(AirflowFailException, match="whole minutes"):
        RemoteRenderingExtendSessionOperator(
            task_id="extend", session_id=session_id, extend_by="0:00:30"
        ).execute({"ti": ti})
    assert RemoteRenderingStopSessionOperator(task_id="stop", session_id=session_id).execute({}) == "Stopped"


def test_v1_refuses_a_session_id_for_create(emu):
    with pytest.raises(AirflowFailException, match="v1 API chooses session ids itself"):
        create_operator(session_id="mine").execute({"ti": retried_ti()})
    assert emu.state.request_counts["create"] == 0


def test_connection_json_form_on_2021(emu2021):
    conn = json.loads(emu2021.env(api_version="2021-01-01")["AIRFLOW_CONN_ARR_DEFAULT"])
    assert conn["extra"]["api_version"] == "2021-01-01"
