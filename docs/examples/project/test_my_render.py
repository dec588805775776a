"""my_render against the emulator: it stops its session, a failed start fails the run, a 503 is retried."""

import pytest

from dags.my_render import dag


def test_render_dag_stops_its_session(arr_emulator):
    dag_run = dag.test()

    assert dag_run.state == "success"
    (session,) = arr_emulator.state.sessions()
    assert session.status == "Stopped"


@pytest.mark.arr_emulator(start_delay=0.5)
def test_a_session_that_fails_to_start_fails_the_run(arr_emulator):
    arr_emulator.state.fail_next_start("no capacity in the region")

    dag_run = dag.test()

    assert dag_run.state == "failed"
    assert [s.status for s in arr_emulator.state.sessions()] == ["Error"]


def test_a_create_refused_once_is_retried(arr_emulator):
    arr_emulator.state.add_fault("create", 503)  # the service is busy once

    dag_run = dag.test()

    assert dag_run.state == "success"
    assert arr_emulator.state.request_counts["create"] == 2  # the 503, then the retry
    assert arr_emulator.state.faults_injected["503"] == 1
    assert [s.status for s in arr_emulator.state.sessions()] == ["Stopped"]  # one session, not two
