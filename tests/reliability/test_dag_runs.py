"""Whole ``dag.test`` runs of ``arr_render_pipeline`` (and ``arr_convert_and_render``): the teardown
cleans up, and no secret (account key, tokens, SAS tokens; with Entra ID the client secret and the
Entra tokens too) leaks.

The runs happen in the child interpreter of ``tests/airflow/_dag_runner.py``, started here with Airflow
logging at DEBUG, against an emulator whose account key is random (so that finding it means a leak).
Every run ends with every session it created stopped.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_arr.emulator import ArrEmulator
from airflow_provider_arr.emulator.tls import make_self_signed_cert
from tests.airflow.test_example_dags import EXAMPLE_DAGS, REPO, DagRunner, states
from tests.reliability.conftest import RELIABILITY_EXTRAS

DAG_ID = "arr_render_pipeline"


@pytest.fixture(scope="module")
def secret_emulator() -> Iterator[ArrEmulator]:
    key = secrets.token_urlsafe(32)
    with ArrEmulator(start_delay=0.3, token_lifetime=3600, account_key=key) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def debug_runner(secret_emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagRunner]:
    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ARR_"))}
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",
        "ARR_EXAMPLE_POLL_INTERVAL": "0.1",
        "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
    }
    runner = DagRunner(env)
    yield runner
    runner.close()


@pytest.fixture
def emu(secret_emulator: ArrEmulator) -> Iterator[ArrEmulator]:
    secret_emulator.state.reset()
    yield secret_emulator
    secret_emulator.state.reset()


@pytest.fixture
def run_pipeline(emu, debug_runner: DagRunner, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """Run the pipeline; the result also holds the run's XComs, rendered fields and the child's output."""

    def run(conf: dict | None = None, deferrable: bool = False, **request: Any) -> dict[str, Any]:
        result = debug_runner.request(
            command="run",
            dag_id=DAG_ID,
            conf=conf or {},
            deferrable=deferrable,
            output_dir=str(tmp_path / "renders"),
            env=emu.env(**RELIABILITY_EXTRAS),
            inspect=True,
            **request,
        )
        result["output"] = "".join(debug_runner.output)
        return result

    return run


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "poke"])
def test_sensor_timeout_leaves_the_session_to_the_teardown(emu, run_pipeline, deferrable):
    emu.state.slow_next_start(120)  # never Ready within the sensor's timeout

    result = run_pipeline(deferrable=deferrable, task_overrides={"wait_ready": {"timeout": 1.5}})

    assert result["state"] == "failed"
    by_task = states(result)
    assert by_task["wait_ready"] == ["failed"]
    assert by_task["extend"] == by_task["render"] == ["upstream_failed"]
    assert by_task["stop"] == ["success"]  # the teardown of create, whatever happened in between
    assert [(record.status, record.message) for record in emu.state.sessions()] == [("Stopped", None)]


def secrets_of(emulator: ArrEmulator) -> dict[str, str]:
    """The account key and every token issued, and the unique parts of each JWT (claims, signature)."""
    found = {"account key": emulator.account_key}
    for number, token in enumerate(emulator.state.issued_tokens()):
        _, claims, signature = token.split(".")
        found |= {
            f"token {number}": token,
            f"token {number} claims": claims,
            f"token {number} sig": signature,
        }
    return found


#: Airflow's own leak, not ours: under ``dag.test()`` the in-process supervisor logs every message a task
#: sends at DEBUG, ``MaskSecret(value=...)`` included (task-sdk 1.3.2, ``InProcessSupervisorComms.send``;
#: the real supervisor omits that body, ``supervisor.py`` "body omitted"). Those lines are set aside.
UPSTREAM_MASK_SECRET_LINE = re.compile(r"\[debug\s*\] Sending request .*msg=MaskSecret\(value=")


def without_upstream_leak(output: str) -> tuple[str, int]:
    """The output without Airflow's ``Sending request ... MaskSecret`` lines, and how many there were."""
    lines = output.splitlines()
    kept = [line for line in lines if not UPSTREAM_MASK_SECRET_LINE.search(line)]
    return "\n".join(kept), len(lines) - len(kept)


def test_no_secret_in_logs_xcoms_rendered_fields_or_errors_of_whole_runs(emu, run_pipeline):
    # A run that succeeds through a stale token, a lost create answer and throttling (deferred wait)...
    emu.state.add_fault("properties", 401, body={"error": "The access token has expired."})
    emu.state.add_fault("create", action="drop_after")
    emu.state.add_fault("update", 503, headers={"Retry-After": "0"})
    succeeded = run_pipeline(deferrable=True)
    # ...and one that fails, through a failing token service and a lost stop answer (blocking wait).
    emu.state.revoke_tokens()
    emu.state.add_fault("token", 500, body="STS failure")
    emu.state.add_fault("stop", action="drop_after")
    failed = run_pipeline({"fail_render": True}, deferrable=False)

    assert succeeded["state"] == "success", succeeded["output"][-3000:]
    assert failed["state"] == "failed"
    assert {record.status for record in emu.state.sessions()} == {"Stopped"}
    found = secrets_of(emu)
    assert len(emu.state.issued_tokens()) >= 3  # refetched after the 401 and after the revocation
    for run in (succeeded, failed):
        output, upstream_lines = without_upstream_leak(run["output"])
        assert upstream_lines >= 1  # if Airflow stops logging them, drop without_upstream_leak
        places = {
            "log output": output,
            "XComs": json.dumps(run["xcoms"]),
            "rendered template fields": json.dumps(run["rendered_fields"]),
        }
        # The scan means something: the runs logged at DEBUG, pushed XComs and rendered templates.
        assert "ARR GET /v1/accounts/" in places["log output"]  # the hook's debug line of each call
        assert any(key == "session_id" for _, _, key, _ in run["xcoms"])
        assert run["rendered_fields"]
        for place, text in places.items():
            for name, secret in found.items():
                assert secret not in text, f"the {name} appears in the {place}"
    assert "failed on purpose (fail_render=True)" in failed["output"]  # the exception text was scanned too


