"""Upstream behaviour docs/connection.md documents: why the connection list's Test icon is refused (issue 14).

The browser test of ``make e2e`` presses the icon; this pins the server half where ``make test`` runs,
so that an Airflow upgrade that changes it fails here too. When it fails: check the Test icon on the e2e
deployment (``tests/e2e/test_ui_browser.py``) and update docs/connection.md, "Testing the connection".
"""

from __future__ import annotations

import pytest

from tests.helpers import needs_airflow


@needs_airflow((3, 3), "the Test icon's endpoint check pinned here is 3.3's (_same_endpoint)")
# Importing the route module imports FastAPI's test client, which warns about its own httpx use.
@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_airflow_counts_the_test_icons_port_0_as_another_endpoint():
    from airflow.api_fastapi.core_api.routes.public.connections import _same_endpoint

    # A blank host or port in the test request matches a stored null...
    assert _same_endpoint("", None)
    assert _same_endpoint(None, None)
    # ...but the list's Test icon sends Number(null) == 0 for a connection without a port, and Airflow
    # 3.3.2 takes that for another endpoint: it then refuses to test the stored (masked) credentials.
    assert not _same_endpoint(0, None)
