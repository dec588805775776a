"""The ``arr_emulator`` pytest fixture, as a user's project gets it: through the ``pytest11`` entry point.

Each test runs pytest in a child process on a throwaway project (no conftest of ours), running
the docs' example project (``docs/examples/project``) as it is.
"""

from __future__ import annotations

import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

#: The docs' example project (docs/testing.md includes these files): a user's DAG, conftest.py and test.
PROJECT = Path(__file__).resolve().parents[1] / "docs" / "examples" / "project"
USER_DAG = (PROJECT / "dags" / "my_render.py").read_text()
USER_CONFTEST = (PROJECT / "conftest.py").read_text()
USER_TEST = (PROJECT / "test_my_render.py").read_text()
#: What this module runs of docs/examples (tests/docs/test_docs_site.py checks that each file is run).
EXAMPLES = [
    "docs/examples/project/conftest.py",
    "docs/examples/project/dags/my_render.py",
    "docs/examples/project/test_my_render.py",
]


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


def test_a_users_project_gets_the_fixture_and_the_docs_example_passes(pytester: pytest.Pytester):
    """One child pytest (Airflow's import and database cost seconds): the docs' example and the
    fixture's settings, with ``--strict-markers`` to show the marker is registered."""
    pytester.mkdir("dags")
    pytester.path.joinpath("dags", "my_render.py").write_text(USER_DAG)
    pytester.makeconftest(USER_CONFTEST)
    pytester.makepyfile(test_my_render=USER_TEST, test_fixture=textwrap.dedent(FIXTURE_TESTS))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers", timeout=240)
    result.assert_outcomes(passed=4)
