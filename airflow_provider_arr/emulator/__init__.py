"""A local emulator of the Azure Remote Rendering session REST API and its token service (STS).

It speaks both dialects on one port and one state: ``v1`` (``/v1/accounts/{id}/sessions/...``) and
``2021-01-01`` (``/accounts/{id}/sessions/{sessionId}?api-version=2021-01-01``, the dialect of the
official SDKs), plus the STS at ``/accounts/{id}/token``. It is a separate program from the provider:
it imports neither the hook nor the models nor Airflow, so it starts fast and cannot share a client
bug. Run it with ``arr-emulator`` or ``python -m airflow_provider_arr.emulator``, or in-process with
:class:`ArrEmulator`::

    with ArrEmulator() as emulator:
        os.environ.update(emulator.env())
        ...

With ``certfile``/``keyfile`` (e.g. from :func:`make_self_signed_cert`) it serves https, which the
official Azure SDK requires. Besides the ARR API it serves two emulator-only routes:
``GET /_emulator/sessions`` and ``GET /_emulator/counts``.
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
from airflow_provider_arr.emulator.tls import make_self_signed_cert

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_ACCOUNT_KEY",
    "ArrEmulator",
    "EmulatorState",
    "SessionRecord",
    "SessionStatus",
    "create_app",
    "make_self_signed_cert",
]
