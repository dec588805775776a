"""EmulatorProcess: the command line in a child process, as the demo, the benchmarks and e2e start it."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from airflow_provider_arr.emulator import DEFAULT_ACCOUNT_ID
from airflow_provider_arr.emulator.process import EmulatorProcess


def output_threads():
    return [thread for thread in threading.enumerate() if thread.name == "emulator-process-output"]


def test_it_answers_once_started_and_is_stopped_and_waited_for_on_exit(tmp_path):
    log = tmp_path / "emulator.log"
    with EmulatorProcess(start_delay=0, log_path=log) as emulator:
        assert emulator.returncode is None
        assert emulator.url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{emulator.url}/_emulator/counts", timeout=5).json() == {}
        (name, value), *others = emulator.env("my_arr", read_timeout=5).items()
        assert (name, others) == ("AIRFLOW_CONN_MY_ARR", [])
        assert json.loads(value) == {
            "conn_type": "azure_remote_rendering",
            "host": emulator.url,
            "login": DEFAULT_ACCOUNT_ID,
            "password": emulator.account_key,
            "extra": {"sts_url": emulator.url, "read_timeout": 5},
        }
        assert emulator.account_id == DEFAULT_ACCOUNT_ID
    assert emulator.returncode in (0, -15)
    assert emulator.stop() == emulator.returncode  # a second stop is harmless
    assert output_threads() == []
    assert log.read_text().startswith(f"ARR_EMULATOR_URL={emulator.url}\n")


def test_a_failed_start_says_why_and_leaves_nothing_running():
    emulator = EmulatorProcess("--page-size", "0")
    with pytest.raises(RuntimeError, match=r"exited with 2 before it printed its URL(.|\n)*--page-size >= 1"):
        emulator.start()
    assert emulator.returncode == 2
    assert output_threads() == []


def test_the_port_is_always_a_free_one():
    with pytest.raises(ValueError, match="--port"):
        EmulatorProcess("--port", "8710")
