"""docs/emulator.md cannot fall behind the code: every flag, fault, route, control and marker argument.

Each list is read from the code itself (the real argparse parser, the fault module's names, the routes
the application serves, the state's public methods, the plugin's marker arguments), so a new one fails
this test until the reference describes it. The page's Python example runs too.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_arr.emulator import EmulatorState, create_app
from airflow_provider_arr.emulator.cli import build_parser
from airflow_provider_arr.emulator.faults import FAULT_ACTIONS, OPERATIONS
from airflow_provider_arr.emulator.oddities import FOREIGN_KINDS, LINK_LOOPS, LINK_SPELLINGS
from airflow_provider_arr.pytest_plugin import MARKER_ARGUMENTS

REPO = Path(__file__).resolve().parents[2]
PAGE = (REPO / "docs" / "emulator.md").read_text()
EXAMPLES = ["docs/examples/emulator/in_process.py"]

#: Public methods of the state that the routes call, not tests: the page says so without listing them.
ROUTE_SIDE = {
    "begin_request",
    "client_credentials_token",
    "count_entra_call",
    "create_conversion",
    "create_session",
    "create_session_with_id",
    "entra_role",
    "get_conversion",
    "get_session",
    "issue_token",
    "issue_token_for_entra",
    "knows_tenant",
    "list_conversions_page",
    "list_sessions",
    "list_sessions_page",
    "managed_identity_token",
    "note_sts_sign_in",
    "stop_session",
    "token_role",
    "update_session",
    "verify_token",
}
#: How the page writes the routes' path parameters.
PLACEHOLDERS = {
    "{account_id}": "{id}",
    "{session_id}": "{session}",
    "{conversion_id}": "{conversion}",
    "{tenant_id}": "{tenant}",
}


def table_row(first_cell: str) -> str:
    """The page's table row whose first cell starts with ``first_cell`` (in backticks); '' if none."""
    match = re.search(rf"^\| `{re.escape(first_cell)}[` ].*$", PAGE, re.MULTILINE)
    return match.group(0) if match else ""


def cli_options() -> list[tuple[str, object]]:
    return [
        (action.option_strings[-1], action.default)
        for action in build_parser()._actions
        if action.option_strings and action.option_strings[-1] != "--help"
    ]


@pytest.mark.parametrize(("flag", "default"), cli_options(), ids=lambda value: str(value))
def test_every_flag_has_a_row_with_its_default(flag: str, default: object) -> None:
    row = table_row(flag)
    assert row, f"docs/emulator.md has no row for {flag} in its flag table"
    if default not in (None, []):
        shown = {str(default), f"{default:g}" if isinstance(default, float) else str(default)}
        assert any(f"`{text}`" in row for text in shown), f"{flag}: the default {default!r} is not in: {row}"


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_fault_operation_is_described(operation: str) -> None:
    assert table_row(operation), f"the --fault operation {operation} has no row"


@pytest.mark.parametrize("action", [action for action in FAULT_ACTIONS if action != "answer"])
def test_every_fault_status_form_is_described(action: str) -> None:
    assert table_row(action), f"the --fault STATUS {action} has no row"


def test_the_odd_answer_kinds_are_described() -> None:
    assert [kind for kind in FOREIGN_KINDS if not table_row(kind)] == []
    assert [word for word in (*LINK_LOOPS, *LINK_SPELLINGS) if f"`{word}`" not in PAGE] == []


def served_routes() -> list[tuple[str, str]]:
    routes = []
    for route in create_app(EmulatorState()).routes:
        methods = sorted(set(getattr(route, "methods", None) or ()) - {"HEAD"})
        path = route.path.rstrip("/") or "/"  # type: ignore[attr-defined]
        for real, shown in PLACEHOLDERS.items():
            path = path.replace(real, shown)
        routes += [(method, path) for method in methods]
    return sorted(set(routes))


@pytest.mark.parametrize(("method", "path"), served_routes(), ids=lambda value: value)
def test_every_route_is_described(method: str, path: str) -> None:
    if path.startswith("/Accounts/"):  # the token service answers the capitalised spelling too
        assert "(also `/Accounts/...`)" in PAGE
        return
    if (path.startswith("/accounts/") and "sessions" in path) or path.endswith("/token"):
        written = f"`{method} {path}`"
    else:  # conversions of 2021-01-01 carry their api-version in the table
        written = f"`{method} {path}"
    assert written in PAGE, f"docs/emulator.md does not describe {method} {path}"


def test_the_emulator_only_routes_and_their_fields_are_described() -> None:
    emulator_only = [path for method, path in served_routes() if path.startswith("/_emulator/")]
    assert emulator_only  # the app serves some
    for path in emulator_only:
        assert f"`GET {path}`" in PAGE
    for field in ("readyAt", "endedAt", "elapsedTime", "createdAt", "creationTime", "leaseFromReady"):
        assert table_row(field), f"the /_emulator/sessions field {field} has no row"
    for field in ("conversionId", "dialect", "outputAssetUri", "errorMessage"):
        assert table_row(field), f"the /_emulator/conversions field {field} has no row"


def test_every_control_a_test_uses_is_described() -> None:
    public = {name for name in dir(EmulatorState) if not name.startswith("_")}
    assert public >= ROUTE_SIDE  # a renamed route-side method must leave this list
    missing = sorted(name for name in public - ROUTE_SIDE if not re.search(rf"[`.]{name}\b", PAGE))
    assert missing == []


def test_every_marker_argument_is_named() -> None:
    missing = [name for name in MARKER_ARGUMENTS if f"`{name}`" not in PAGE]
    assert missing == []


def test_the_page_has_no_python_block_and_includes_its_example() -> None:
    assert "```python" not in PAGE
    for example in EXAMPLES:
        assert f"```{{literalinclude}} {Path(example).relative_to('docs')}\n" in PAGE


def test_the_in_process_example_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / EXAMPLES[0])], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("http://127.0.0.1:")
    assert lines[-2:] == ["Counter({'token': 2})", "Counter({'503': 1})"]
