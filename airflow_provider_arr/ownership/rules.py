"""What the create operator, the stop teardown, the sensor and the janitor do with ownership records.

Every function takes the hook and a logger, reads or writes one :class:`OwnershipRecord`, and never
leaves two sessions alive for one task instance. The rules are written in
:mod:`airflow_provider_arr.ownership`; the evidence they need is read by :mod:`.evidence`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_arr.exceptions import RemoteRenderingSessionNotFoundError
from airflow_provider_arr.models import BilledTime, SessionProperties, SessionStatus
from airflow_provider_arr.ownership import records as ownership

if TYPE_CHECKING:
    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
    from airflow_provider_arr.ownership.records import OwnershipRecord

#: The class attribute that marks an operator whose task instances record the sessions they create
#: (``RemoteRenderingCreateSessionOperator``): how this layer recognises one without importing it.
CREATES_SESSIONS = "records_arr_sessions"
#: Outcomes of a stop after which the session no longer needs to be in a record.
ENDED = frozenset({"Stopped", "Expired", "Error", "NotFound"})


def resolve_pending(
    hook: RemoteRenderingHook,
    record: OwnershipRecord,
    log: Any,
    listed: Iterable[SessionProperties] | None = None,
    claimed: Iterable[str] = (),
) -> None:
    """
    Settle a v1 create whose answer never reached its try: find the session it started, if any.

    The record holds the request and the account's sessions just before it was sent; the session it
    started is the one new session with that lease and size. Several candidates cannot be told apart:
    they are named in the log and left to the janitor's report, never stopped on a guess.

    :param listed: the account's sessions, if the caller has just listed them (else they are listed).
    :param claimed: sessions that other records name (the siblings of a mapped create, every record for
        the janitor): never this create's, so a fan-out's identical creates can still be told apart.
    """
    pending = record.pending
    if pending is None:
        return
    known = set(record.sessions) | set(claimed)
    found = pending.matching(hook.list_sessions() if listed is None else listed, known)
    if len(found) == 1:
        record.add(found[0].session_id, pending.try_number, pending.size)
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
                properties.status_text,
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
    hook: RemoteRenderingHook, record: OwnershipRecord, log: Any, claimed: Iterable[str] = ()
) -> tuple[dict[str, str], list[BilledTime]]:
    """Stop every session a record holds (after settling a pending v1 create).

    :param claimed: sessions other records name (see :func:`resolve_pending`).
    :return: each session's outcome, and the billed time of each one stopped here that was Ready.
    """
    resolve_pending(hook, record, log, claimed=claimed)
    outcomes: dict[str, str] = {}
    billed_times: list[BilledTime] = []
    for session_id in list(record.sessions):
        result = hook.end_session(session_id)
        outcomes[session_id] = result.outcome
        note_ui_stop(record, session_id, log)
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
    try:
        upstream_tasks = list(task.upstream_list)
    except (AttributeError, RuntimeError):  # not in a DAG (an operator run on its own, in a test)
        return None
    found = []
    for upstream in upstream_tasks:
        cls = getattr(upstream, "operator_class", None) or type(upstream)  # a MappedOperator names its class
        if isinstance(cls, type) and getattr(cls, CREATES_SESSIONS, False):
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
    if stopped_at is None:  # stopped before this call: by the operations view, if it noted so
        stopped_at = ui_stop(record, session_id)[1]
    if stopped_at is None or not isinstance(entry, Mapping) or not entry.get("ready_at"):
        return None
    try:
        ready_at = datetime.fromisoformat(str(entry["ready_at"]))
    except ValueError:
        return None
    if ready_at.tzinfo is None:  # written by hand or by something else: read it as UTC, as we write it
        ready_at = ready_at.replace(tzinfo=UTC)
    size = entry.get("size")
    return BilledTime(session_id, ready_at, stopped_at, str(size) if size else None)


def ui_stop(record: OwnershipRecord | None, session_id: str) -> tuple[str | None, datetime | None]:
    """Who stopped ``session_id`` from the operations view, and when (UTC); ``(None, None)`` if nobody did.

    A damaged note gives no time, never an error.
    """
    entry = None if record is None else record.sessions.get(session_id)
    note = entry.get(ownership.UI_STOP) if isinstance(entry, Mapping) else None
    if not isinstance(note, Mapping):
        return None, None
    try:
        at: datetime | None = datetime.fromisoformat(str(note.get("at")))
    except ValueError:
        at = None
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return str(note.get("by") or "?"), at


def note_ui_stop(record: OwnershipRecord | None, session_id: str, log: Any) -> None:
    """Log that ``session_id`` was stopped from the operations view, if it was (a stop, not a failure)."""
    user, at = ui_stop(record, session_id)
    if user is not None:
        log.info(
            "Session %s was stopped from the Remote Rendering view by %s at %s",
            session_id,
            user,
            "an unknown time" if at is None else f"{at:%H:%M:%S} UTC",
        )
