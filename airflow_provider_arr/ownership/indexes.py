"""Map indexes, read from Airflow instead of trusted from positions (rule 2 of the ownership rules).

Airflow expands ``.expand(session_id=create.output)`` over the create's return values **by position**:
when create index 1 pushes none (it failed), the value at position 1 is index 2's session, and the
mapped task has one instance fewer than the create. So a mapped stop or sensor never takes its value as
"the session of my index": it reads the create's record of its own map index, and asks Airflow which
map indexes the create has, to find whose record names a value it was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_arr.ownership import evidence
from airflow_provider_arr.ownership.records import Owner, OwnershipRecord, load


@dataclass
class CreateIndexes:
    """The create task's map indexes in one run, and their states (``states`` ``None``: not read)."""

    task_id: str
    states: dict[int, str] | None
    attached: bool
    error: str | None = None

    @property
    def mapped(self) -> list[int]:
        """The create's map indexes (empty when it is not mapped, or they could not be read)."""
        return sorted(index for index in (self.states or {}) if index >= 0)


def map_index_of(ti: Any) -> int:
    """A task instance's map index (``-1``: not mapped)."""
    index = getattr(ti, "map_index", -1)
    return -1 if index is None else int(index)


def create_indexes(ti: Any, create_task_id: str) -> CreateIndexes:
    """Read the create task's map indexes and states in ``ti``'s run; a failed read is kept as text."""
    reader = evidence.airflow_state()
    if reader is None:
        return CreateIndexes(create_task_id, None, attached=False)
    try:
        return CreateIndexes(create_task_id, reader.task_states(ti.dag_id, ti.run_id, create_task_id), True)
    except Exception as error:
        return CreateIndexes(create_task_id, None, True, type(error).__name__)


def instance_count(ti: Any) -> int | None:
    """How many map indexes ``ti``'s own task has in its run (``None``: could not be read)."""
    reader = evidence.airflow_state()
    if reader is None:
        return None
    try:
        states = reader.task_states(ti.dag_id, ti.run_id, ti.task_id)
    except Exception:
        return None
    return len([index for index in states if index >= 0]) or None


def record_naming(
    ti: Any, indexes: CreateIndexes, session_id: str, skip: set[int]
) -> tuple[int, OwnershipRecord] | None:
    """The create index (not in ``skip``) whose record names ``session_id``, and that record, if any.

    A record that cannot be read is passed over: this answers "whose is it", never "stop it".
    """
    for index in indexes.mapped:
        if index in skip:
            continue
        try:
            record = load(Owner(ti.dag_id, ti.run_id, indexes.task_id, index))
        except Exception:
            continue
        if record is not None and session_id in record.sessions:
            return index, record
    return None
