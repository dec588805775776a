"""Sphinx configuration of the documentation site (``make docs``).

Pages are Markdown (MyST). Every code example is a file under ``docs/examples/`` or ``example_dags/``
that the test suite runs, included into its page with ``literalinclude`` (``tests/docs`` checks both).
The build is offline: no intersphinx, no remote images; ``make docs`` turns every warning into an error,
so a broken internal link or anchor fails it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# autodoc imports the provider, which imports Airflow: give it a home in the build folder, not ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / "docs" / "_build" / "airflow-home"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

project = "airflow-provider-arr"
author = "airflow-provider-arr developers"
copyright = "2026, airflow-provider-arr developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "examples", "README.md"]

# Markdown: ``[text](page.md#a-heading)`` links are resolved and checked, down to level-4 headings.
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 4
# An external link stays a link: never resolved, never fetched (the build is offline).
myst_url_schemes = {"http": None, "https": None, "mailto": None}

# The API reference: the docstrings of the public modules, in source order, with type hints in the
# parameter list. Importing the modules needs Airflow, which `make docs` runs with.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
autoclass_content = "both"

html_theme = "furo"
html_title = "airflow-provider-arr"
html_static_path: list[str] = []
html_show_sourcelink = False
