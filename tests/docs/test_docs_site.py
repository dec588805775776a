"""The documentation site's promises, checked without building it (``make docs`` builds it).

- Every code example on the site is a file that a test runs: a page has no fenced Python block, every
  ``literalinclude`` names a file under ``docs/examples/`` or ``example_dags/``, and every file under
  ``docs/examples/`` is listed in the ``EXAMPLES`` of a test module that runs it.
- Every connection given as ``AIRFLOW_CONN_...='<json>'`` on a page is one the hook accepts.
- The README starts with the two commands, and its links into the site point at pages that exist.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from airflow_provider_arr.hooks.settings import ConnectionSettings

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGES = sorted(path for path in DOCS.rglob("*.md") if "_build" not in path.parts)
EXAMPLES_DIR = DOCS / "examples"

FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\n]*)$", re.MULTILINE)
INCLUDE = re.compile(r"^`{3,}\{literalinclude\}\s+(?P<path>\S+)", re.MULTILINE)
CONNECTION = re.compile(r"AIRFLOW_CONN_(?P<id>[A-Z0-9_]+)='(?P<json>\{.*?\})'", re.DOTALL)
PLACEHOLDER = re.compile(r"<(?P<name>[^<>\"]+)>")


def example_files() -> set[str]:
    """Every file under docs/examples, as a path relative to the repository."""
    return {
        path.relative_to(REPO).as_posix()
        for path in EXAMPLES_DIR.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def listed_examples() -> dict[str, str]:
    """File -> the test module whose module-level ``EXAMPLES`` list names it (read, not imported)."""
    listed: dict[str, str] = {}
    for module in [*REPO.glob("tests/docs/test_*.py"), REPO / "tests" / "test_pytest_plugin.py"]:
        strings: dict[str, str] = {}  # module-level NAME = "a string", which EXAMPLES may name
        for node in ast.parse(module.read_text()).body:
            if not isinstance(node, ast.Assign) or len(node.targets) != 1:
                continue
            (target,) = node.targets
            if not isinstance(target, ast.Name):
                continue
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                strings[target.id] = node.value.value
            if target.id == "EXAMPLES":
                assert isinstance(node.value, ast.List), f"{module.name}: EXAMPLES must be a list"
                for item in node.value.elts:
                    path = strings[item.id] if isinstance(item, ast.Name) else ast.literal_eval(item)
                    listed[path] = module.relative_to(REPO).as_posix()
    return listed


def test_the_site_has_pages():
    assert len(PAGES) >= 20, [page.name for page in PAGES]
    assert (DOCS / "index.md") in PAGES


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(DOCS).as_posix())
def test_no_python_is_pasted_into_a_page(page: Path):
    """Python comes from files the suite runs (``literalinclude``), never from a block typed into a page."""
    infos = [match["info"].strip().lower() for match in FENCE.finditer(page.read_text())]
    pasted = [info for info in infos if info.split(" ")[0] in {"python", "py", "python3", "pycon"}]
    assert not pasted, f"{page.name}: include a file from docs/examples/ instead of {pasted}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(DOCS).as_posix())
def test_every_include_is_a_file_the_suite_runs(page: Path):
    listed = listed_examples()
    for match in INCLUDE.finditer(page.read_text()):
        target = (page.parent / match["path"]).resolve()
        relative = target.relative_to(REPO).as_posix()
        assert target.is_file(), f"{page.name} includes {match['path']}, which does not exist"
        if relative.startswith("example_dags/"):
            continue  # tests/airflow/test_example_dags.py runs every example DAG
        assert relative in listed, f"{page.name} includes {relative}, which no test lists in EXAMPLES"


def test_every_example_file_is_run_by_a_test():
    listed = listed_examples()
    assert example_files(), "docs/examples is empty"
    unrun = sorted(example_files() - set(listed))
    assert not unrun, f"files under docs/examples that no test module lists in EXAMPLES: {unrun}"
    missing = sorted(set(listed) - example_files())
    assert not missing, f"EXAMPLES names files that do not exist: {missing}"


def test_every_example_dag_is_run_by_the_example_dag_tests():
    runner = (REPO / "tests" / "airflow" / "test_example_dags.py").read_text()
    for dag_file in sorted((REPO / "example_dags").glob("arr_*.py")):
        assert f'"{dag_file.stem}"' in runner, f"test_example_dags.py never runs {dag_file.stem}"


def _placeholder(match: re.Match[str]) -> str:
    name = match["name"].lower()
    if name.endswith("id"):
        return "0d5c1e2f-aaaa-4bbb-8ccc-123456789abc"
    return "placeholder-" + re.sub(r"\W+", "-", name)


def documented_connections() -> list[tuple[str, str, str]]:
    found = []
    for page in [*PAGES, REPO / "README.md"]:
        for match in CONNECTION.finditer(page.read_text()):
            found.append((page.relative_to(REPO).as_posix(), match["id"], match["json"]))
    return found


def test_the_docs_give_connections():
    assert len(documented_connections()) >= 5


@pytest.mark.parametrize(("page", "conn_id", "text"), documented_connections())
def test_every_documented_connection_is_one_the_hook_accepts(page: str, conn_id: str, text: str):
    conn = json.loads(PLACEHOLDER.sub(_placeholder, text))
    assert conn["conn_type"] == "azure_remote_rendering", page
    settings = ConnectionSettings.from_connection(
        conn_id.lower(), conn.get("host"), conn.get("login"), conn.get("password"), conn.get("extra") or {}
    )
    assert settings.account_id == conn["login"]
    assert settings.base_url.startswith("https://") or "127.0.0.1" in settings.base_url


def test_the_readme_starts_with_the_two_commands():
    readme = (REPO / "README.md").read_text()
    first_block = readme.split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line.strip()]
    assert commands == ["make demo", "make test"]
    assert readme.index("```") < 200, "the two commands come first"


def test_the_readmes_links_into_the_site_exist():
    readme = (REPO / "README.md").read_text()
    targets = re.findall(r"\]\((docs/[^)#\s]+)", readme)
    assert targets, "the README links into the site"
    for target in targets:
        assert (REPO / target).exists(), target


def test_the_readmes_example_is_the_file_the_suite_runs():
    """The README is read on GitHub, where includes do not work: its one example is a verbatim copy."""
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", readme, flags=re.MULTILINE | re.DOTALL)
    assert blocks == [(EXAMPLES_DIR / "project" / "dags" / "my_render.py").read_text()]
