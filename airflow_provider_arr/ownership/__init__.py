"""Durable session ownership: which task instance started which session, kept outside the task process.

A session is billed until it stops, and a task process can die at any instant (SIGKILL, OOM, a lost
pod) without running ``on_kill`` or ``except`` blocks. So the create operator writes what it is about to
create **before** the create call is sent, and the session's id as soon as it is known, to a record that
whoever comes next can read: the next try, a cleared re-run, the teardown (another task instance) and
the session janitor (another DAG).

Where the records live: **Airflow Variables**, one per create task instance, keyed
``arr_session_owner__<hash of dag id, run id, task id, map index>``. They go through the Task SDK to the
API server and the metadata database, survive every try and a clear, can be read by any task, and can be
enumerated by prefix (``Variable.keys``, Airflow 3.3+) by the janitor. ``context["task_state_store"]``
(3.3) was the other candidate; it is scoped to one task instance (``ti:self``), so the teardown and the
janitor could not read it. A record holds ids, the request and timestamps, never a secret.

The record's JSON (``OwnershipRecord.to_json``)::

    {"owner": {"dag_id", "run_id", "task_id", "map_index"}, "arr_conn_id", "account_id", "api_version",
     "sessions": {"<id>": {"try": 2, "recorded_at": "<ISO time>"}},
     "pending": {"try", "sent_at", "max_lease_time", "size", "before": ["<id>", ...]} | null,
     "claimed_by_try": 2, "kill_stopped": {"<id>": 1}}

``pending`` is a v1 create whose answer is not known yet (v1 ids are chosen by the service); on
2021-01-01 the client names the session, so its id is recorded before the create is sent.

**The rules of every destructive decision** (the janitor, the teardown's "stop what the record holds",
a create's reconcile and its ``on_kill``), written once here and applied by :mod:`.rules`,
:mod:`.teardown` and :mod:`.evidence`:

1. *Positive evidence only.* A recorded session is stopped only when what was read says its owner is
   done with it: the DAG run is known to be finished (``success`` or ``failed``), or the create task
   instance is known to have failed for good, and the record was read and names that session, and the
   create's try is known to be over. An error while reading any of these, or a state this code does not
   know, means: keep the session, say so in the log, decide on the next run. A run that really was
   deleted can never give that evidence: its sessions are reported as unowned, ended by the janitor's
   ``max_unowned_age`` when set, else by their lease.
2. *Nothing by position.* A mapped stop or sensor finds its session through the create's record of
   *its own* map index (dag, run, task, map index), not through the n-th XCom: Airflow expands mapped
   values by position, so one failed create index shifts every value after it. A session given by
   position that another index's record names is left to that index's teardown; the highest index of a
   mapped stop also handles the create indexes that have no stop index of their own.
"""

from __future__ import annotations

from airflow_provider_arr.ownership.records import (
    RECORD_PREFIX,
    UI_STOP,
    Ledger,
    MemoryLedger,
    Owner,
    OwnershipRecord,
    PendingCreate,
    VariableLedger,
    all_records,
    ledger,
    load,
    pending_create,
    save,
    use_ledger,
)

__all__ = [
    "RECORD_PREFIX",
    "UI_STOP",
    "Ledger",
    "MemoryLedger",
    "Owner",
    "OwnershipRecord",
    "PendingCreate",
    "VariableLedger",
    "all_records",
    "ledger",
    "load",
    "pending_create",
    "save",
    "use_ledger",
]
