"""What the crash suite's DAGs are, shared by the DAG file and the test (plain Python, no Airflow).

One DAG per scenario and API dialect, ``arr_crash_<scenario>_<dialect>``, each shaped as the README
teaches: ``create >> render >> stop`` with ``stop.as_teardown(setups=create)`` and ``retries=1`` on
``create``. Each DAG gives its sessions a lease of its own (``LEASE_MINUTES``): that is how the test
tells, in the emulator's record, which scenario and dialect started a session (v1 session ids are
random), and how the crash emulator picks the calls whose answers it holds back.
"""

from __future__ import annotations

#: dialect label -> (connection id, the connection's ``api_version`` extra)
DIALECTS = {"v1": ("arr_v1", "v1"), "2021": ("arr_2021", "2021-01-01")}

#: scenario -> how its create waits (blocking: wait_for_ready in the worker; deferrable: wait_for_ready
#: in the triggerer; sensor: wait_for_ready=False and the Ready sensor after it), how long its render
#: uses the session (seconds), its number in the brief, which phase of the suite runs it, and
#: optionally how long its sessions stay Starting if not the suite's default (``start_delay``).
SCENARIOS: dict[str, dict[str, object]] = {
    "kill_task": {"number": "1", "create": "blocking", "render": 3, "phase": "A"},
    # Its retry must still find the first try's session Starting (on 2021-01-01 it reconnects to it)
    # after a task process start that takes 10-25 s while fourteen runs start at once.
    "kill_retry": {"number": "2", "create": "blocking", "render": 3, "phase": "A", "start_delay": 45},
    "kill_supervisor": {"number": "3", "create": "blocking", "render": 3, "phase": "A"},
    "kill_pod": {"number": "3b", "create": "blocking", "render": 3, "phase": "B"},
    "kill_create_call": {"number": "4", "create": "sensor", "render": 3, "phase": "A"},
    "kill_stop_call": {"number": "5", "create": "blocking", "render": 3, "phase": "A"},
    "clear_running": {"number": "6", "create": "blocking", "render": 30, "phase": "A"},
    "clear_deferred": {"number": "7", "create": "deferrable", "render": 3, "phase": "A"},
}

#: Seconds between two status reads of every waiting task (create, sensor, trigger).
POLL_INTERVAL = 2.0
#: The create task's retry delay: short, so that the retry comes while the killed try's session is
#: still Starting.
RETRY_DELAY_SECONDS = 1


def dag_id(scenario: str, dialect: str) -> str:
    """The DAG id of one scenario on one dialect."""
    return f"arr_crash_{scenario}_{dialect}"


def lease_minutes(scenario: str, dialect: str) -> int:
    """The lease (whole minutes, as 2021-01-01 wants) of every session of one scenario and dialect."""
    index = list(SCENARIOS).index(scenario)
    return 100 + 10 * index + list(DIALECTS).index(dialect)
