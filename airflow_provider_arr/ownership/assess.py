"""Whose is each live session, and may it be stopped: the janitor's attribution, written once.

The session janitor acts on it; the operations view of the UI plugin shows it. Both take the verdict on
each record's owner from :func:`airflow_provider_arr.ownership.evidence.owner_verdict` (through the Task
SDK in a task, through the metadata database on the API server), so a session is called orphaned only on
positive evidence (rule 1 of :mod:`airflow_provider_arr.ownership`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from airflow_provider_arr.models import SessionProperties
from airflow_provider_arr.ownership.evidence import Verdict
from airflow_provider_arr.ownership.records import Owner, OwnershipRecord

#: ``owned``: its owner may still use it; ``orphaned``: its owner is known to be done with it (the janitor
#: stops it); ``undecided``: what Airflow says about its owner could not be read or is not understood (kept
#: until the next sweep); ``unattributed``: no record names it, or its owner's DAG run no longer exists.
Category = Literal["owned", "orphaned", "undecided", "unattributed"]

#: Unattributed, because no record names the session.
NO_OWNER = "no task owns it"


@dataclass(frozen=True)
class Attribution:
    """One live session, the record that names it (if any), and what may be done with it.

    :param session: the session as listed.
    :param category: see :data:`Category`.
    :param reason: the verdict's reason (``"belongs to a DAG run that is success"``) or why nothing owns it.
    :param record: the ownership record that names it (also for a gone owner); ``None`` if none does.
    """

    session: SessionProperties
    category: Category
    reason: str
    record: OwnershipRecord | None = None

    @property
    def owner(self) -> Owner | None:
        """The create task instance that recorded the session, if it is attributed to one."""
        return None if self.record is None or self.category == "unattributed" else self.record.owner


def attribute(
    listed: Iterable[SessionProperties],
    records: Iterable[OwnershipRecord],
    verdicts: Mapping[Owner, Verdict],
) -> list[Attribution]:
    """Attribute every active listed session (Starting, Ready, Stopping), in the order listed.

    A record's session that is not listed, or has ended, is left out (the janitor forgets it). A
    session of an owner whose run is gone is unattributed, with that owner named in the reason.

    :param listed: one account's sessions, from one list call.
    :param records: the ownership records of that account.
    :param verdicts: the verdict on each record's owner; a missing one counts as ``unknown`` (kept).
    """
    named: dict[str, tuple[OwnershipRecord, Verdict]] = {}
    for record in records:
        verdict = verdicts.get(record.owner) or Verdict("unknown", "its owner was not asked about")
        for session_id in record.sessions:
            named.setdefault(session_id, (record, verdict))
    found: list[Attribution] = []
    for session in listed:
        if not session.status.is_active:
            continue
        hit = named.get(session.session_id)
        if hit is None:
            found.append(Attribution(session, "unattributed", NO_OWNER))
            continue
        record, verdict = hit
        if verdict.kind == "gone":
            found.append(
                Attribution(session, "unattributed", f"its owner {record.owner}: {verdict.reason}", record)
            )
        elif verdict.finished:
            found.append(Attribution(session, "orphaned", verdict.reason, record))
        elif verdict.kind == "unknown":
            found.append(Attribution(session, "undecided", verdict.reason, record))
        else:
            found.append(Attribution(session, "owned", verdict.reason, record))
    return found
