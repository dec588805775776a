"""The package's layers (docs/architecture.md): each imports only the ones above it, and no module imports a
private module of another layer. Read from the source with ``ast``, so it holds for lazy imports too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_provider_arr"
#: Lower number = higher layer (imported by the ones below it).
LAYERS = {
    "models": 0,
    "exceptions": 0,
    "hooks": 1,
    "ownership": 2,
    "links": 2,
    "operators": 3,
    "sensors": 3,
    "triggers": 3,
    "plugins": 4,
}
#: The emulator is the other side of the wire: models at most.
EMULATOR_MAY_IMPORT = {"models", "emulator"}


def imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return [name for name in names if name.startswith("airflow_provider_arr.")]


def layer_of(module: str) -> str:
    return module.split(".")[1]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.stem in LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_layers_above_and_no_private_module_of_another(path):
    mine = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    for name in imports(path):
        other = layer_of(name)
        if mine == "emulator":
            assert other in EMULATOR_MAY_IMPORT, f"{path.name} imports {name}"
            continue
        if other not in LAYERS or other == mine:
            continue
        assert LAYERS[other] <= LAYERS[mine], f"{path.relative_to(PACKAGE)} imports {name}, a layer below it"
        private = [part for part in name.split(".")[2:] if part.startswith("_") and not part.startswith("__")]
        assert not private, f"{path.relative_to(PACKAGE)} imports {name}, private to the {other} layer"
