"""Fixtures shared by the whole suite: an emulator on a real loopback socket, and a connection to it."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Airflow reads its home at import time: give the suite a throwaway one before anything imports it
# (and remove it at exit; processes the suite starts inherit the variable and make none of their own).
if "AIRFLOW_HOME" not in os.environ:
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="arr-tests-airflow-home-")
    atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], ignore_errors=True)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

import pytest

from tests.helpers import FAST_RETRIES


@pytest.fixture(autouse=True)
def _fresh_token_cache():
    """Each test starts with the process-wide token cache empty, so STS counts are its own."""
    from airflow_provider_arr.hooks.remote_rendering import clear_token_cache

    clear_token_cache()
    yield
    clear_token_cache()


@pytest.fixture(autouse=True)
def _fresh_secrets_masker():
    """Each test starts with Airflow's secrets masker empty, as each task process does.

    The masker is process-wide and recompiles one regular expression of every secret it holds on each
    new one: across this suite's thousands of fresh tokens and keys, that made the later tests ten times
    slower (2.3 s for a 0.25 s test) and the suite's process grow past 900 MB.
    """
    from airflow.sdk._shared.secrets_masker import reset_secrets_masker

    reset_secrets_masker()
    yield
    reset_secrets_masker()


@pytest.fixture(autouse=True)
def ownership_records():
    """Operators run here without a task runner: their ownership records go to a dict, fresh per test.

    ``dag.test`` runs (tests/airflow/_dag_runner.py, its own process) and the e2e deployment use the
    real store, Airflow Variables.
    """
    from airflow_provider_arr import ownership

    records = ownership.MemoryLedger()
    ownership.use_ledger(records)
    yield records
    ownership.use_ledger(None)


@pytest.fixture
def emulator():
    from airflow_provider_arr.emulator import ArrEmulator

    with ArrEmulator(start_delay=0.2, token_lifetime=3600) as emu:
        yield emu


@pytest.fixture
def arr_conn(emulator, monkeypatch):
    """Point the ``arr_default`` connection at the emulator; yields the emulator."""
    for name, value in emulator.env(**FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    return emulator


@pytest.fixture
def debug_logs(caplog):
    """
    Capture every log line at DEBUG level, from structlog (Airflow's task/hook loggers) and stdlib.

    Yields a function returning all captured text, so a test can scan it for secrets.
    """
    import logging

    import structlog
    from structlog.testing import LogCapture

    capture = LogCapture()
    saved = structlog.get_config()
    structlog.configure(
        processors=[structlog.processors.format_exc_info, capture],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    caplog.set_level(logging.DEBUG)
    try:
        yield lambda: "\n".join([repr(entry) for entry in capture.entries] + [caplog.text])
    finally:
        structlog.configure(**saved)
