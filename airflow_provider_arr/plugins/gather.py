"""Gather the operations view: one list call per connection, the records read once, Airflow read once.

Blocking (HTTP to the service, the metadata database): the app runs these in its thread pool.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_arr.models import API_2021
from airflow_provider_arr.ownership import Owner, OwnershipRecord
from airflow_provider_arr.ownership.assess import Attribution, attribute
from airflow_provider_arr.ownership.evidence import AirflowState, Verdict, owner_verdict
from airflow_provider_arr.plugins import airflow_db
from airflow_provider_arr.plugins.views import (
    Links,
    account_section,
    can_see,
    conversion_rows,
    failed_section,
    now_utc,
    parse_prices,
    records_for,
    session_view,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow_provider_arr.plugins.access import Access


def db_session() -> Any:
    """A metadata database session (a context manager that commits on success)."""
    from airflow.utils.session import create_session

    return create_session()


def describe(error: BaseException) -> str:
    """An error for the page: its kind and the provider's message (which never quotes a secret)."""
    return f"{type(error).__name__}: {error}"


class Evidence:
    """The records and what Airflow says about their owners, read once for a whole page."""

    def __init__(self, db: Session, records: list[OwnershipRecord]) -> None:
        self.records = records
        reader: AirflowState
        try:
            snapshot = airflow_db.read_snapshot(db, [record.owner for record in records])
            reader, self.run_states = snapshot, dict(snapshot.runs)
        except Exception as error:  # every verdict is then "unknown": nothing is called orphaned
            reader, self.run_states = airflow_db.Unreadable(error), {}
        self.verdicts: dict[Owner, Verdict] = {r.owner: owner_verdict(r.owner, reader) for r in records}

    @classmethod
    def read(cls, db: Session) -> Evidence:
        """Every ownership record, and the states of their owners."""
        return cls(db, airflow_db.read_records(db))


def account_view(access: Access, links: Links) -> dict[str, Any]:
    """The account view: one section per ARR connection the user can see (see :mod:`.views`)."""
    started = time.perf_counter()
    now = now_utc()
    with db_session() as db:
        conn_ids = airflow_db.arr_connection_ids(db)
        evidence = Evidence.read(db)
    sections = []
    for conn_id in conn_ids:
        section = connection_section(access, links, conn_id, evidence, now)
        if section is not None:
            sections.append(section)
    return {
        "user": access.name,
        "generated_at": now.isoformat(timespec="seconds"),
        "server_seconds": round(time.perf_counter() - started, 3),
        "connections": sections,
    }


def connection_section(
    access: Access, links: Links, conn_id: str, evidence: Evidence, now: datetime
) -> dict[str, Any] | None:
    """One connection's section, or ``None`` when the user may see nothing of it."""
    may_read = access.read_connection(conn_id)
    try:
        with airflow_db.ServerHook(conn_id) as hook:
            account_id, api_version = hook.settings.account_id, hook.settings.api_version
            listed = hook.list_sessions()
            extra = airflow_db.connection_extra(conn_id)
    except Exception as error:
        if not may_read:
            return None
        failed = failed_section(conn_id, describe(error))
        failed["test_url"] = links.test(conn_id) if access.may_test(conn_id) else None
        return failed
    prices, price_error = None, None
    try:
        prices = parse_prices(conn_id, extra)
    except ValueError as error:
        price_error = str(error)
    found = attribute(listed, records_for(evidence.records, conn_id, account_id), evidence.verdicts)
    rows = [
        session_view(item, conn_id, now, prices, evidence.run_states, links, access.may_act(item, conn_id))
        for item in found
        if can_see(item, may_read, access.read_runs)
    ]
    if not rows and not may_read:
        return None
    section = account_section(conn_id, api_version, rows, prices, price_error)
    section["test_url"] = links.test(conn_id) if access.may_test(conn_id) else None
    if may_read:  # conversions have no owner in Airflow: only for those who may read the connection
        section["conversions"], section["conversions_note"] = recent_conversions(conn_id, api_version)
    return section


def recent_conversions(conn_id: str, api_version: str) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The connection's newest conversions, where its dialect can list them (``2021-01-01``; v1 cannot)."""
    if api_version != API_2021:
        return None, "the v1 API cannot list conversions (a 2021-01-01 connection to the account can)"
    try:
        with airflow_db.ServerHook(conn_id) as hook:
            return conversion_rows(hook.list_conversions()), None
    except Exception as error:
        return None, f"conversions could not be listed: {describe(error)}"


def find_session(access: Access, conn_id: str, session_id: str) -> tuple[Attribution | None, str]:
    """One session and the janitor's attribution of it (``None``: it is not active), for an action.

    :raises LookupError: the connection is not an ARR connection, or the service does not know the id.
    """
    from airflow_provider_arr.exceptions import RemoteRenderingSessionNotFoundError

    with db_session() as db:
        if conn_id not in airflow_db.arr_connection_ids(db):
            raise LookupError(f"arr_conn_id: {conn_id!r} is not an Azure Remote Rendering connection")
        records = [r for r in airflow_db.read_records(db) if session_id in r.sessions]
        with airflow_db.ServerHook(conn_id) as hook:
            try:
                session = hook.get_session(session_id)
            except RemoteRenderingSessionNotFoundError:
                raise LookupError(
                    f"session_id: the account of {conn_id!r} has no session {session_id!r}"
                ) from None
            account_id = hook.settings.account_id
        evidence = Evidence(db, records_for(records, conn_id, account_id))
    found = attribute([session], evidence.records, evidence.verdicts)
    return (found[0] if found else None), session.status.value


