"""A local emulator of the Azure Remote Rendering session REST API (v1 dialect) and its token service.

It is a separate program from the provider: it imports neither the hook nor the models nor Airflow,
so it starts fast and cannot share a client bug. Run it with ``arr-emulator`` or
``python -m airflow_provider_arr.emulator``, or in-process with :class:`ArrEmulator`::

    with ArrEmulator() as emulator:
        os.environ.update(emulator.env())
        ...

Besides the ARR API it serves two emulator-only routes: ``GET /_emulator/sessions`` and
``GET /_emulator/counts``.
"""

from __future__ import annotations

from airflow_provider_arr.emulator.app import create_app
from airflow_provider_arr.emulator.server import ArrEmulator
from airflow_provider_arr.emulator.state import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_ACCOUNT_KEY,
    EmulatorState,
    SessionRecord,
    SessionStatus,
)

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_ACCOUNT_KEY",
    "ArrEmulator",
    "EmulatorState",
    "SessionRecord",
    "SessionStatus",
    "create_app",
]
