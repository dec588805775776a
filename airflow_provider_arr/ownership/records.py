"""The records themselves: who started which session, and where the records are kept.

See the package's docstring (:mod:`airflow_provider_arr.ownership`) for why and how.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from airflow_provider_arr.models import SessionProperties, new_matching_sessions, parse_timespan

#: The Airflow release that lists Variables by prefix (``Variable.keys``), which :func:`all_records` needs.
VARIABLE_KEYS_SINCE = "3.3"
#: The prefix of every ownership record's Variable key.
RECORD_PREFIX = "arr_session_owner__"
#: The key, in a record's session entry, of a stop made from the operations view of the UI:
#: ``{"by": "<user>", "at": "<ISO time>"}``. The teardown and the janitor report it.
UI_STOP = "stopped_from_ui"


@dataclass(frozen=True)
class Owner:
    """A create task instance: the same for every try of it, and after a clear."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1

    @classmethod
    def of(cls, ti: Any, task_id: str | None = None) -> Owner:
        """The owner for a task instance (or, with ``task_id``, for another task of its run and map index)."""
        map_index = getattr(ti, "map_index", -1)
        return cls(ti.dag_id, ti.run_id, task_id or ti.task_id, -1 if map_index is None else int(map_index))

    @property
    def key(self) -> str:
        """The Variable key of this owner's record (at most 52 characters)."""
        exact = "\x1f".join((self.dag_id, self.run_id, self.task_id, str(self.map_index)))
        return RECORD_PREFIX + hashlib.sha256(exact.encode()).hexdigest()[:32]

    def __str__(self) -> str:
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{index}"


@dataclass(frozen=True)
class PendingCreate:
    """A v1 create that was sent (or about to be) and whose answer is not known yet."""

    try_number: int
    sent_at: str
    max_lease_time: str
    size: str
    before: tuple[str, ...]

    def matching(self, listed: Iterable[SessionProperties], known: Iterable[str]) -> list[SessionProperties]:
        """The sessions this create may have started: new since ``before``, with its lease and size."""
        skip = set(self.before) | set(known)
        return new_matching_sessions(skip, listed, parse_timespan(self.max_lease_time), self.size)


