"""What the create operator, the stop teardown and the janitor do with ownership records.

Every function takes the hook and a logger, reads or writes one :class:`OwnershipRecord`, and never
leaves two sessions alive for one task instance. See :mod:`airflow_provider_arr.ownership`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from airflow_provider_arr import ownership
from airflow_provider_arr.exceptions import RemoteRenderingSessionNotFoundError
from airflow_provider_arr.models import BilledTime, SessionProperties, SessionStatus

if TYPE_CHECKING:
    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
    from airflow_provider_arr.operators.remote_rendering import RemoteRenderingStopSessionOperator
    from airflow_provider_arr.ownership import OwnershipRecord

#: Outcomes of a stop after which the session no longer needs to be in a record.
ENDED = frozenset({"Stopped", "Expired", "Error", "NotFound"})


def resolve_pending(
    hook: RemoteRenderingHook,
    record: OwnershipRecord,
    log: Any,
    listed: Iterable[SessionProperties] | None = None,
) -> None:
    """
    Settle a v1 create whose answer never reached its try: find the session it started, if any.

    The record holds the request and the account's sessions just before it was sent; the session it
    started is the one new session with that lease and size. Several candidates cannot be told apart:
    they are named in the log and left to the janitor's report, never stopped on a guess.

    :param listed: the account's sessions, if the caller has just listed them (else they are listed).
    """
    pending = record.pending
    if pending is None:
        return
    found = pending.matching(hook.list_sessions() if listed is None else listed, record.sessions)
    if len(found) == 1:
        record.add(found[0].session_id, pending.try_number)
        log.warning(
            "Session %s was started by try %d of %s, whose create did not finish (its answer was lost or its "
            "process died): it is recorded as this task's",
            found[0].session_id,
            pending.try_number,
            record.owner,
        )
    elif found:
        log.error(
            "Try %d of %s sent a create that did not finish, and %d matching new sessions exist (%s): which "
            "one it started cannot be told, so none is stopped; the session janitor reports them",
            pending.try_number,
            record.owner,
            len(found),
            ", ".join(session.session_id for session in found),
        )
    else:
        log.info("The unfinished create of try %d started no session", pending.try_number)
    record.pending = None
    ownership.save(record)


def reconcile(hook: RemoteRenderingHook, record: OwnershipRecord, size: str, log: Any) -> str | None:
    """
    Before a create: keep one active session of this task instance to reconnect to, stop the others.

    :return: the session to reconnect to (Starting or Ready, of the size asked for), or ``None``.
    """
    resolve_pending(hook, record, log)
    keep: str | None = None
    for session_id, entry in list(record.sessions.items()):
        try:
            properties = hook.get_session(session_id)
        except RemoteRenderingSessionNotFoundError:
            record.forget(session_id)
            continue
        status = properties.status
        if status.is_terminal:
            record.forget(session_id)
            continue
        if status == SessionStatus.STOPPING or session_id in record.kill_stopped:
            continue  # ending (a killed wait of an earlier try stops it): not ours to reuse
        same_size = properties.size is None or properties.size.lower() == size.lower()
        if keep is None and same_size:
            keep = session_id
            log.info(
                "Session %s, started by try %s of this task, is %s: reconnecting to it",
                session_id,
                entry.get("try", "?"),
                status.value,
            )
            continue
        log.warning(
            "Stopping session %s, started by try %s of this task: one session per task instance",
            session_id,
            entry.get("try", "?"),
        )
        if hook.stop_session_if_active(session_id) in ENDED:
            record.forget(session_id)
    ownership.save(record)
    return keep


def stop_recorded(
    hook: RemoteRenderingHook, record: OwnershipRecord, log: Any
) -> tuple[dict[str, str], list[BilledTime]]:
    """Stop every session a record holds (after settling a pending v1 create).

    :return: each session's outcome, and the billed time of each one stopped here that was Ready.
    """
    resolve_pending(hook, record, log)
    outcomes: dict[str, str] = {}
    billed_times: list[BilledTime] = []
    for session_id in list(record.sessions):
        result = hook.end_session(session_id)
        outcomes[session_id] = result.outcome
        billed = billed_time(record, session_id, result.stopped_at)
        if billed is not None:
            log.info("%s", billed.describe())
            billed_times.append(billed)
        if result.outcome in ENDED:
            record.forget(session_id)
    ownership.save(record)
    return outcomes, billed_times


def create_task_of(task: Any) -> str | None:
    """The task id of the one create operator directly upstream of ``task``, if there is exactly one.

    How a mapped sensor or stop (``.expand(session_id=create.output)``), whose ``session_id`` is a plain
    string by the time it runs, finds the create task instance whose record holds its session.
    """
    from airflow_provider_arr.operators.remote_rendering import RemoteRenderingCreateSessionOperator

    try:
        upstream_tasks = list(task.upstream_list)
    except (AttributeError, RuntimeError):  # not in a DAG (an operator run on its own, in a test)
        return None
    found = []
    for upstream in upstream_tasks:
        cls = getattr(upstream, "operator_class", None) or type(upstream)  # a MappedOperator names its class
        if isinstance(cls, type) and issubclass(cls, RemoteRenderingCreateSessionOperator):
            found.append(upstream.task_id)
    return found[0] if len(found) == 1 else None


def note_ready(ti: Any, create_task_id: str | None, session_id: str, seen_at: float, log: Any) -> None:
    """Write in the create task instance's record when ``session_id`` was first seen Ready (best effort).

    The stop teardown reads it to log and push the session's billed time. Nothing is written when the
    session is not in that record (not ours) or already has a time; a failure is logged, never raised.

    :param seen_at: when the Ready answer was read (UNIX time).
    """
    if create_task_id is None or ti is None:
        return
    try:
        record = ownership.load(ownership.Owner.of(ti, create_task_id))
        entry = None if record is None else record.sessions.get(session_id)
        if record is None or entry is None or "ready_at" in entry:
            return
        entry["ready_at"] = datetime.fromtimestamp(seen_at, UTC).isoformat(timespec="seconds")
        ownership.save(record)
    except Exception as error:  # the billed-time figure must never fail a wait that succeeded
        log.warning("Could not note when session %s became Ready (%s)", session_id, error)


def billed_time(
    record: OwnershipRecord | None, session_id: str, stopped_at: datetime | None
) -> BilledTime | None:
    """The session's billed time, if the record knows when it was Ready and it was stopped just now.

    A damaged entry gives no figure, never an error: the stop it reports on has already happened.
    """
    entry = None if record is None else record.sessions.get(session_id)
    if stopped_at is None or not isinstance(entry, Mapping) or not entry.get("ready_at"):
        return None
    try:
        ready_at = datetime.fromisoformat(str(entry["ready_at"]))
    except ValueError:
        return None
    if ready_at.tzinfo is None:  # written by hand or by something else: read it as UTC, as we write it
        ready_at = ready_at.replace(tzinfo=UTC)
    return BilledTime(session_id, ready_at, stopped_at)


def stop_as_teardown(operator: RemoteRenderingStopSessionOperator, ti: Any, session_id: str | None) -> str:
    """The stop operator's work: the session given first, then what its create task recorded.

    Logs and pushes (XCom ``billed_time``) the billed time of the session stopped; returns the
    outcome the operator documents. A record that cannot be read fails the task, after the stop.
    """
    hook, log = operator.hook, operator.log
    owner, record, unreadable = _teardown_record(operator, ti, session_id)
    outcome = "NotFound"
    billed = None
    if session_id is not None:  # first, whatever the record says: this is the session we were given
        result = hook.end_session(session_id)
        outcome = result.outcome
        billed = billed_time(record, session_id, result.stopped_at)
        if billed is not None:
            log.info("%s", billed.describe())
    if unreadable is not None:
        raise AirflowException(
            f"The ownership record of {owner} cannot be read ({unreadable}): the sessions it holds "
            "were not stopped; the session janitor reports unattributed sessions"
        ) from None
    if owner is not None and record is None and session_id is None:
        log.info("Task %s recorded no session; nothing to stop", owner)
    if owner is not None and record is not None:
        if session_id is not None and outcome in ENDED:
            record.forget(session_id)
        outcomes, recorded_billed = stop_recorded(hook, record, log)
        if outcomes:
            log.info(
                "Sessions recorded for %s: %s", owner, ", ".join(f"{k} {v}" for k, v in outcomes.items())
            )
        if session_id is None and outcomes:
            outcome = list(outcomes.values())[-1]
        billed = billed or (recorded_billed[-1] if recorded_billed else None)
    if billed is not None and ti is not None:
        ti.xcom_push(key="billed_time", value=billed.to_dict())
    return outcome


def _teardown_record(
    operator: RemoteRenderingStopSessionOperator, ti: Any, session_id: str | None
) -> tuple[ownership.Owner | None, OwnershipRecord | None, Exception | None]:
    """The create task instance whose record the stop uses, its record, and why it could not be read.

    Named by ``create_task_id`` (or ``session_id=create.output``); for a mapped stop, whose
    ``session_id`` was a plain string by the time it ran, the one create task upstream, if its record
    holds ``session_id``. A record that cannot be read is returned as the error, so that the session
    given is still stopped first.
    """
    create_task_id, derived = operator.create_task_id, False
    if ti is None:  # run outside Airflow (a unit test): no task instance, no record
        return None, None, None
    if create_task_id is None and getattr(ti, "map_index", -1) >= 0:
        create_task_id, derived = create_task_of(operator), True
    if create_task_id is None:
        return None, None, None
    owner = ownership.Owner.of(ti, create_task_id)
    try:
        record = ownership.load(owner)
    except Exception as error:  # a damaged Variable must not keep the given session running
        return owner, None, error
    if derived and (record is None or session_id not in record.sessions):
        return None, None, None  # that create did not record this session: not this stop's record
    return owner, record, None
