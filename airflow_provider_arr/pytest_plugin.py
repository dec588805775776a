"""A pytest plugin for testing your own DAGs against the bundled ARR emulator.

Installed with the provider and registered through the ``pytest11`` entry point, so any project that
has ``airflow-provider-arr`` installed gets the ``arr_emulator`` fixture without a ``conftest.py``::

    def test_my_dag(arr_emulator):
        dag.test()
        assert {s.status for s in arr_emulator.state.sessions()} == {"Stopped"}

The fixture starts an emulator on a free loopback port and points a connection (``arr_default``
unless the marker says otherwise) at it through ``AIRFLOW_CONN_<ID>`` for the duration of the test.
The ``arr_emulator`` marker takes the emulator's settings::

    @pytest.mark.arr_emulator(start_delay=2.0, conn_id="my_arr", extra={"read_timeout": 5})
    def test_slow_start(arr_emulator): ...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_arr.emulator import ArrEmulator

#: Seconds a session stays Starting unless the marker says otherwise: short, so DAG tests stay fast.
DEFAULT_START_DELAY = 0.2
#: Connection extras that keep retries short in tests (the hook's defaults allow two minutes per call).
FAST_RETRY_EXTRAS: dict[str, Any] = {"retry_min_wait": 0.05, "retry_max_wait": 0.5, "retry_max_time": 10}


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``arr_emulator`` marker, so ``--strict-markers`` accepts it."""
    config.addinivalue_line(
        "markers",
        "arr_emulator(start_delay=0.2, token_lifetime=3600, conn_id='arr_default', extra=None, **state): "
        "settings of the arr_emulator fixture's emulator and connection",
    )


@pytest.fixture
def arr_emulator(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[ArrEmulator]:
    """An ARR emulator on a free loopback port, with ``AIRFLOW_CONN_ARR_DEFAULT`` pointing at it.

    Yields the running :class:`~airflow_provider_arr.emulator.ArrEmulator`: ``url``, ``account_id``,
    ``account_key``, and ``state`` to inspect the sessions your DAG created
    (``state.sessions()``), count requests, or inject faults (``state.add_fault("create", 503)``,
    ``state.fail_next_start("no capacity")``). The emulator stops and the variable is restored after
    the test.

    Settings come from the ``arr_emulator`` marker: ``start_delay`` (seconds a session stays
    ``Starting``, default 0.2), ``token_lifetime``, ``conn_id`` (default ``arr_default``), ``extra``
    (connection extras added to short retry settings) and any other
    :class:`~airflow_provider_arr.emulator.EmulatorState` argument (``region``, ``account_id``, ...).
    """
    from airflow_provider_arr.emulator import ArrEmulator

    marker = request.node.get_closest_marker("arr_emulator")
    settings: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    conn_id = settings.pop("conn_id", "arr_default")
    extra = {**FAST_RETRY_EXTRAS, **(settings.pop("extra", None) or {})}
    settings.setdefault("start_delay", DEFAULT_START_DELAY)
    with ArrEmulator(**settings) as emulator:
        for name, value in emulator.env(conn_id, **extra).items():
            monkeypatch.setenv(name, value)
        yield emulator