@dataclass
class OwnershipRecord:
    """What one create task instance started, across all its tries."""

    owner: Owner
    arr_conn_id: str
    api_version: str
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: PendingCreate | None = None
    claimed_by_try: int = 0
    kill_stopped: dict[str, int] = field(default_factory=dict)
    account_id: str = ""

    def add(self, session_id: str, try_number: int, size: str | None = None) -> None:
        """Record a session as this owner's (before its create is sent, when the id is known).

        :param size: the VM size asked for (``"standard"``, ``"premium"``), when known: the billed time
            carries it, so that the operations view can price a session that has ended.
        """
        entry = self.sessions.setdefault(session_id, {"try": try_number, "recorded_at": _now()})
        if size is not None:
            entry.setdefault("size", str(size))

    def forget(self, session_id: str) -> None:
        """Drop a session that has ended for good."""
        self.sessions.pop(session_id, None)
        self.kill_stopped.pop(session_id, None)

    @property
    def empty(self) -> bool:
        """Nothing is recorded that could still run."""
        return not self.sessions and self.pending is None

    def to_json(self) -> str:
        """The record as stored."""
        pending = None
        if self.pending is not None:
            pending = {
                "try": self.pending.try_number,
                "sent_at": self.pending.sent_at,
                "max_lease_time": self.pending.max_lease_time,
                "size": self.pending.size,
                "before": list(self.pending.before),
            }
        return json.dumps(
            {
                "owner": self.owner.__dict__,
                "arr_conn_id": self.arr_conn_id,
                "account_id": self.account_id,
                "api_version": self.api_version,
                "sessions": self.sessions,
                "pending": pending,
                "claimed_by_try": self.claimed_by_try,
                "kill_stopped": self.kill_stopped,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> OwnershipRecord:
        """Read a stored record; ``ValueError`` if it is not one."""
        data = json.loads(text)
        if not isinstance(data, Mapping) or not isinstance(data.get("owner"), Mapping):
            raise ValueError("not an ownership record")
        owner = Owner(**data["owner"])
        raw = data.get("pending")
        pending = None
        if isinstance(raw, Mapping):
            pending = PendingCreate(
                int(raw["try"]),
                str(raw["sent_at"]),
                str(raw["max_lease_time"]),
                str(raw["size"]),
                tuple(raw["before"]),
            )
        return cls(
            owner=owner,
            arr_conn_id=str(data.get("arr_conn_id", "arr_default")),
            api_version=str(data.get("api_version", "v1")),
            sessions=dict(data.get("sessions") or {}),
            pending=pending,
            claimed_by_try=int(data.get("claimed_by_try") or 0),
            kill_stopped={str(k): int(v) for k, v in (data.get("kill_stopped") or {}).items()},
            account_id=str(data.get("account_id") or ""),
        )


class Ledger(Protocol):
    """Where records are kept: Airflow Variables in a task; a dict in unit tests."""

    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str, description: str) -> None: ...
    def delete(self, key: str) -> None: ...
    def keys(self, prefix: str) -> list[str]: ...


class VariableLedger:
    """Records as Airflow Variables, through the Task SDK (a running task, or the triggerer)."""

    def get(self, key: str) -> str | None:
        from airflow.sdk import Variable

        value = Variable.get(key, default=None)
        return None if value is None else str(value)

    def set(self, key: str, value: str, description: str) -> None:
        from airflow.sdk import Variable

        Variable.set(key, value, description=description)

    def delete(self, key: str) -> None:
        from airflow.sdk import Variable

        Variable.delete(key)

    def keys(self, prefix: str) -> list[str]:
        from airflow.sdk import Variable

        from airflow_provider_arr import _compat

        if not _compat.has_variable_keys():  # Airflow < 3.3
            raise NotImplementedError(
                _compat.needs_newer_airflow(
                    "Listing ownership records",
                    VARIABLE_KEYS_SINCE,
                    "it lists Airflow Variables by prefix with Variable.keys, new in Airflow 3.3",
                    "read one record by its key (load)",
                )
            )
        return list(Variable.keys(prefix=prefix))


class MemoryLedger:
    """Records in a dict: for unit tests that run operators without a task runner (not durable)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str, description: str) -> None:
        with self._lock:
            self.values[key] = value

    def delete(self, key: str) -> None:
        with self._lock:
            self.values.pop(key, None)

    def keys(self, prefix: str) -> list[str]:
        return [key for key in list(self.values) if key.startswith(prefix)]


_ledger: Ledger | None = None
_outside_airflow: MemoryLedger | None = None


def ledger() -> Ledger:
    """The ledger in use: Airflow Variables, unless a test installed another with :func:`use_ledger`.

    Outside Airflow's task runner (an operator's ``execute`` called directly in a unit test) there is no
    way to reach the Variables: the records then live in this process only, and a warning says so once.
    """
    global _outside_airflow
    if _ledger is not None:
        return _ledger
    from airflow.sdk.execution_time import task_runner

    if getattr(task_runner, "SUPERVISOR_COMMS", None) is not None:
        return VariableLedger()
    if _outside_airflow is None:
        import logging

        logging.getLogger(__name__).warning(
            "Not running under Airflow's task runner: session ownership records are kept in this process "
            "only, so a retry, the teardown or the janitor in another process will not see them"
        )
        _outside_airflow = MemoryLedger()
    return _outside_airflow


def use_ledger(new: Ledger | None) -> None:
    """Install a ledger (``None``: back to Airflow Variables). For tests that run operators directly."""
    global _ledger
    _ledger = new


def load(owner: Owner) -> OwnershipRecord | None:
    """The owner's record, or ``None`` if it has none."""
    text = ledger().get(owner.key)
    return None if text is None else OwnershipRecord.from_json(text)


def save(record: OwnershipRecord) -> None:
    """Write a record (or delete it once nothing in it can run any more)."""
    if record.empty:
        ledger().delete(record.owner.key)
        return
    description = f"Sessions started by {record.owner} (airflow-provider-arr; the session janitor reads it)"
    ledger().set(record.owner.key, record.to_json(), description)


def all_records() -> list[OwnershipRecord]:
    """Every ownership record (the janitor's view); unreadable ones are skipped."""
    store = ledger()
    records = []
    for key in store.keys(RECORD_PREFIX):
        text = store.get(key)
        try:
            records.append(OwnershipRecord.from_json(text or ""))
        except (ValueError, KeyError, TypeError):
            continue
    return records


def pending_create(try_number: int, lease: timedelta, size: str, before: Iterable[str]) -> PendingCreate:
    """The record of a v1 create about to be sent."""
    from airflow_provider_arr.models import format_timespan

    return PendingCreate(try_number, _now(), format_timespan(lease), size, tuple(sorted(before)))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
