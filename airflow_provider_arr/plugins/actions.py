"""Stop and Extend lease from the operations view: authorised, audited, noted in the ownership record.

Each action reads the session and the janitor's attribution of it again (never what a page showed),
asks the auth manager (:class:`~airflow_provider_arr.plugins.access.Access`), acts through the hook, and
writes Airflow's audit log with the user's name. A stop of a recorded session is noted in its record, so
the stop teardown and the janitor report it instead of failing on a session that is already gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_arr.exceptions import RemoteRenderingError
from airflow_provider_arr.models import ArrInputError, format_timespan, parse_timespan
from airflow_provider_arr.ownership.assess import Attribution
from airflow_provider_arr.plugins import airflow_db
from airflow_provider_arr.plugins.gather import db_session, find_session
from airflow_provider_arr.plugins.views import LABELS, billed_so_far, now_utc

if TYPE_CHECKING:
    from airflow_provider_arr.plugins.access import Access

ACTIONS = ("stop", "extend")


class Refused(Exception):
    """The action is not allowed or not possible; ``status`` is the HTTP status to answer with.

    :param status: 403 (not authorised), 404 (no such connection or session), 409 (the session has
        ended), 400 (bad input; the message names the field), 502 (the service failed; its error).
    :param message: what to show.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Target:
    """The session an action is about, as read just now, and what the confirmation shows."""

    conn_id: str
    found: Attribution

    def summary(self) -> dict[str, Any]:
        """Session, owner, billed time, verdict: what the confirmation names."""
        session, owner = self.found.session, self.found.owner
        seconds, billed_from, _ = billed_so_far(session, self.found.record if owner else None, now_utc())
        return {
            "conn_id": self.conn_id,
            "session_id": session.session_id,
            "status": session.status.value,
            "size": session.size,
            "owner": None if owner is None else str(owner),
            "owner_dag_id": None if owner is None else owner.dag_id,
            "verdict": self.found.category,
            "verdict_label": LABELS[self.found.category],
            "reason": self.found.reason,
            "billed_seconds": round(seconds, 1),
            "billed_from": billed_from,
            "max_lease_time": format_timespan(session.max_lease_time),
            "elapsed": format_timespan(session.elapsed_time),
        }


def target(access: Access, conn_id: str, session_id: str, action: str) -> Target:
    """The session ``action`` would act on, if this user may act on it.

    :raises Refused: 404 for an unknown action, connection or session; 409 when the session has ended;
        403 when the auth manager does not give the user the right (see :mod:`.access`).
    """
    if action not in ACTIONS:
        raise Refused(404, f"action: must be one of {', '.join(ACTIONS)}, got {action!r}")
    try:
        found, status = find_session(access, conn_id, session_id)
    except LookupError as error:
        raise Refused(404, str(error)) from None
    except RemoteRenderingError as error:
        raise Refused(502, f"The service could not be asked about session {session_id}: {error}") from None
    if found is None:
        raise Refused(409, f"Session {session_id} is {status}: there is nothing to {action}")
    if not access.may_act(found, conn_id):
        what = (
            f"edit rights on the runs of DAG {found.owner.dag_id!r}"
            if found.owner is not None
            else f"edit rights on the connection {conn_id!r}"
        )
        raise Refused(403, f"Forbidden: to {action} session {session_id} you need {what}")
    if action == "extend" and found.session.status.value not in ("Starting", "Ready"):
        raise Refused(409, f"Session {session_id} is {status}: its lease cannot be extended")
    return Target(conn_id, found)


def stop(access: Access, conn_id: str, session_id: str) -> dict[str, Any]:
    """Stop a session (see the module's docstring); returns what was done, for the page and the API."""
    chosen = target(access, conn_id, session_id, "stop")
    summary = chosen.summary()
    try:
        with airflow_db.ServerHook(conn_id) as hook:
            result = hook.end_session(session_id)
    except RemoteRenderingError as error:  # nothing was noted or audited: the session may still run
        raise Refused(502, f"The service did not stop session {session_id}: {error}") from None
    at = result.stopped_at or now_utc()
    owner, record = chosen.found.owner, chosen.found.record
    with db_session() as db:
        noted = record is not None and airflow_db.note_stop(db, record.owner, session_id, access.name, at)
        airflow_db.audit(
            db,
            "arr_session_stop",
            access.name,
            owner,
            {
                "arr_conn_id": conn_id,
                "session_id": session_id,
                "outcome": result.outcome,
                "billed_seconds": summary["billed_seconds"],
                "verdict": chosen.found.category,
            },
        )
    return {**summary, "action": "stop", "outcome": result.outcome, "by": access.name, "noted": noted}


