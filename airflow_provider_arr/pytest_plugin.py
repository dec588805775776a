"""A pytest plugin for testing your own DAGs against the bundled ARR emulator.

Installed with the provider and registered through the ``pytest11`` entry point, so any project that
has ``airflow-provider-arr`` installed gets the ``arr_emulator`` fixture without a ``conftest.py``::

    def test_my_dag(arr_emulator):
        dag.test()
        assert {s.status for s in arr_emulator.state.sessions()} == {"Stopped"}

The fixture starts an emulator on a free loopback port and points a connection (``arr_default``
unless the marker says otherwise) at it through ``AIRFLOW_CONN_<ID>`` for the duration of the test.
The ``arr_emulator`` marker takes the emulator's settings, by keyword (:data:`MARKER_ARGUMENTS`)::

    @pytest.mark.arr_emulator(start_delay=2.0, conn_id="my_arr", extra={"read_timeout": 5})
    def test_slow_start(arr_emulator): ...
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_arr.emulator import ArrEmulator

#: Seconds a session stays Starting unless the marker says otherwise: short, so DAG tests stay fast.
DEFAULT_START_DELAY = 0.2
#: Seconds a conversion takes (NotStarted, then Running) unless the marker says otherwise: short too.
DEFAULT_CONVERSION_DELAY = 0.5
#: Seconds an access token is valid unless the marker says otherwise.
DEFAULT_TOKEN_LIFETIME = 3600.0
#: The connection the fixture sets unless the marker says otherwise.
DEFAULT_CONN_ID = "arr_default"
#: Connection extras that keep retries short in tests (the hook's defaults allow two minutes per call).
FAST_RETRY_EXTRAS: dict[str, Any] = {"retry_min_wait": 0.05, "retry_max_wait": 0.5, "retry_max_time": 10}

#: Every argument the ``arr_emulator`` marker accepts, with what it must be. All are keywords; all but
#: ``conn_id`` and ``extra`` are :class:`~airflow_provider_arr.emulator.EmulatorState` arguments.
MARKER_ARGUMENTS: dict[str, str] = {
    "start_delay": "seconds >= 0",
    "conversion_delay": "seconds >= 0",
    "fail_conversions": "a dict {glob: message or None}",
    "token_lifetime": "seconds > 0",
    "region": "a non-empty string",
    "account_id": "a non-empty string",
    "account_key": "a non-empty string",
    "page_size": "a whole number >= 1",
    "conn_id": "a non-empty string",
    "extra": "a dict of connection extras",
}
_STRINGS = ("region", "account_id", "account_key", "conn_id")
_MAPPINGS = ("fail_conversions", "extra")


def _is_wrong(name: str, value: Any) -> bool:
    """Whether a marker argument's value is not what :data:`MARKER_ARGUMENTS` says it must be."""
    if name in _STRINGS:
        return not isinstance(value, str) or not value
    if name in _MAPPINGS:
        return value is not None and not isinstance(value, Mapping)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True
    if name == "page_size":
        return not isinstance(value, int) or value < 1
    return value <= 0 if name == "token_lifetime" else value < 0


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``arr_emulator`` marker, so ``--strict-markers`` accepts it."""
    config.addinivalue_line(
        "markers",
        f"arr_emulator(start_delay={DEFAULT_START_DELAY}, conversion_delay={DEFAULT_CONVERSION_DELAY}, "
        "fail_conversions=None, token_lifetime=3600, region='westus2', account_id=..., account_key=..., "
        f"page_size=50, conn_id='{DEFAULT_CONN_ID}', extra=None): "
        "settings of the arr_emulator fixture's emulator and connection",
    )


def marker_settings(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Check the ``arr_emulator`` marker's arguments and return them with the fixture's defaults.

    :param args: the marker's positional arguments (there must be none).
    :param kwargs: its keyword arguments.
    :return: every setting given, plus ``start_delay``, ``conversion_delay``, ``token_lifetime``,
        ``conn_id`` and ``extra`` (short retry waits, then the marker's extras) when not given.
    :raises ValueError: naming the argument, for a positional or unknown argument or a value of the
        wrong type; the message lists the accepted arguments.
    """
    accepted = ", ".join(MARKER_ARGUMENTS)
    if args:
        raise ValueError(f"takes keyword arguments only, got positional {args!r}; accepted: {accepted}")
    unknown = [name for name in kwargs if name not in MARKER_ARGUMENTS]
    if unknown:
        raise ValueError(f"unknown argument {', '.join(map(repr, unknown))}; accepted: {accepted}")
    for name, value in kwargs.items():
        if _is_wrong(name, value):
            raise ValueError(f"{name}={value!r}: must be {MARKER_ARGUMENTS[name]}")
    settings = {
        "start_delay": DEFAULT_START_DELAY,
        "conversion_delay": DEFAULT_CONVERSION_DELAY,
        "token_lifetime": DEFAULT_TOKEN_LIFETIME,
        "conn_id": DEFAULT_CONN_ID,
        **kwargs,
    }
    settings["extra"] = {**FAST_RETRY_EXTRAS, **(kwargs.get("extra") or {})}
    return settings


@pytest.fixture
def arr_emulator(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[ArrEmulator]:
    """An ARR emulator on a free loopback port, with ``AIRFLOW_CONN_ARR_DEFAULT`` pointing at it.

    Yields the running :class:`~airflow_provider_arr.emulator.ArrEmulator`: ``url``, ``account_id``,
    ``account_key``, and ``state`` to inspect the sessions and conversions your DAG created
    (``state.sessions()``, ``state.conversions()``), count requests, or inject faults
    (``state.add_fault("create", 503)``, ``state.fail_next_start("no capacity")``). The emulator stops
    and the variable is restored after the test.

    Settings come from the ``arr_emulator`` marker (:data:`MARKER_ARGUMENTS`): ``start_delay``
    (default :data:`DEFAULT_START_DELAY`), ``conversion_delay`` (default
    :data:`DEFAULT_CONVERSION_DELAY`), ``fail_conversions``, ``token_lifetime`` (default
    :data:`DEFAULT_TOKEN_LIFETIME`), ``region``, ``account_id``, ``account_key``, ``page_size``,
    ``conn_id`` (default ``arr_default``) and ``extra`` (connection extras added to
    :data:`FAST_RETRY_EXTRAS`). A positional or unknown argument, or a bad value, fails the test
    before the emulator starts, with a message that names it.
    """
    from airflow_provider_arr.emulator import ArrEmulator, EmulatorState

    marker = request.node.get_closest_marker("arr_emulator")
    try:
        settings = (
            marker_settings(marker.args, marker.kwargs) if marker is not None else marker_settings((), {})
        )
        conn_id, extra = settings.pop("conn_id"), settings.pop("extra")
        state = EmulatorState(**settings)
    except (TypeError, ValueError) as error:
        problem = str(error)
    else:
        problem = ""
    if problem:  # failed outside the except block, so the report shows no chained exception
        pytest.fail(f"@pytest.mark.arr_emulator: {problem}", pytrace=False)
    with ArrEmulator(state=state) as emulator:
        for name, value in emulator.env(conn_id, **extra).items():
            monkeypatch.setenv(name, value)
        yield emulator
