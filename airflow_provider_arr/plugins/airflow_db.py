"""What the operations view reads from and writes to Airflow on the API server: the metadata database.

On the API server there is no Task SDK to ask (no task runner), so the reads that
:mod:`airflow_provider_arr.ownership.evidence` makes through the Execution API in a task are made here
against the metadata database, all at once: the runs and task instances of every record's owner in two
queries, the records themselves in one. Every Airflow-internal import of the plugin's reads and writes is
in this module (``airflow.models`` is not public API).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.ownership import RECORD_PREFIX, Owner, OwnershipRecord
from airflow_provider_arr.ownership.evidence import state_name
from airflow_provider_arr.ownership.records import UI_STOP

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: The connection type of the provider's connections.
CONN_TYPE = "azure_remote_rendering"
#: A page's budget per call to the service: tries, seconds in all, seconds to connect.
PAGE_RETRY_LIMIT, PAGE_BUDGET, PAGE_CONNECT_TIMEOUT = 2, 10.0, 3.0
#: How many ids go into one ``IN (...)`` (SQLite allows 32,766 parameters, older ones 999).
_CHUNK = 500


class ServerHook(RemoteRenderingHook):
    """The hook, with the connection read on the API server (secrets backends, environment, database).

    The Task SDK's ``get_connection`` only works under a task runner; this reads the connection the way the
    API server's own routes do.
    """

    @classmethod
    def get_connection(cls, conn_id: str) -> Any:
        """The connection ``conn_id`` (``AirflowNotFoundException`` if no backend knows it)."""
        from airflow.models.connection import Connection

        return Connection.get_connection_from_secrets(conn_id)

    def _load_settings(self, host: str | None, login: str | None, password: str | None, extra: Any) -> Any:
        """The connection's settings, with a page's budget (two tries, 10 s in all).

        An account that does not answer then costs a page seconds, not the two minutes a task may wait.
        """
        settings = super()._load_settings(host, login, password, extra)
        return dataclasses.replace(
            settings,
            retry_limit=min(settings.retry_limit, PAGE_RETRY_LIMIT),
            retry_max_time=min(settings.retry_max_time, PAGE_BUDGET),
            connect_timeout=min(settings.connect_timeout, PAGE_CONNECT_TIMEOUT),
            read_timeout=min(settings.read_timeout, PAGE_BUDGET),
        )


def arr_connection_ids(session: Session) -> list[str]:
    """The ids of every connection of our type: in the database and in ``AIRFLOW_CONN_*`` variables."""
    from airflow.models.connection import Connection
    from sqlalchemy import select

    found = set(session.scalars(select(Connection.conn_id).where(Connection.conn_type == CONN_TYPE)))
    for name, value in os.environ.items():
        if name.startswith("AIRFLOW_CONN_") and _env_conn_type(value) == CONN_TYPE:
            found.add(name.removeprefix("AIRFLOW_CONN_").lower())
    return sorted(found)


def _env_conn_type(value: str) -> str | None:
    """The type of a connection given as JSON or as a URI in an environment variable."""
    text = value.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return None
        kind = parsed.get("conn_type") if isinstance(parsed, dict) else None
        return kind.replace("-", "_") if isinstance(kind, str) else None
    return urlsplit(text).scheme.replace("-", "_") or None


def connection_extra(conn_id: str) -> dict[str, Any]:
    """The connection's extras (the view reads ``price_per_hour`` from them; nothing of it is shown)."""
    extra = ServerHook.get_connection(conn_id).extra_dejson
    return dict(extra) if isinstance(extra, Mapping) else {}


def read_records(session: Session) -> list[OwnershipRecord]:
    """Every ownership record, in one query (``LIKE`` treats ``_`` as a wildcard: filtered again here).

    A record that cannot be parsed is skipped, as the janitor skips it.
    """
    from airflow.models.variable import Variable
    from sqlalchemy import select

    records = []
    for variable in session.scalars(select(Variable).where(Variable.key.like(RECORD_PREFIX + "%"))):
        if not variable.key.startswith(RECORD_PREFIX):
            continue
        try:
            records.append(OwnershipRecord.from_json(variable.val or ""))
        except (ValueError, KeyError, TypeError):
            continue
    return records


@dataclass(frozen=True)
class AirflowSnapshot:
    """The states of the owners' runs and task instances, read once (an ``AirflowState`` for evidence).

    A run that is not in the database does not exist: ``dag_run_state`` raises and ``dag_run_exists`` says
    ``False`` (the verdict is then ``gone``). A failed read of the database never builds a snapshot: the
    caller uses :class:`Unreadable`, and every verdict is ``unknown``.
    """

    runs: Mapping[tuple[str, str], str]
    tasks: Mapping[tuple[str, str, str], Mapping[int, str]]

    def dag_run_state(self, dag_id: str, run_id: str) -> str:
        try:
            return self.runs[(dag_id, run_id)]
        except KeyError:
            raise LookupError(f"no DAG run {dag_id}/{run_id}") from None

    def dag_run_exists(self, dag_id: str, run_id: str) -> bool:
        return (dag_id, run_id) in self.runs

    def task_states(self, dag_id: str, run_id: str, task_id: str) -> dict[int, str]:
        return dict(self.tasks.get((dag_id, run_id, task_id), {}))


