"""The create operator's steps that touch ownership records, and the ids it gives sessions.

Kept apart from ``remote_rendering.py`` so that the operator classes stay short; nothing here is public
API except :func:`task_instance_session_id`, which ``remote_rendering`` re-exports.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import TYPE_CHECKING

from airflow_provider_arr._compat import AirflowFailException
from airflow_provider_arr.exceptions import (
    RemoteRenderingSessionMayExistError,
    RemoteRenderingSessionNotFoundError,
)
from airflow_provider_arr.models import ArrInputError, format_timespan

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_arr.operators.remote_rendering import RemoteRenderingCreateSessionOperator
    from airflow_provider_arr.ownership import OwnershipRecord

#: On 2021-01-01, how many ended sessions of a task's id may precede the one it creates.
MAX_ENDED_PREDECESSORS = 20
_NOT_IN_SESSION_IDS = re.compile(r"[^A-Za-z0-9_-]+")


def task_instance_session_id(context: Context) -> str:
    """
    A ``2021-01-01`` session id that is the same for every try of one task instance.

    Readable (dag id, task id, map index, run id, with characters the service refuses replaced) and
    unique (a hash of the exact values), within the service's 256 characters of ``[A-Za-z0-9_-]``.

    :param context: the task's context.
    """
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    if map_index is None:
        map_index = -1
    exact = "\x1f".join((ti.dag_id, ti.run_id, ti.task_id, str(map_index)))
    digest = hashlib.sha256(exact.encode()).hexdigest()[:16]
    readable = _NOT_IN_SESSION_IDS.sub("-", f"{ti.dag_id}-{ti.task_id}-{map_index}-{ti.run_id}").strip("-")
    return f"{readable[:200]}-{digest}"


def _numbered(base: str, number: int) -> str:
    suffix = f"-{number}"
    return base[: 256 - len(suffix)] + suffix


#: What a create asks for, checked: lease, size, models.
Asked = tuple[timedelta, str, list[str]]


def create_v1(
    op: RemoteRenderingCreateSessionOperator, record: OwnershipRecord, try_number: int, asked: Asked
) -> str:
    """v1: list the account, record the pending create, send it, record the id."""
    lease, size, models = asked
    from airflow_provider_arr import ownership

    before = {session.session_id for session in op.hook.list_sessions()}
    record.pending = ownership.pending_create(try_number, lease, size, before)
    ownership.save(record)
    op._creating = (lease, size)
    try:
        session_id = op.hook.create_session(lease, size, models, sessions_before=before)
    except RemoteRenderingSessionMayExistError:
        raise  # the pending record stays: the next try, the teardown or the janitor settles it
    except Exception:
        record.pending = None  # the service refused, or the call never left: nothing was started
        ownership.save(record)
        raise
    finally:
        op._creating = None
    record.add(session_id, try_number, size)
    record.pending = None
    ownership.save(record)
    op.log.info("Created %s session %s with a lease of %s", size, session_id, format_timespan(lease))
    return session_id


def create_or_reconnect(
    op: RemoteRenderingCreateSessionOperator,
    context: Context,
    record: OwnershipRecord,
    try_number: int,
    asked: Asked,
) -> str:
    """
    On ``2021-01-01``: create the session under a retry-stable id, or reconnect to it.

    A retry of this task finds the session its earlier try started (even if that try crashed
    before it could record the id) and reconnects, instead of starting a second billed VM.
    """
    lease, size, models = asked
    from airflow_provider_arr import ownership

    base = op._checked_session_id(op.session_id or task_instance_session_id(context))
    for attempt in range(MAX_ENDED_PREDECESSORS + 1):
        candidate = base if attempt == 0 else _numbered(base, attempt + 1)
        try:
            existing = op.hook.get_session(candidate)
        except RemoteRenderingSessionNotFoundError:
            record.add(candidate, try_number, size)  # recorded before the create is sent
            ownership.save(record)
            op._creating = candidate
            try:
                session_id = op.hook.create_session(lease, size, models, session_id=candidate)
            except ArrInputError as error:
                raise AirflowFailException(str(error)) from None
            finally:
                op._creating = None
            op.log.info("Created %s session %s with a lease of %s", size, session_id, format_timespan(lease))
            return session_id
        from airflow_provider_arr.models import SessionStatus

        ending = existing.status == SessionStatus.STOPPING or candidate in record.kill_stopped
        if existing.status.is_active and not ending:
            op.log.info(
                "Session %s (started by an earlier try of this task) is %s; reconnecting to it",
                candidate,
                existing.status.value,
            )
            record.add(candidate, try_number, existing.size or size)
            ownership.save(record)
            return candidate
        op.log.info(
            "Session %s has ended or is ending (%s); using a new id", candidate, existing.status.value
        )
    raise AirflowFailException(
        f"session_id: {MAX_ENDED_PREDECESSORS + 1} sessions named after {base!r} have already ended; "
        "pass a session_id of your own"
    )


def stop_in_flight_v1_create(
    op: RemoteRenderingCreateSessionOperator, requested: tuple[timedelta, str]
) -> None:
    """Find and stop the session a killed v1 create may have started (the one new matching session)."""
    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
    from airflow_provider_arr.models import new_matching_sessions

    before = op.hook.sessions_before_create
    if before is None:
        op.log.info("Killed before the create was sent; nothing to stop")
        return
    lease, size = requested
    with RemoteRenderingHook(arr_conn_id=op.arr_conn_id) as hook:
        try:
            new = [s.session_id for s in new_matching_sessions(before, hook.list_sessions(), lease, size)]
        except Exception:
            op.log.exception("Could not list the sessions to find the one the killed create started")
            return
    if len(new) == 1:
        op._stop_quietly(new[0], "the task was killed while creating it")
    elif new:
        op.log.error(
            "Killed while creating a session; %d matching new sessions exist (%s) and which one is this "
            "task's cannot be told: the session janitor reports them",
            len(new),
            ", ".join(new),
        )
    else:
        op.log.info("Killed while creating a session; no new session appeared, nothing to stop")