def test_no_sas_token_in_logs_xcoms_or_rendered_fields_of_a_convert_run(emu, debug_runner, tmp_path):
    """The SAS tokens of arr_convert_and_render (Variables here) reach the service and nothing else."""
    sas = {
        "input SAS": "sv=2020-08-04&sr=c&sp=rl&sig=" + secrets.token_urlsafe(24),
        "output SAS": "sv=2020-08-04&sr=c&sp=w&sig=" + secrets.token_urlsafe(24),
    }
    emu.state.conversion_delay = 0.5
    emu.state.add_fault("conversion_properties", 503, headers={"Retry-After": "0"})
    env = emu.env(**RELIABILITY_EXTRAS) | {
        "AIRFLOW_VAR_ARR_INPUT_SAS": sas["input SAS"],
        "AIRFLOW_VAR_ARR_OUTPUT_SAS": sas["output SAS"],
    }
    try:
        result = debug_runner.request(
            command="run",
            dag_id="arr_convert_and_render",
            conf={},
            deferrable=True,
            output_dir=str(tmp_path / "renders"),
            env=env,
            inspect=True,
        )
    finally:
        emu.state.conversion_delay = 5.0
    output, _ = without_upstream_leak("".join(debug_runner.output))

    assert result["state"] == "success", output[-3000:]
    (conversion,) = emu.state.conversions()
    assert (conversion.input.sas, conversion.output.sas) == (sas["input SAS"], sas["output SAS"])
    found = (
        secrets_of(emu) | sas | {f"{name} signature": value.rsplit("=", 1)[1] for name, value in sas.items()}
    )
    places = {
        "log output": output,
        "XComs": json.dumps(result["xcoms"]),
        "rendered template fields": json.dumps(result["rendered_fields"]),
    }
    assert "ARR POST /v1/accounts/" in output  # the scan means something: the calls were logged
    assert any(key == "conversion_id" for _, _, key, _ in result["xcoms"])
    for place, text in places.items():
        for name, secret in found.items():
            assert secret not in text, f"the {name} appears in the {place}"


@pytest.fixture(scope="module")
def entra_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArrEmulator]:
    """An https emulator (Entra clients speak nothing else) with a service principal of a random secret."""
    certfile, keyfile = make_self_signed_cert(tmp_path_factory.mktemp("tls"))
    with ArrEmulator(start_delay=0.3, certfile=certfile, keyfile=keyfile) as emulator:
        yield emulator


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "poke"])
def test_no_entra_secret_or_token_in_logs_xcoms_or_rendered_fields_of_a_whole_run(
    entra_emulator, debug_runner, tmp_path, deferrable
):
    pytest.importorskip("azure.identity")
    emu = entra_emulator
    emu.state.reset()
    principal = emu.state.add_principal(secret=secrets.token_urlsafe(32), role="Administrator")
    connection = emu.entra_connection(principal, **RELIABILITY_EXTRAS)
    env = {
        "AIRFLOW_CONN_ARR_DEFAULT": json.dumps(connection),
        "REQUESTS_CA_BUNDLE": str(emu.certfile),  # the sync calls and the Entra leg
        "SSL_CERT_FILE": str(emu.certfile),  # the triggerer's async calls
    }
    emu.state.add_fault("properties", 401, body={"error": "The access token has expired."})
    result = debug_runner.request(
        command="run",
        dag_id=DAG_ID,
        conf={},
        deferrable=deferrable,
        output_dir=str(tmp_path / "renders"),
        env=env,
        inspect=True,
    )
    output, _ = without_upstream_leak("".join(debug_runner.output))

    assert result["state"] == "success", output[-3000:]
    assert {record.status for record in emu.state.sessions()} == {"Stopped"}
    assert {kind for kind, _ in emu.state.sts_sign_ins()} == {"entra"}  # never <id>:<key>
    found = secrets_of(emu) | {"client secret": str(principal.secret)}
    for number, token in enumerate(emu.state.issued_entra_tokens()):
        _, claims, signature = token.split(".")
        found |= {
            f"Entra token {number}": token,
            f"Entra {number} claims": claims,
            f"Entra {number} sig": signature,
        }
    assert len(emu.state.issued_entra_tokens()) >= 2  # refetched after the 401
    places = {
        "log output": output,
        "XComs": json.dumps(result["xcoms"]),
        "rendered template fields": json.dumps(result["rendered_fields"]),
    }
    assert "ClientSecretCredential.get_token succeeded" in output  # the scan means something
    assert "ARR GET " in output
    for place, text in places.items():
        for name, secret in found.items():
            assert secret not in text, f"the {name} appears in the {place}"
