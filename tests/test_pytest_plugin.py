"""The ``arr_emulator`` pytest fixture, as a user's project gets it: through the ``pytest11`` entry point.

Each test runs pytest in a child process on a throwaway project (no conftest of ours): the docs'
example project (``docs/examples/project``) as it is, and a table of marker settings.
"""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ElementTree
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_arr.pytest_plugin import MARKER_ARGUMENTS

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
#: The docs' example project (docs/testing.md and the failed-conversion recipe include these files). Only
#: these are copied, so files others add to the folder do not change the outcome counts.
EXAMPLES = [
    "docs/examples/project/conftest.py",
    "docs/examples/project/dags/my_render.py",
    "docs/examples/project/test_my_render.py",
    "docs/examples/project/dags/my_conversion.py",
    "docs/examples/project/test_my_conversion.py",
]
#: Tests in the example files above.
EXAMPLE_TESTS = 5


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
            assert arr_emulator.state.conversion_delay == 0.5
            assert arr_emulator.state.token_lifetime == 3600


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
    for name in EXAMPLES:
        target = pytester.path / Path(name).relative_to("docs/examples/project")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((REPO / name).read_text())
    pytester.makepyfile(test_fixture=textwrap.dedent(FIXTURE_TESTS))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers", timeout=300)
    result.assert_outcomes(passed=EXAMPLE_TESTS + 2)


#: Marker settings that are valid, each with a check (Python source, run in the test) that it took effect.
VALID = {
    "start_delay": ("start_delay=1.5", "state.start_delay == 1.5"),
    "conversion_delay": ("conversion_delay=0.05", "state.conversion_delay == 0.05"),
    "fail_conversions": (
        "fail_conversions={'broken/*': 'no geometry', '*.ply': None}",
        "[p for p, _ in state.failing_conversions()] == ['broken/*', '*.ply']"
        " and state.failing_conversions()[0][1] == 'no geometry'",
    ),
    "token_lifetime": ("token_lifetime=60", "state.token_lifetime == 60"),
    "region": ("region='eastus2'", "state.region == 'eastus2'"),
    "account_id": (
        "account_id='0d5c1e2f-aaaa-4bbb-8ccc-123456789abc'",
        "arr_emulator.account_id == '0d5c1e2f-aaaa-4bbb-8ccc-123456789abc'",
    ),
    "account_key": ("account_key='another-key'", "arr_emulator.account_key == 'another-key'"),
    "page_size": ("page_size=3", "state.page_size == 3"),
    "conn_id": ("conn_id='other_arr'", "'AIRFLOW_CONN_OTHER_ARR' in os.environ"),
    "extra": (
        "extra={'read_timeout': 9}",
        "json.loads(os.environ['AIRFLOW_CONN_ARR_DEFAULT'])['extra']['read_timeout'] == 9",
    ),
}
#: Marker arguments that are not valid, each with the text its error must hold.
INVALID = {
    "unknown_name": ("conversion_dealy=1", "unknown argument 'conversion_dealy'; accepted: start_delay, "),
    "state_method_name": ("fail_next_start='x'", "unknown argument 'fail_next_start'; accepted: "),
    "positional": ("0.5", "takes keyword arguments only, got positional (0.5,); accepted: start_delay, "),
    "negative_delay": ("start_delay=-1", "start_delay=-1: must be seconds >= 0"),
    "text_delay": ("conversion_delay='fast'", "conversion_delay='fast': must be seconds >= 0"),
    "zero_lifetime": ("token_lifetime=0", "token_lifetime=0: must be seconds > 0"),
    "float_page_size": ("page_size=2.5", "page_size=2.5: must be a whole number >= 1"),
    "extra_not_a_dict": ("extra=['read_timeout']", "extra=['read_timeout']: must be a dict"),
    "empty_glob": ("fail_conversions={'': 'x'}", "pattern and message must not be empty"),
}


def test_the_marker_takes_every_setting_and_names_a_bad_one(pytester: pytest.Pytester):
    """Each valid setting takes effect; each bad one fails its test before the emulator starts, with an
    error that names it (one child pytest for the whole table)."""
    assert set(VALID) == set(MARKER_ARGUMENTS)  # a new marker argument needs a row here
    tests = ["import json, os", "import pytest", "import airflow_provider_arr.emulator.server as server", ""]
    for name, (arguments, check) in VALID.items():
        tests += [
            f"@pytest.mark.arr_emulator({arguments})",
            f"def test_valid_{name}(arr_emulator):",
            "    state = arr_emulator.state",
            f"    assert {check}",
            "",
        ]
    for name, (arguments, _) in INVALID.items():
        tests += [
            f"@pytest.mark.arr_emulator({arguments})",
            f"def test_invalid_{name}(arr_emulator):",
            "    pass",
            "",
        ]
    # "Before the emulator starts": a started emulator would be a bug, so starting one fails loudly.
    pytester.makeconftest(
        "import pytest\n"
        "from airflow_provider_arr.emulator.server import ArrEmulator\n"
        "@pytest.fixture(autouse=True)\n"
        "def no_start_when_invalid(request, monkeypatch):\n"
        "    if request.node.name.startswith('test_invalid_'):\n"
        "        def refuse(self, timeout=10.0):\n"
        "            raise AssertionError('the emulator started despite a bad marker')\n"
        "        monkeypatch.setattr(ArrEmulator, 'start', refuse)\n"
    )
    pytester.makepyfile(test_marker_table="\n".join(tests))
    report = pytester.path / "report.xml"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--junitxml={report}", timeout=120)
    outcomes: dict[str, tuple[str, str]] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        problem: Any = next((child for child in case if child.tag in ("error", "failure", "skipped")), None)
        text = "" if problem is None else (problem.get("message") or "") + (problem.text or "")
        outcomes[case.get("name", "")] = ("passed" if problem is None else problem.tag, text)
    for name in VALID:
        assert outcomes[f"test_valid_{name}"] == ("passed", ""), result.stdout.str()
    for name, (_, expected) in INVALID.items():
        outcome, text = outcomes[f"test_invalid_{name}"]
        assert outcome == "error", (name, text)
        assert "@pytest.mark.arr_emulator: " in text, (name, text)
        assert expected in text, (name, text)
        assert "the emulator started" not in text, (name, text)
        assert "During handling" not in text, (name, text)
