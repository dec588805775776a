"""Helpers of the Entra ID hook tests (``test_entra.py``, ``test_entra_errors.py``); fixtures: conftest."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from airflow_provider_arr.emulator import ArrEmulator
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from tests.helpers import FAST_RETRIES

CONN_ID = "arr_entra"
SECRET = "entra-client-secret-9fQ2-do-not-log"
DIALECTS = ["v1", "2021-01-01"]


def use(monkeypatch: pytest.MonkeyPatch, connection: dict[str, Any]) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection))


def principal_connection(
    entra_emu: ArrEmulator,
    monkeypatch: pytest.MonkeyPatch,
    role: str | None,
    api_version: str = "v1",
    **extra: Any,
) -> Any:
    principal = entra_emu.state.add_principal(secret=SECRET, role=role)
    if api_version != "v1":  # v1 is the default, and Airflow's masker warns of any short extra string
        extra["api_version"] = api_version
    use(monkeypatch, entra_emu.entra_connection(principal, **FAST_RETRIES, **extra))
    return principal


def sts_kinds(entra_emu: ArrEmulator) -> set[str]:
    return {kind for kind, _ in entra_emu.state.sts_sign_ins()}


def call(hook: RemoteRenderingHook, name: str, async_path: bool) -> Any:
    """Call the hook's ``name`` (e.g. ``get_token``), or its async twin on a loop of its own."""
    if async_path:
        return asyncio.run(getattr(hook, f"a{name}")())
    return getattr(hook, name)()


def logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    """Everything logged: Python logging, and Airflow's structlog lines on stdout and stderr."""
    out, err = capsys.readouterr()
    return "\n".join([caplog.text, out, err])


def secrets_of(entra_emu: ArrEmulator) -> list[str]:
    """What must never appear: the client secret, the account key, every Entra and STS token."""
    return [
        SECRET,
        entra_emu.account_key,
        *entra_emu.state.issued_entra_tokens(),
        *entra_emu.state.issued_tokens(),
    ]


def session_round_trip(async_path: bool) -> None:
    """Create and stop a session, with the sync hook or the async one (on a loop of its own)."""
    if not async_path:
        with RemoteRenderingHook(CONN_ID) as hook:
            hook.stop_session(hook.create_session("0:30:00"))
        return

    async def round_trip() -> None:
        async with RemoteRenderingHook(CONN_ID) as hook:
            await hook.astop_session(await hook.acreate_session("0:30:00"))

    asyncio.run(round_trip())
