"""Public names that a module re-exports but imports only when first asked for (PEP 562).

A DAG file imports the operators, and through them the hook and model modules; the names those modules
re-export from heavier modules load on first use instead (tests/unit/test_parse_cost.py).
"""

from __future__ import annotations

import importlib
from typing import Any


def load(module: str, table: dict[str, str], namespace: dict[str, Any], name: str) -> Any:
    """Module ``module``'s attribute ``name``, imported from ``table[name]``, kept in ``namespace``.

    :raises AttributeError: ``name`` is not one of ``table``'s.
    """
    if name not in table:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(table[name]), name)
    namespace[name] = value
    return value
