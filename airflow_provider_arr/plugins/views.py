"""The operations view's content, as plain JSON-able dicts: no Airflow, no HTTP (the app feeds it).

Every figure says where it comes from. Billed time runs from when a task of the pipeline first saw the
session Ready (``ready_at`` in its ownership record, as the stop's ``billed_time`` XCom does); a session
no record dates is billed from its start, the service's elapsed time, which errs on the long side. Cost
is that time in hours times the connection's ``price_per_hour`` for the session's size; a connection
without prices gets no cost at all, and a size it has no price for gets none either.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from airflow_provider_arr.models import ArrInputError, SessionProperties
from airflow_provider_arr.ownership import Owner, OwnershipRecord
from airflow_provider_arr.ownership.assess import Attribution
from airflow_provider_arr.ownership.rules import ui_stop

#: The connection extra holding the hourly price per session size.
PRICE_EXTRA = "price_per_hour"
#: What each category of :mod:`airflow_provider_arr.ownership.assess` is called on screen.
LABELS = {
    "owned": "owned and running",
    "orphaned": "orphaned",
    "undecided": "owner unknown (kept)",
    "unattributed": "unattributed",
}


def parse_prices(conn_id: str, extra: Mapping[str, Any]) -> dict[str, float] | None:
    """The connection's ``price_per_hour`` as ``{"standard": 2.5, ...}`` (sizes lower case), or ``None``.

    :param conn_id: the connection id, for the error message.
    :param extra: the connection's extras; ``price_per_hour`` may be an object or its JSON text (a URI
        gives extras as text).
    :raises ArrInputError: naming the connection and the extra, when it is not an object of sizes to
        non-negative numbers.
    """
    where = f"connection {conn_id!r} extra {PRICE_EXTRA!r}"
    raw = extra.get(PRICE_EXTRA)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ArrInputError(where, 'must be a JSON object like {"standard": 2.5}') from None
    if not isinstance(raw, Mapping) or not raw:
        raise ArrInputError(where, f'must be an object like {{"standard": 2.5}}, got {type(raw).__name__}')
    prices = {}
    for size, price in raw.items():
        if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price):
            raise ArrInputError(where, f"the price of {size!r} must be a number, got {price!r}")
        if price < 0:
            raise ArrInputError(where, f"the price of {size!r} must not be negative, got {price!r}")
        prices[str(size).lower()] = float(price)
    return prices


#: How many conversions a connection's section lists, newest first.
RECENT_CONVERSIONS = 10
_QUERY = re.compile(r"(https?://[^\s?#\"'<>]+)[?#][^\s\"'<>,]*")


def without_query(text: str | None) -> str | None:
    """``text`` with the query of every URL in it dropped: a SAS token is a query (``?sv=...&sig=...``)."""
    return None if text is None else _QUERY.sub(r"\1", text)


def conversion_rows(conversions: Iterable[Any], limit: int = RECENT_CONVERSIONS) -> list[dict[str, Any]]:
    """The newest conversions, by creation time as the service wrote it; no SAS is ever shown.

    Each row: id, status, created, output asset and error, every URL without its query.

    :param conversions: ``ConversionProperties`` from the hook's ``list_conversions``.
    """
    ordered = sorted(conversions, key=lambda c: c.creation_time or "", reverse=True)[:limit]
    return [
        {
            "conversion_id": c.conversion_id,
            "status": c.status.value,
            "created": c.creation_time,
            "output_asset": without_query(c.output_asset_uri),
            "error": without_query(c.error_message),
        }
        for c in ordered
    ]


def records_for(records: Iterable[OwnershipRecord], conn_id: str, account_id: str) -> list[OwnershipRecord]:
    """The records of one connection's account: made through it, or through another connection to it."""
    return [r for r in records if r.arr_conn_id == conn_id or (r.account_id and r.account_id == account_id)]


def cost(
    seconds: float | None, size: str | None, prices: Mapping[str, float] | None, digits: int | None = 4
) -> float | None:
    """``seconds`` of a session of ``size`` at the hourly price; ``None`` without a price for that size.

    Rounded to ``digits`` decimals for display; a total adds the unrounded costs (``digits=None``), so
    that it is the total's cost, not a sum of rounding errors.
    """
    if seconds is None or prices is None or size is None or size.lower() not in prices:
        return None
    value = seconds / 3600 * prices[size.lower()]
    return value if digits is None else round(value, digits)


@dataclass(frozen=True)
class Links:
    """Same-site URLs of Airflow's UI and of this view, under ``[api] base_url``'s path.

    :param base: that path without a trailing slash (``""`` at the root).
    :param prefix: where the view's app is mounted (``/arr``).
    """

    base: str
    prefix: str

    def run(self, owner: Owner) -> str:
        return f"{self.base}/dags/{quote(owner.dag_id, safe='')}/runs/{quote(owner.run_id, safe='')}"

    def dag(self, owner: Owner) -> str:
        return f"{self.base}/dags/{quote(owner.dag_id, safe='')}"

    def task(self, owner: Owner) -> str:
        mapped = f"/mapped/{owner.map_index}" if owner.map_index >= 0 else ""
        return f"{self.run(owner)}/tasks/{quote(owner.task_id, safe='')}{mapped}"

    def test(self, conn_id: str) -> str:
        return f"{self.base}{self.prefix}/connections/{quote(conn_id, safe='')}/test"

    def action(self, conn_id: str, session_id: str, action: str) -> str:
        return (
            f"{self.base}{self.prefix}/connections/{quote(conn_id, safe='')}/sessions/"
            f"{quote(session_id, safe='')}/{action}"
        )


