"""The ``arr_emulator`` pytest fixture, as a user's project gets it: through the ``pytest11`` entry point.

Each test runs pytest in a child process on a throwaway project (no conftest of ours), exactly like
the README's "Testing your own DAGs" example.
"""

from __future__ import annotations

import textwrap
from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

#: The README's example, verbatim: a user's DAG, conftest.py and DAG test.
USER_DAG = """
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_arr.operators.remote_rendering import (
    RemoteRenderingCreateSessionOperator,
    RemoteRenderingStopSessionOperator,
)
from airflow_provider_arr.sensors.remote_rendering import RemoteRenderingSessionReadySensor

with DAG("my_render", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    create = RemoteRenderingCreateSessionOperator(task_id="create", max_lease_time="1:00:00")
    ready = RemoteRenderingSessionReadySensor(
        task_id="ready", session_id=create.output, poke_interval=0.2, deferrable=True
    )
    stop = RemoteRenderingStopSessionOperator(task_id="stop", session_id=create.output)
    create >> ready >> stop
    stop.as_teardown(setups=create)
"""

USER_CONFTEST = '''
import os
import tempfile
from pathlib import Path

# Airflow reads its settings when first imported: a throwaway home, and your DAGs folder.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="airflow-home-")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).parent / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

import pytest


@pytest.fixture(scope="session", autouse=True)
def airflow_db():
    """dag.test() records its run in Airflow's database: create a fresh sqlite one."""
    from airflow.utils.db import initdb

    initdb()
'''

USER_TEST = """
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
"""


def test_the_plugin_is_registered_through_pytest11():
    (entry_point,) = [
        ep for ep in entry_points(group="pytest11") if ep.value == "airflow_provider_arr.pytest_plugin"
    ]
    assert entry_point.name == "arr_emulator"


FIXTURE_TESTS = """
        import json
        import os

        import pytest


        def test_default(arr_emulator):
            conn = json.loads(os.environ["AIRFLOW_CONN_ARR_DEFAULT"])
            assert conn["conn_type"] == "azure_remote_rendering"
            assert conn["host"] == arr_emulator.url
            assert conn["host"].startswith("http://127.0.0.1:")
            assert conn["extra"]["sts_url"] == arr_emulator.url
            assert conn["login"] == arr_emulator.account_id
            assert conn["password"] == arr_emulator.account_key
            assert arr_emulator.state.start_delay == 0.2


        @pytest.mark.arr_emulator(start_delay=2.5, conn_id="my_arr", extra={"read_timeout": 7})
        def test_marker(arr_emulator):
            conn = json.loads(os.environ["AIRFLOW_CONN_MY_ARR"])
            assert conn["host"] == arr_emulator.url
            assert conn["extra"]["read_timeout"] == 7
            assert arr_emulator.state.start_delay == 2.5
        """


def test_a_users_project_gets_the_fixture_and_the_readme_example_passes(pytester: pytest.Pytester):
    """One child pytest (Airflow's import and database cost seconds): the README example and the
    fixture's settings, with ``--strict-markers`` to show the marker is registered."""
    pytester.mkdir("dags")
    pytester.path.joinpath("dags", "my_render.py").write_text(USER_DAG)
    pytester.makeconftest(USER_CONFTEST)
    pytester.makepyfile(test_render=USER_TEST, test_fixture=textwrap.dedent(FIXTURE_TESTS))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers", timeout=240)
    result.assert_outcomes(passed=4)
