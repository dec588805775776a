"""The site's internal links are checked, offline, by the build itself: with the site's own Sphinx
settings (``docs/conf.py``), a link to a page, a heading or an in-page anchor that does not exist is a
warning, and ``make docs`` turns warnings into errors. Checked on a two-page site, so that a change of
settings that would let broken links through fails here."""

from __future__ import annotations

import io
import os
import sys
from contextlib import redirect_stderr
from pathlib import Path

import pytest
from sphinx.cmd.build import build_main

# MyST 5.2 still reads Sphinx attributes that Sphinx 9 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*Check CHANGES for Sphinx API modifications")

REPO = Path(__file__).resolve().parents[2]
SETTINGS = (REPO / "docs" / "conf.py").read_text()

INDEX = """# Home

```{toctree}
guide
```

LINK
"""
GUIDE = """# The guide

## Signing in with Entra ID

### The roles

#### A fourth-level heading

Text.
"""


def build(tmp_path: Path, link: str) -> tuple[int, str]:
    source = tmp_path / "src"
    source.mkdir()
    # The site's settings as they are, only without autodoc's modules (this site has none).
    (source / "conf.py").write_text(SETTINGS)
    (source / "index.md").write_text(INDEX.replace("LINK", link))
    (source / "guide.md").write_text(GUIDE)
    errors = io.StringIO()
    arguments = ["--fail-on-warning", "--quiet", "-b", "html", str(source), str(tmp_path / "out")]
    environ, path = dict(os.environ), list(sys.path)
    try:
        with redirect_stderr(errors):
            status = build_main(arguments)
    finally:  # conf.py sets Airflow's home and puts the repository on sys.path: undo both
        os.environ.clear()
        os.environ.update(environ)
        sys.path[:] = path
    return status, errors.getvalue()


@pytest.mark.parametrize(
    "link",
    [
        "[a page](guide.md)",
        "[a heading](guide.md#signing-in-with-entra-id)",
        "[a level-3 heading](guide.md#the-roles)",
        "[a level-4 heading](guide.md#a-fourth-level-heading)",
        "[an outside page](https://airflow.apache.org/)",
    ],
)
def test_a_good_link_builds(tmp_path: Path, link: str):
    status, errors = build(tmp_path, link)
    assert status == 0, errors


@pytest.mark.parametrize(
    "link",
    [
        "[a missing page](nowhere.md)",
        "[a missing heading](guide.md#signing-in-with-a-key)",
        "[a heading misspelt](guide.md#signing-in-with-entra)",
        "[a missing anchor here](#no-such-heading)",
        "[a file outside the site](../README.md)",
    ],
)
def test_a_broken_internal_link_fails_the_build(tmp_path: Path, link: str):
    status, errors = build(tmp_path, link)
    assert status != 0
    assert "index.md" in errors
