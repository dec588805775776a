"""Small helpers the test modules import (``from tests.helpers import ...``); fixtures stay in conftest.py.

The suite's one fast-retry setting lives here rather than in ``airflow_provider_arr.pytest_plugin``:
the plugin's ``FAST_RETRY_EXTRAS`` is what a user's DAG tests get from the ``arr_emulator`` fixture, a
public default with a more lenient budget, and changing it to the suite's numbers (or the suite's to
its numbers) would change either the users' tests or ours. The reliability tests tighten this setting
further for their fault injection; see ``tests/reliability/conftest.py``.
"""

from __future__ import annotations

from typing import Any

#: Connection extras that keep retries fast against the emulator: tests that provoke a retry wait at
#: most 0.2 s per attempt, a call gives up after 5 s, and a hung answer times out after 5 s.
FAST_RETRIES: dict[str, Any] = {
    "retry_min_wait": 0.05,
    "retry_max_wait": 0.2,
    "retry_max_time": 5,
    "read_timeout": 5,
}