def run_view(access: Access, links: Links, dag_id: str, run_id: str) -> dict[str, Any] | None:
    """The DAG-run tab: every session the run started, billed minutes, total, cost where priced.

    Sessions come from the run's ``session_id`` XComs (creates) and its ownership records (live ones);
    billed time from the stop teardown's ``billed_time`` XComs, or, for a live session, so far. Returns
    ``None`` when the run does not exist.
    """
    started = time.perf_counter()
    now = now_utc()
    with db_session() as db:
        state = airflow_db.run_state(db, dag_id, run_id)
        if state is None:
            return None
        xcoms = airflow_db.run_xcoms(db, dag_id, run_id)
        records = [
            r for r in airflow_db.read_records(db) if (r.owner.dag_id, r.owner.run_id) == (dag_id, run_id)
        ]
    rows: dict[str, dict[str, Any]] = {}

    def row(session_id: str) -> dict[str, Any]:
        return rows.setdefault(session_id, {"session_id": session_id, **_EMPTY_ROW})

    for item in xcoms:
        value = item["value"]
        if item["key"] == "session_id" and isinstance(value, str) and value:
            row(value)["task"] = {"task_id": item["task_id"], "map_index": item["map_index"]}
        elif item["key"] == "session_properties" and isinstance(value, Mapping) and value.get("session_id"):
            row(str(value["session_id"]))["size"] = value.get("size")
        elif item["key"] == "billed_time" and isinstance(value, Mapping) and value.get("session_id"):
            entry = row(str(value["session_id"]))
            entry.update(billed_seconds=value.get("billed_seconds"), billed_final=True, status="Stopped")
            entry.update(ready_at=value.get("ready_at"), stopped_at=value.get("stopped_at"))
            entry["size"] = entry["size"] or value.get("size")
            entry["arr_conn_id"] = value.get("arr_conn_id") or entry["arr_conn_id"]
    for record in records:
        for session_id in record.sessions:
            entry = row(session_id)
            entry["arr_conn_id"] = entry["arr_conn_id"] or record.arr_conn_id
            if entry["task"] is None:
                entry["task"] = {"task_id": record.owner.task_id, "map_index": record.owner.map_index}
    _add_live(rows, records, now)
    prices_of = _prices({entry["arr_conn_id"] for entry in rows.values() if entry["arr_conn_id"]})
    from airflow_provider_arr.plugins.views import cost

    costs = []
    for entry in rows.values():
        prices = prices_of.get(entry["arr_conn_id"] or "")
        entry["cost"] = cost(entry["billed_seconds"], entry["size"], prices)
        exact = cost(entry["billed_seconds"], entry["size"], prices, digits=None)
        costs += [] if exact is None else [exact]
    ordered = sorted(rows.values(), key=lambda e: (e["task"] or {}).get("map_index", -1))
    priced = any(entry["arr_conn_id"] in prices_of for entry in ordered)
    owner = Owner(dag_id, run_id, "")
    return {
        "user": access.name,
        "dag_id": dag_id,
        "run_id": run_id,
        "run_state": state,
        "run_link": links.run(owner),
        "sessions": ordered,
        "total_billed_seconds": round(sum(e["billed_seconds"] or 0 for e in ordered), 1),
        "priced": priced,
        "total_cost": round(sum(costs), 4) if priced else None,
        "server_seconds": round(time.perf_counter() - started, 3),
    }


#: A run tab row before anything is known of its session.
_EMPTY_ROW: dict[str, Any] = {
    "task": None,
    "status": None,
    "size": None,
    "arr_conn_id": None,
    "billed_seconds": None,
    "billed_final": False,
    "ready_at": None,
    "stopped_at": None,
    "cost": None,
}


def _add_live(rows: dict[str, dict[str, Any]], records: list[OwnershipRecord], now: datetime) -> None:
    """Status, size and billed time so far of the run's sessions, from one list call per connection."""
    from airflow_provider_arr.plugins.views import billed_so_far

    by_conn: dict[str, OwnershipRecord] = {}
    for record in records:
        by_conn.setdefault(record.arr_conn_id, record)
    holder = {sid: record for record in records for sid in record.sessions}
    for conn_id in sorted({entry["arr_conn_id"] for entry in rows.values() if entry["arr_conn_id"]}):
        try:
            with airflow_db.ServerHook(conn_id) as hook:
                listed = {session.session_id: session for session in hook.list_sessions()}
        except Exception as error:
            for entry in rows.values():
                if entry["arr_conn_id"] == conn_id and not entry["billed_final"]:
                    entry["status"] = f"unknown ({describe(error)})"
            continue
        for session_id, entry in rows.items():
            session = listed.get(session_id)
            if session is None:
                continue
            entry["size"] = session.size
            if not entry["billed_final"]:
                entry["status"] = session.status.value
                if session.status.is_active:
                    seconds, _, since = billed_so_far(session, holder.get(session_id), now)
                    entry["billed_seconds"] = round(seconds, 1)
                    entry["ready_at"] = since.isoformat(timespec="seconds") if since else None


def _prices(conn_ids: set[str]) -> dict[str, dict[str, float]]:
    """The prices of the connections that have valid ones."""
    found = {}
    for conn_id in conn_ids:
        try:
            prices = parse_prices(conn_id, airflow_db.connection_extra(conn_id))
        except Exception:
            continue
        if prices is not None:
            found[conn_id] = prices
    return found
