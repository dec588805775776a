"""The emulator's shape: small modules, no import of the provider's client, a stable Python API.

The emulator is a separate program from the provider (it must not share a client bug), and users'
tests import its names from where they have always been.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import airflow_provider_arr.emulator as emulator_package

EMULATOR_DIR = Path(emulator_package.__file__).parent
MODULES = sorted(EMULATOR_DIR.glob("*.py"))
MAX_LINES = 400

#: What users' tests import (README, pytest plugin, docs), by module.
PUBLIC_NAMES = {
    "airflow_provider_arr.emulator": [
        "DEFAULT_ACCOUNT_ID",
        "DEFAULT_ACCOUNT_KEY",
        "ArrEmulator",
        "EmulatorState",
        "SessionRecord",
        "SessionStatus",
        "create_app",
        "make_self_signed_cert",
    ],
    "airflow_provider_arr.emulator.entra": [
        "ADMINISTRATOR",
        "CLIENT",
        "DEFAULT_TENANT_ID",
        "ROLES",
        "EntraDirectory",
        "Principal",
    ],
    "airflow_provider_arr.emulator.state": [
        "CHAOS_REQUEST_KINDS",
        "CHAOS_SESSION_KINDS",
        "CHAOS_START_FAILURE",
        "DEFAULT_ACCOUNT_ID",
        "DEFAULT_ACCOUNT_KEY",
        "DEFAULT_PAGE_SIZE",
        "DEFAULT_START_FAILURE",
        "FAULT_ACTIONS",
        "MAX_LEASE_TIME",
        "OPERATIONS",
        "AuthenticationError",
        "ChaosSettings",
        "EmulatorError",
        "EmulatorState",
        "Fault",
        "InvalidLeaseError",
        "InvalidSizeError",
        "InvalidTokenError",
        "LeaseNotExtendedError",
        "SessionConflictError",
        "SessionEndedError",
        "SessionNotFoundError",
        "SessionRecord",
        "SessionStatus",
        "TokenIssuer",
        "format_timespan",
        "normalize_id",
    ],
}
STATE_API = [
    "add_account",
    "issue_token",
    "verify_token",
    "revoke_tokens",
    "token_lifetime",
    "create_session",
    "create_session_with_id",
    "get_session",
    "list_sessions",
    "list_sessions_page",
    "update_session",
    "stop_session",
    "fail_next_start",
    "fail_session_start",
    "slow_next_start",
    "expire_session",
    "stop_session_externally",
    "add_fault",
    "scripted_faults",
    "clear_faults",
    "enable_chaos",
    "disable_chaos",
    "chaos",
    "begin_request",
    "request_counts",
    "reset_counts",
    "faults_injected",
    "issued_tokens",
    "sessions",
    "active_sessions",
    "reset",
    # Conversions: what docs/emulator.md and the failed-conversion recipe tell users' tests to call.
    "conversions",
    "fail_next_conversion",
    "fail_conversions",
    "failing_conversions",
    # Entra ID (issue 19): what the README tells users' tests to call.
    "add_principal",
    "add_managed_identity",
    "assign_role",
    "principals",
    "identity_header",
    "sts_sign_ins",
    "issued_entra_tokens",
]


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_module_is_over_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_the_emulator_imports_none_of_the_provider_but_the_models(path: Path) -> None:
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
    own = {name for name in imported if name.split(".")[0] in ("airflow_provider_arr", "airflow")}
    allowed = {name for name in own if name.startswith("airflow_provider_arr.emulator")}
    allowed |= own & {"airflow_provider_arr.models"}
    assert own == allowed, f"{path.name} imports {sorted(own - allowed)}"


def test_starting_the_emulator_loads_no_hook_and_no_airflow() -> None:
    code = (
        "import sys, airflow_provider_arr.emulator.cli\n"
        "print(sorted(m for m in sys.modules if m.startswith(('airflow.', 'airflow_provider_arr.hooks'))"
        " or m == 'airflow'))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


@pytest.mark.parametrize("module", sorted(PUBLIC_NAMES))
def test_public_names_stay_importable_where_they_were(module: str) -> None:
    imported = importlib.import_module(module)
    missing = [name for name in PUBLIC_NAMES[module] if not hasattr(imported, name)]
    assert missing == []


def test_the_state_keeps_its_methods() -> None:
    from airflow_provider_arr.emulator import EmulatorState

    assert [name for name in STATE_API if not hasattr(EmulatorState, name)] == []