#: Airflow's own answer when ``[core] test_connection`` is not ``Enabled`` (its test route's words).
TEST_DISABLED = (
    "Testing connections is disabled in Airflow configuration. Contact your deployment admin to enable it."
)


def testing_enabled() -> bool:
    """Whether ``[core] test_connection`` is ``Enabled`` (Airflow's default is ``Disabled``)."""
    from airflow.configuration import conf

    return str(conf.get("core", "test_connection", fallback="Disabled")).strip().lower() == "enabled"


def test_connection(access: Access, conn_id: str) -> dict[str, Any]:
    """Test a saved ARR connection, as Airflow's Test button would if it worked on 3.3.2 (issue 20).

    Airflow 3.3.2's Test icon refuses every connection saved without a port; this tests the stored
    connection by its id with the hook's own ``test_connection`` (each call tried once, short timeouts),
    under the same rules as Airflow's route: ``[core] test_connection = Enabled`` and ``POST`` rights on
    the connection. The answer is the hook's message (it names the field to fix, never a secret).

    :raises Refused: 403 when testing is disabled or the user may not; 404 for an unknown connection.
    """
    if not testing_enabled():
        raise Refused(403, TEST_DISABLED)
    if not access.may_test(conn_id):
        raise Refused(403, f"Forbidden: to test the connection {conn_id!r} you need edit rights on it")
    with db_session() as db:
        if conn_id not in airflow_db.arr_connection_ids(db):
            raise Refused(404, f"arr_conn_id: {conn_id!r} is not an Azure Remote Rendering connection")
    with airflow_db.ServerHook(conn_id) as hook:
        passed, message = hook.test_connection()
    with db_session() as db:
        airflow_db.audit(
            db, "arr_connection_test", access.name, None, {"arr_conn_id": conn_id, "status": passed}
        )
    return {"conn_id": conn_id, "action": "test", "status": passed, "message": message, "by": access.name}


def stop_or_refuse(access: Access, conn_id: str, session_id: str, action: str) -> dict[str, Any]:
    """:func:`stop` for ``action == "stop"``; any other action is refused (404)."""
    if action != "stop":
        raise Refused(404, f"action: must be one of {', '.join(ACTIONS)}, got {action!r}")
    return stop(access, conn_id, session_id)


def extend(access: Access, conn_id: str, session_id: str, extend_by: Any) -> dict[str, Any]:
    """Extend a session's lease by ``extend_by`` (a TimeSpan such as ``"1:00:00"``).

    :raises Refused: 400 naming ``extend_by`` when it is not a positive TimeSpan, or when the new lease
        would pass the service's limit (the hook's message names ``max_lease_time``).
    """
    try:
        if not isinstance(extend_by, str) or not extend_by.strip():
            raise ArrInputError("extend_by", 'is required: a duration such as "1:00:00" (h:mm:ss)')
        by = parse_timespan(extend_by.strip(), "extend_by")
        if by <= timedelta(0):
            raise ArrInputError("extend_by", f"must be longer than zero, got {extend_by!r}")
    except ArrInputError as error:
        raise Refused(400, str(error)) from None
    chosen = target(access, conn_id, session_id, "extend")
    lease = chosen.found.session.max_lease_time + by
    try:
        with airflow_db.ServerHook(conn_id) as hook:
            hook.update_session(session_id, lease)
    except ArrInputError as error:
        raise Refused(400, str(error)) from None
    except RemoteRenderingError as error:
        raise Refused(502, f"The service did not extend session {session_id}: {error}") from None
    with db_session() as db:
        airflow_db.audit(
            db,
            "arr_session_extend",
            access.name,
            chosen.found.owner,
            {"arr_conn_id": conn_id, "session_id": session_id, "max_lease_time": format_timespan(lease)},
        )
    return {
        **chosen.summary(),
        "action": "extend",
        "outcome": f"lease now {format_timespan(lease)}",
        "by": access.name,
        "max_lease_time": format_timespan(lease),
    }
