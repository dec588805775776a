"""ArrEmulator as a context manager, the connection helpers and the command line."""

from __future__ import annotations

import json
import socket
import threading

import httpx
import pytest

from airflow_provider_arr.emulator import ArrEmulator, EmulatorState, create_app
from airflow_provider_arr.emulator.cli import build_parser, main
from airflow_provider_arr.emulator.process import EmulatorProcess


def emulator_threads():
    return [thread for thread in threading.enumerate() if thread.name.startswith("arr-emulator-")]


def test_emulators_start_and_stop_cleanly():
    before = len(emulator_threads())
    with ArrEmulator() as first, ArrEmulator(region="westeurope") as second:
        assert first.url.startswith("http://127.0.0.1:")
        assert first.port != second.port
        assert httpx.get(f"{second.url}/_emulator/counts").json() == {}
        assert len(emulator_threads()) == before + 2
        port = first.port
    assert len(emulator_threads()) == before
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    first.stop()  # harmless


def test_state_is_shared_and_arguments_checked():
    state = EmulatorState(start_delay=0)
    emulator = ArrEmulator(state=state)
    assert emulator.state is state
    assert (emulator.account_id, emulator.account_key) == (state.account_id, state.account_key)
    with pytest.raises(TypeError):
        ArrEmulator(state=state, region="eastus")


def test_connection_helpers(emulator):
    expected = {
        "conn_type": "azure_remote_rendering",
        "host": emulator.url,
        "login": emulator.account_id,
        "password": emulator.account_key,
        "extra": {"sts_url": emulator.url, "read_timeout": 5},
    }
    assert emulator.connection(read_timeout=5) == expected
    assert json.loads(emulator.connection_json(read_timeout=5)) == expected
    assert emulator.env() == {"AIRFLOW_CONN_ARR_DEFAULT": emulator.connection_json()}
    assert list(emulator.env("arr_west")) == ["AIRFLOW_CONN_ARR_WEST"]


async def test_fastapi_validation_errors_become_400():
    app = create_app(EmulatorState())

    @app.get("/_probe/{number}")
    async def probe(number: int) -> dict[str, int]:
        return {"number": number}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
        response = await client.get("/_probe/abc")
    assert response.status_code == 400
    assert "number" in response.json()["error"]
    assert response.headers["MS-CV"].endswith(".0")


def test_cli_defaults():
    args = build_parser().parse_args([])
    assert (args.host, args.port, args.start_delay, args.token_lifetime) == ("127.0.0.1", 8710, 5.0, 86_400)
    with pytest.raises(SystemExit):
        main(["--start-delay", "-1"])


def test_cli_runs_as_a_separate_process():
    account_id = "9b2f6a1e-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
    options = ["--region", "westeurope", "--account-id", account_id, "--account-key", "cli-key"]
    with EmulatorProcess(*options, start_delay=0) as process:
        first_line, *banner = process.banner
        first_line = first_line.strip()
        assert first_line.startswith("ARR_EMULATOR_URL=http://127.0.0.1:"), process.output()
        url = first_line.removeprefix("ARR_EMULATOR_URL=")
        assert len(banner) == 7
        export = banner[-1].strip()
        assert export.startswith("export AIRFLOW_CONN_ARR_DEFAULT='")
        connection = json.loads(export.removeprefix("export AIRFLOW_CONN_ARR_DEFAULT=").strip("'"))
        assert connection == {
            "conn_type": "azure_remote_rendering",
            "host": url,
            "login": account_id,
            "password": "cli-key",
            "extra": {"sts_url": url},
        }
        assert any(account_id in line for line in banner)

        with httpx.Client(base_url=url, timeout=5) as client:
            token = client.get(
                f"/accounts/{account_id}/token", headers={"Authorization": f"Bearer {account_id}:cli-key"}
            ).json()["AccessToken"]
            headers = {"Authorization": f"Bearer {token}"}
            created = client.post(
                f"/v1/accounts/{account_id}/sessions/create",
                json={"maxLeaseTime": "0:10:0", "size": "standard"},
                headers=headers,
            )
            session_id = created.json()["sessionId"]
            ready = client.get(
                f"/v1/accounts/{account_id}/sessions/{session_id}/properties", headers=headers
            ).json()
            assert ready["sessionStatus"] == "Ready"
            assert ready["sessionHostname"].endswith(".westeurope.mixedreality.azure.com")
            assert [s["sessionId"] for s in client.get("/_emulator/sessions").json()] == [session_id]
            assert client.get("/_emulator/counts").json() == {"token": 1, "create": 1, "properties": 1}
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal.
    assert process.returncode in (0, -15)
