"""The stop teardown's work and the mapped sensor's session: by map index, on positive evidence only.

See the rules in :mod:`airflow_provider_arr.ownership`. A teardown stops the session it was given and
every session its create task instance recorded, once that create's try is known to be over. Mapped,
each stop index handles the create's record of its own map index (the highest one also those of create
indexes beyond the stop's count); a session given by position that another index's record names is left
to that index's stop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_arr._compat import AirflowException, AirflowFailException
from airflow_provider_arr.ownership import evidence
from airflow_provider_arr.ownership.indexes import (
    CreateIndexes,
    create_indexes,
    instance_count,
    map_index_of,
    record_naming,
)
from airflow_provider_arr.ownership.records import Owner, OwnershipRecord, load
from airflow_provider_arr.ownership.rules import ENDED, billed_time, note_ui_stop, stop_recorded

if TYPE_CHECKING:
    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
    from airflow_provider_arr.models import BilledTime


@dataclass
class _Plan:
    """The create records one stop task instance handles, read; and what could not be read."""

    records: dict[int, OwnershipRecord | None] = field(default_factory=dict)
    unreadable: dict[int, str] = field(default_factory=dict)
    indexes: CreateIndexes | None = None
    #: Sessions that the records of the create's other map indexes name.
    claimed: set[str] = field(default_factory=set)

    def holding(self, session_id: str) -> int | None:
        """The handled index whose record names ``session_id``."""
        for index, record in self.records.items():
            if record is not None and session_id in record.sessions:
                return index
        return None


def stop_as_teardown(
    hook: RemoteRenderingHook,
    log: Any,
    ti: Any,
    session_id: str | None,
    create_task_id: str | None,
) -> str:
    """The stop operator's work: the session given, then what its create task instance(s) recorded.

    Logs and pushes (XCom ``billed_time``) the billed time of the session stopped. Returns ``"Stopped"``,
    the status of a session that had already ended, or ``"NotFound"`` (see the stop operator).

    :raises AirflowException: after the stops, when a record or the create's state could not be read:
        what they hold was kept, and the stop's next try (or the janitor) decides.
    """
    if ti is None or create_task_id is None:  # outside Airflow, or no create known: the session given only
        return "NotFound" if session_id is None else hook.end_session(session_id).outcome
    plan = _plan(ti, create_task_id)
    indexes = plan.indexes
    assert indexes is not None
    outcome, billed = "NotFound", None
    if session_id is not None:
        holder = plan.holding(session_id)
        other = None if holder is not None else record_naming(ti, indexes, session_id, set(plan.records))
        verdict = None if holder is None else _try_over(holder, indexes, ti)
        if other is not None:
            log.warning(
                "Session %s is the session of %s[%d], given to this index by position (Airflow expands "
                "mapped values by position, and an earlier index pushed none): the stop of index %d stops it",
                session_id,
                create_task_id,
                other[0],
                other[0],
            )
        elif verdict is not None and not verdict.finished:
            log.warning("Session %s is kept: its create task instance %s", session_id, verdict.reason)
        else:
            result = hook.end_session(session_id)
            outcome = result.outcome
            record = None if holder is None else plan.records[holder]
            note_ui_stop(record, session_id, log)
            billed = billed_time(record, session_id, result.stopped_at)
            if billed is not None:
                log.info("%s", billed.describe())
            if record is not None and outcome in ENDED:
                record.forget(session_id)
    kept, recorded = _stop_records(hook, log, ti, plan)
    if session_id is None and recorded[0]:
        outcome = list(recorded[0].values())[-1]
    billed = billed or (recorded[1][-1] if recorded[1] else None)
    if billed is not None:
        # The connection too: the operations view prices the run's sessions by it.
        ti.xcom_push(key="billed_time", value={**billed.to_dict(), "arr_conn_id": hook.arr_conn_id})
    problems = [
        f"the record of {create_task_id}[{i}] cannot be read ({why})" for i, why in plan.unreadable.items()
    ]
    if indexes.error is not None:
        problems.append(f"the states of {create_task_id} cannot be read ({indexes.error})")
    if problems or kept:
        raise AirflowException(
            "; ".join(problems + kept)
            + ": the sessions it holds were kept, not stopped; the stop's next try or the session janitor "
            "decides"
        )
    return outcome


def own_session(ti: Any, create_task_id: str | None, given: str, log: Any) -> str:
    """The session a mapped sensor waits for: its own create index's, whatever position gave it.

    The value given is used when the create's record of this index names it, or when no create record
    names it at all (not a create's output). When another index's record names it, this index's record
    must hold one session, which is used instead.

    :raises AirflowFailException: the value given is another index's session and this index's create
        recorded none (it failed before the service started one) or several.
    """
    index = map_index_of(ti)
    if ti is None or create_task_id is None or index < 0:
        return given
    try:
        record = load(Owner.of(ti, create_task_id))
    except Exception as error:
        log.warning("The record of %s[%d] cannot be read (%s)", create_task_id, index, type(error).__name__)
        return given
    if record is not None and given in record.sessions:
        return given
    other = record_naming(ti, create_indexes(ti, create_task_id), given, {index})
    if other is None:
        return given
    mine = [] if record is None else list(record.sessions)
    if len(mine) == 1:
        log.warning(
            "Session %s is the session of %s[%d], given to index %d by position (an earlier create index "
            "pushed no value); waiting for this index's own session %s instead",
            given,
            create_task_id,
            other[0],
            index,
            mine[0],
        )
        return mine[0]
    raise AirflowFailException(
        f"session_id: {given} is the session of {create_task_id}[{other[0]}], given to index {index} by "
        f"position (Airflow expands mapped values by position, and an earlier index pushed none); "
        f"{create_task_id}[{index}] recorded {len(mine) or 'no'} session{'s' if len(mine) != 1 else ''}, so "
        "this index has no session of its own to wait for"
    )


def _plan(ti: Any, create_task_id: str) -> _Plan:
    """Which create records this stop handles (rule 2), read."""
    indexes = create_indexes(ti, create_task_id)
    index = map_index_of(ti)
    if index < 0:  # not mapped: the create's unmapped record, or every index of a mapped create
        handled = indexes.mapped or [-1]
    else:
        handled = [index]
        count = instance_count(ti)
        if count is not None and index == count - 1:  # the highest index: creates with no stop of their own
            handled += [i for i in indexes.mapped if i >= count]
    plan = _Plan(indexes=indexes)
    for i in handled:
        try:
            plan.records[i] = load(Owner(ti.dag_id, ti.run_id, create_task_id, i))
        except Exception as error:  # a damaged Variable: keep what it holds, never guess
            plan.unreadable[i] = type(error).__name__
    if any(record is not None and record.pending is not None for record in plan.records.values()):
        for i in indexes.mapped:  # a pending v1 create is told apart from its siblings by their records
            if i not in handled:
                try:
                    sibling = load(Owner(ti.dag_id, ti.run_id, create_task_id, i))
                except Exception:
                    continue
                plan.claimed |= set(sibling.sessions) if sibling is not None else set()
    return plan


def _try_over(index: int, indexes: CreateIndexes, ti: Any) -> evidence.Verdict:
    """Whether the create try that recorded a session is over (outside a task runner: taken as over)."""
    if not indexes.attached:
        return evidence.Verdict("finished", "not under a task runner: the caller ran the create first")
    return evidence.try_over(Owner(ti.dag_id, ti.run_id, indexes.task_id, index), indexes.states)


def _stop_records(
    hook: RemoteRenderingHook, log: Any, ti: Any, plan: _Plan
) -> tuple[list[str], tuple[dict[str, str], list[BilledTime]]]:
    """Stop what each handled record holds whose create try is over; say which were kept and why."""
    assert plan.indexes is not None
    kept: list[str] = []
    outcomes: dict[str, str] = {}
    billed: list[BilledTime] = []
    for index, record in plan.records.items():
        if record is None:
            if index == map_index_of(ti) or index < 0:
                log.info("Task %s[%d] recorded no session; nothing to stop", plan.indexes.task_id, index)
            continue
        verdict = _try_over(index, plan.indexes, ti)
        if not verdict.finished:
            log.warning(
                "The sessions recorded for %s (%s) are kept: %s",
                record.owner,
                ", ".join(record.sessions),
                verdict.reason,
            )
            if verdict.kind == "unknown":
                kept.append(f"{record.owner}: {verdict.reason}")
            continue
        others = plan.claimed | {
            sid
            for other in plan.records.values()
            if other is not None and other is not record
            for sid in other.sessions
        }
        done, times = stop_recorded(hook, record, log, others)
        if done:
            log.info(
                "Sessions recorded for %s: %s", record.owner, ", ".join(f"{k} {v}" for k, v in done.items())
            )
        outcomes.update(done)
        billed += times
    return kept, (outcomes, billed)
