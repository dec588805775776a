"""A local emulator of the Azure Remote Rendering REST API (sessions, conversions) and its token service.

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
official Azure SDK requires. Besides the ARR API it serves its OpenAPI description
(``/openapi.json``) and four emulator-only routes: ``GET /_emulator/sessions``,
``GET /_emulator/conversions``, ``GET /_emulator/counts`` and ``GET /_emulator/faults``. Asset
conversions are served in both dialects too (:mod:`~airflow_provider_arr.emulator.conversions`).

Faults, for reliability tests (``EmulatorState``; ``--fault`` and ``--chaos-rate`` on the command
line): canned answers with any status, late answers, connections reset before or after the call is
processed, answers cut short or garbled (``add_fault``); sessions that fail to start, start slowly,
expire early or are stopped by someone else (``fail_next_start``, ``slow_next_start``,
``expire_session``, ``stop_session_externally``); conversions that fail (``fail_conversions`` by input
path, ``--fail-conversion`` on the command line; ``fail_next_conversion``); and a seeded chaos mode
that draws such faults at random (``enable_chaos``). ``faults_injected`` counts them and
``issued_tokens()`` lists every token the STS issued, for tests that scan for leaked secrets.
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