class Unreadable:
    """An ``AirflowState`` whose every read fails: what the view knows when the database read failed."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def dag_run_state(self, dag_id: str, run_id: str) -> str:
        raise self.error

    def dag_run_exists(self, dag_id: str, run_id: str) -> bool:
        raise self.error

    def task_states(self, dag_id: str, run_id: str, task_id: str) -> dict[int, str]:
        raise self.error


def read_snapshot(session: Session, owners: Iterable[Owner]) -> AirflowSnapshot:
    """The runs and task instances of ``owners``: two queries per 500 run ids."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    owners = list(owners)
    wanted_runs = {(owner.dag_id, owner.run_id) for owner in owners}
    wanted_tasks = {(owner.dag_id, owner.run_id, owner.task_id) for owner in owners}
    task_ids = sorted({owner.task_id for owner in owners})
    runs: dict[tuple[str, str], str] = {}
    tasks: dict[tuple[str, str, str], dict[int, str]] = {}
    for chunk in _chunks(sorted({run_id for _, run_id in wanted_runs})):
        query = select(DagRun.dag_id, DagRun.run_id, DagRun.state).where(DagRun.run_id.in_(chunk))
        for dag_id, run_id, state in session.execute(query):
            if (dag_id, run_id) in wanted_runs:
                runs[(dag_id, run_id)] = state_name(state)
        query = select(
            TaskInstance.dag_id,
            TaskInstance.run_id,
            TaskInstance.task_id,
            TaskInstance.map_index,
            TaskInstance.state,
        ).where(TaskInstance.run_id.in_(chunk), TaskInstance.task_id.in_(task_ids))
        for dag_id, run_id, task_id, map_index, state in session.execute(query):
            if (dag_id, run_id, task_id) in wanted_tasks:
                tasks.setdefault((dag_id, run_id, task_id), {})[int(map_index)] = state_name(state)
    return AirflowSnapshot(runs, tasks)


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def run_xcoms(session: Session, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """The run's ``billed_time``, ``session_id`` and ``session_properties`` XComs.

    :return: ``[{"task_id", "map_index", "key", "value"}, ...]``, values deserialised.
    """
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    query = select(XComModel.task_id, XComModel.map_index, XComModel.key, XComModel.value).where(
        XComModel.dag_id == dag_id,
        XComModel.run_id == run_id,
        XComModel.key.in_(["billed_time", "session_id", "session_properties"]),
    )
    return [
        {
            "task_id": row.task_id,
            "map_index": int(row.map_index),
            "key": row.key,
            "value": XComModel.deserialize_value(row),
        }
        for row in session.execute(query)
    ]


def run_state(session: Session, dag_id: str, run_id: str) -> str | None:
    """The run's state, or ``None`` if there is no such run."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    state = session.scalar(select(DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    return None if state is None else state_name(state)


def note_stop(session: Session, owner: Owner, session_id: str, user: str, at: datetime) -> bool:
    """Note in the owner's record that ``user`` stopped ``session_id`` from the view at ``at``.

    The stop teardown and the janitor read it, and report the stop instead of failing on a session that
    is already gone. Returns whether the record named the session (nothing is written otherwise).
    """
    from airflow.models.variable import Variable
    from sqlalchemy import select

    variable = session.scalar(select(Variable).where(Variable.key == owner.key))
    if variable is None:
        return False
    record = OwnershipRecord.from_json(variable.val or "")
    entry = record.sessions.get(session_id)
    if entry is None:
        return False
    entry[UI_STOP] = {"by": user, "at": at.isoformat(timespec="seconds")}
    variable.val = record.to_json()
    session.commit()
    return True


def audit(session: Session, event: str, user: str, owner: Owner | None, extra: Mapping[str, Any]) -> None:
    """Write an entry to Airflow's audit log (the ``Log`` table; the owning DAG's Audit Log shows it)."""
    from airflow.models.log import Log

    session.add(
        Log(
            event=event,
            owner=user,
            owner_display_name=user,
            extra=json.dumps(dict(extra), sort_keys=True),
            dag_id=owner.dag_id if owner else None,
            run_id=owner.run_id if owner else None,
            task_id=owner.task_id if owner else None,
            map_index=owner.map_index if owner else None,
        )
    )
    session.commit()