def ready_at(record: OwnershipRecord | None, session_id: str) -> datetime | None:
    """When a task first saw the session Ready, from its record (``None`` if unknown or damaged)."""
    entry = None if record is None else record.sessions.get(session_id)
    text = entry.get("ready_at") if isinstance(entry, Mapping) else None
    if not text:
        return None
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # written by hand: read as UTC, as we write


def now_utc() -> datetime:
    """The time now, in UTC."""
    return datetime.now(UTC)


def billed_so_far(
    session: SessionProperties, record: OwnershipRecord | None, now: datetime
) -> tuple[float, str, datetime | None]:
    """Billed seconds so far, where they count from (``"ready"`` or ``"start"``), and the Ready time."""
    since = ready_at(record, session.session_id)
    if since is not None:
        return max(0.0, (now - since).total_seconds()), "ready", since
    return session.elapsed_time.total_seconds(), "start", None


def owner_view(
    record: OwnershipRecord, session_id: str, run_states: Mapping[tuple[str, str], str], links: Links
) -> dict[str, Any]:
    """The owner of a session: DAG, run and task with links, the try that recorded it, the run's state."""
    owner = record.owner
    entry = record.sessions.get(session_id) or {}
    return {
        "dag_id": owner.dag_id,
        "run_id": owner.run_id,
        "task_id": owner.task_id,
        "map_index": owner.map_index,
        "try": entry.get("try") if isinstance(entry, Mapping) else None,
        "run_state": run_states.get((owner.dag_id, owner.run_id)),
        "links": {"dag": links.dag(owner), "run": links.run(owner), "task": links.task(owner)},
    }


def session_view(
    found: Attribution,
    conn_id: str,
    now: datetime,
    prices: Mapping[str, float] | None,
    run_states: Mapping[tuple[str, str], str],
    links: Links,
    can_act: bool,
) -> dict[str, Any]:
    """One row of the account view (see the module's docstring for the figures).

    :param found: the session and the janitor's attribution of it.
    :param now: the time the figures are taken at (UTC).
    :param prices: the connection's prices, or ``None``.
    :param run_states: the states of the owners' runs, by ``(dag_id, run_id)``.
    :param can_act: whether the user may stop or extend it (the app asks the auth manager).
    """
    session = found.session
    record = found.record if found.owner is not None else None
    billed, billed_from, since = billed_so_far(session, record, now)
    lease_left = max(session.max_lease_time - session.elapsed_time, timedelta(0))
    stopped_by, _ = ui_stop(found.record, session.session_id)
    return {
        "session_id": session.session_id,
        "size": session.size,
        "status": session.status.value,
        "ready_since": since.isoformat(timespec="seconds") if since else None,
        "billed_seconds": round(billed, 1),
        "billed_from": billed_from,
        "elapsed_seconds": session.elapsed_time.total_seconds(),
        "lease_left_seconds": lease_left.total_seconds(),
        "hostname": session.hostname,
        "inspector_url": session.arr_inspector_url,
        "owner": None if record is None else owner_view(record, session.session_id, run_states, links),
        "verdict": found.category,
        "verdict_label": LABELS[found.category],
        "reason": found.reason,
        "stopped_from_ui_by": stopped_by,
        "cost": cost(billed, session.size, prices),
        "actions": (
            {
                "stop": links.action(conn_id, session.session_id, "stop"),
                "extend": links.action(conn_id, session.session_id, "extend"),
            }
            if can_act and session.status.value in ("Starting", "Ready")
            else {}
        ),
    }


def account_section(
    conn_id: str,
    api_version: str,
    rows: list[dict[str, Any]],
    prices: Mapping[str, float] | None,
    price_error: str | None = None,
) -> dict[str, Any]:
    """One connection's section: its sessions, their billed time, and the total cost where priced."""
    priced = prices is not None
    exact = (cost(row["billed_seconds"], row["size"], prices, digits=None) for row in rows)
    costs = [value for value in exact if value is not None]
    return {
        "conn_id": conn_id,
        "api_version": api_version,
        "error": None,
        "priced": priced,
        "prices": dict(prices) if prices else None,
        "price_error": price_error,
        "sessions": rows,
        "total_billed_seconds": round(sum(row["billed_seconds"] for row in rows), 1),
        "total_cost": round(sum(costs), 4) if priced else None,
        "unpriced_sessions": sum(1 for row in rows if row["cost"] is None) if priced else None,
        "conversions": None,
        "conversions_note": None,
    }


def failed_section(conn_id: str, error: str) -> dict[str, Any]:
    """A connection whose sessions could not be listed: the error, and no figures."""
    return {**account_section(conn_id, "", [], None), "error": error}


def can_see(found: Attribution, may_read_connection: bool, may_read_dag: Callable[[str], bool]) -> bool:
    """A user sees every session of a connection they may read, else the sessions of DAGs they may read."""
    if may_read_connection:
        return True
    owner = found.owner
    return owner is not None and may_read_dag(owner.dag_id)
