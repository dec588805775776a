"""Airflow names the tests use whose place moved between releases (the suites run on 3.1 to 3.3).

The package's own come from ``airflow_provider_arr._compat``; these are the ones only tests use.
"""

from __future__ import annotations

try:
    from airflow.sdk.exceptions import AirflowRescheduleException, TaskDeferred
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowRescheduleException, TaskDeferred  # type: ignore[no-redef]

__all__ = ["AirflowRescheduleException", "TaskDeferred"]
