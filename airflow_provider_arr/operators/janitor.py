"""The session janitor: stop billed sessions whose owning task or run has finished.

The create operator records every session in a durable ownership record (see
:mod:`airflow_provider_arr.ownership`); the teardown stops what it recorded. When even the teardown
cannot run (its own process was killed on its last try, the run was marked failed before it ran, a
worker pool vanished), the janitor is the safety net: run it on a schedule (the example DAG
``arr_session_janitor`` runs every 10 minutes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_arr._compat import AirflowFailException
from airflow_provider_arr.models import ArrInputError, format_timespan, parse_timespan

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
    from airflow_provider_arr.models import SessionProperties
    from airflow_provider_arr.ownership import Owner, OwnershipRecord
    from airflow_provider_arr.ownership.evidence import Verdict


class RemoteRenderingSessionJanitorOperator(BaseOperator):
    """List each account's sessions and stop those whose owner has finished.

    A session's owner is the create task instance that recorded it. The owner has finished when Airflow
    says so: its DAG run is ``success`` or ``failed``, or the task instance failed for good (``failed``
    or ``upstream_failed``, no retry pending). A read of these that fails, or a state this code does not
    know, **keeps** the session (logged, decided on the next sweep): nothing is stopped without positive
    evidence. Sessions that no record attributes (started by hand, by another tool, by a v1 create whose
    candidates could not be told apart, or by a DAG run that was deleted) are **reported, not stopped**,
    unless ``max_unowned_age`` is set and they have run longer than that; otherwise their lease ends them.

    Every stop is logged with the session, its owner, how long it ran and the lease time it no longer
    bills. Returns a report (also the XCom): ``{"stopped": [...], "would_stop": [...], "kept": [...],
    "unattributed": [...]}``, each entry a dict with ``session_id``, ``arr_conn_id``, ``owner``,
    ``status``, ``elapsed`` and ``reason`` (the verdict on its owner).

    :param arr_conn_ids: the connection ids of the accounts to sweep. (templated)
    :param dry_run: only report what would be stopped. (templated; kept as ``only_report``, since
        ``BaseOperator`` has a ``dry_run`` method)
    :param max_unowned_age: stop unattributed sessions that have run longer than this (``timedelta`` or
        ``"2:0:0"``); ``None`` (default) never stops them. (templated)
    """

    template_fields: Sequence[str] = ("arr_conn_ids", "max_unowned_age", "only_report")

    def __init__(
        self,
        *,
        arr_conn_ids: Sequence[str] | str = ("arr_default",),
        dry_run: bool | str = False,
        max_unowned_age: timedelta | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.arr_conn_ids = arr_conn_ids
        self.only_report = dry_run
        self.max_unowned_age = max_unowned_age

    def execute(self, context: Context) -> dict[str, list[dict[str, Any]]]:
        from airflow_provider_arr import ownership
        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

        conn_ids = (
            [self.arr_conn_ids] if isinstance(self.arr_conn_ids, str) else list(self.arr_conn_ids or [])
        )
        if not conn_ids or not all(isinstance(conn_id, str) and conn_id for conn_id in conn_ids):
            raise AirflowFailException(
                f"arr_conn_ids: must be a list of connection ids, got {self.arr_conn_ids!r}"
            )
        max_age = _max_age(self.max_unowned_age)
        if isinstance(self.only_report, str):  # a template rendered as text
            self.only_report = self.only_report.strip().lower() in ("true", "1", "yes")
        try:
            records = ownership.all_records()
        except NotImplementedError:  # Airflow < 3.3: no Variable.keys
            if not self.only_report:
                raise AirflowFailException(needs_newer_airflow_message()) from None
            self.log.warning("%s", needs_newer_airflow_message())
            records = []
        report: dict[str, list[dict[str, Any]]] = {
            "stopped": [],
            "would_stop": [],
            "kept": [],
            "unattributed": [],
        }
        for conn_id in conn_ids:
            with RemoteRenderingHook(conn_id) as hook:
                account = hook.settings.account_id  # records of another connection to the same account count
                mine = [
                    r
                    for r in records
                    if r.arr_conn_id == conn_id or (r.account_id and r.account_id == account)
                ]
                self._sweep(hook, conn_id, mine, max_age, report)
        self.log.info(
            "Janitor: %d stopped, %d to stop (dry run), %d kept (owner still running), %d unattributed",
            len(report["stopped"]),
            len(report["would_stop"]),
            len(report["kept"]),
            len(report["unattributed"]),
        )
        return report

    def _sweep(
        self,
        hook: RemoteRenderingHook,
        conn_id: str,
        records: list[OwnershipRecord],
        max_age: timedelta | None,
        report: dict[str, list[dict[str, Any]]],
    ) -> None:
        from airflow_provider_arr import ownership
        from airflow_provider_arr.models import SessionStatus
        from airflow_provider_arr.ownership.assess import attribute
        from airflow_provider_arr.ownership.rules import note_ui_stop, resolve_pending

        listed = {session.session_id: session for session in hook.list_sessions()}
        verdicts = {record.owner: self.owner_verdict(record.owner) for record in records}
        for record in records:
            verdict = verdicts[record.owner]
            if verdict.finished and record.pending is not None and not self.only_report:
                others = {sid for other in records if other is not record for sid in other.sessions}
                resolve_pending(hook, record, self.log, listed.values(), others)
            for session_id in list(record.sessions):
                session = listed.get(session_id)
                ended = session is None or not session.status.is_active
                if ended and self._ended(hook, session_id, session) and not self.only_report:
                    note_ui_stop(record, session_id, self.log)
                    record.forget(session_id)
        for found in attribute(listed.values(), records, verdicts):
            session = found.session
            if found.category == "unattributed":
                if session.status != SessionStatus.STOPPING:
                    self._unattributed(hook, conn_id, session, found.reason, max_age, report)
                continue
            assert found.record is not None
            entry = _entry(session, conn_id, str(found.record.owner), found.reason)
            if found.category == "orphaned":
                reason = f"its owner {found.record.owner} {found.reason}"
                if self._stop(hook, session, entry, reason, report):
                    found.record.forget(session.session_id)
                continue
            if found.category == "undecided":
                self.log.warning(
                    "Session %s of %s is kept: %s; the next sweep decides",
                    session.session_id,
                    found.record.owner,
                    found.reason,
                )
            report["kept"].append(entry)
        for record in records:
            if verdicts[record.owner].finished and not self.only_report:
                ownership.save(record)

    def _unattributed(
        self,
        hook: RemoteRenderingHook,
        conn_id: str,
        session: SessionProperties,
        why: str,
        max_age: timedelta | None,
        report: dict[str, list[dict[str, Any]]],
    ) -> None:
        """Report a session no record attributes; stop it once it has run over ``max_age``, if set."""
        entry = _entry(session, conn_id, None, why)
        if max_age is not None and session.elapsed_time >= max_age:
            self._stop(hook, session, entry, f"{why}, and it ran over {format_timespan(max_age)}", report)
            return
        self.log.warning(
            "Session %s (account of %s, running %s): %s; not stopped (its lease ends it; set "
            "max_unowned_age to stop such sessions sooner)",
            session.session_id,
            conn_id,
            format_timespan(session.elapsed_time),
            why,
        )
        report["unattributed"].append(entry)

    def _ended(self, hook: RemoteRenderingHook, session_id: str, listed: SessionProperties | None) -> bool:
        """Whether a recorded session has ended for good: listed as ended, or the service no longer knows it.

        Missing from a list is not enough (an item this client could not parse is left out of it): the
        session is read; a read that fails keeps the record.
        """
        from airflow_provider_arr.exceptions import RemoteRenderingSessionNotFoundError

        if listed is not None:
            return listed.status.is_terminal
        try:
            return hook.get_session(session_id).status.is_terminal
        except RemoteRenderingSessionNotFoundError:
            return True
        except Exception as error:
            self.log.warning(
                "Session %s is recorded but could not be read (%s); its record is kept", session_id, error
            )
            return False

    def _stop(
        self,
        hook: RemoteRenderingHook,
        session: SessionProperties,
        entry: dict[str, Any],
        reason: str,
        report: dict[str, list[dict[str, Any]]],
    ) -> bool:
        """Stop (or, in a dry run, report) one session; ``False`` if this connection cannot address it."""
        saved = format_timespan(max(session.max_lease_time - session.elapsed_time, timedelta(0)))
        if self.only_report:
            self.log.info(
                "Would stop session %s: %s (dry run; %s of lease left)", session.session_id, reason, saved
            )
            report["would_stop"].append(entry)
            return False
        try:
            hook.dialect.check_session_id(session.session_id)
        except ArrInputError:  # named by the other dialect (both can share an account): not addressable here
            self.log.warning(
                "Session %s should be stopped (%s) but its id is not a %s id; sweep a %s connection of this "
                "account to stop it",
                session.session_id,
                reason,
                hook.dialect.api_version,
                "2021-01-01" if hook.dialect.api_version == "v1" else "v1",
            )
            report["unattributed"].append(entry)
            return False
        hook.stop_session_if_active(session.session_id)
        self.log.warning(
            "Stopped session %s: %s; it had run %s, and %s of its lease will not be billed",
            session.session_id,
            reason,
            format_timespan(session.elapsed_time),
            saved,
        )
        report["stopped"].append(entry)
        return True

    def owner_verdict(self, owner: Owner) -> Verdict:
        """Whether the owner is done with its sessions, and why, from Airflow's own record of it.

        Only positive evidence says "finished" (see :mod:`airflow_provider_arr.ownership.evidence`): a
        read that fails, or a state this code does not know, keeps the session until the next sweep.
        """
        from airflow_provider_arr.ownership import evidence

        reader = evidence.airflow_state()
        if reader is None:
            return evidence.Verdict("unknown", "not under a task runner: there is no Airflow to ask")
        return evidence.owner_verdict(owner, reader)


def _max_age(value: Any) -> timedelta | None:
    """``max_unowned_age`` as a duration (zero allowed: stop every unattributed session), or ``None``."""
    if value is None or value == "":
        return None
    try:
        age = value if isinstance(value, timedelta) else parse_timespan(value, "max_unowned_age")
    except ArrInputError as error:
        raise AirflowFailException(str(error)) from None
    if age < timedelta(0):
        raise AirflowFailException(f"max_unowned_age: must not be negative, got {value!r}")
    return age


def _entry(session: SessionProperties, conn_id: str, owner: str | None, reason: str) -> dict[str, Any]:
    return {
        "reason": reason,
        "session_id": session.session_id,
        "arr_conn_id": conn_id,
        "owner": owner,
        "status": session.status_text,
        "elapsed": format_timespan(session.elapsed_time),
    }


def needs_newer_airflow_message() -> str:
    """What the janitor says on an Airflow older than 3.3, where it cannot list the ownership records.

    Without the records it cannot tell a session whose owner has finished from one in use, so it stops
    nothing: a run fails with this message, a dry run reports every session as unattributed.
    """
    from airflow_provider_arr import _compat
    from airflow_provider_arr.ownership.records import VARIABLE_KEYS_SINCE

    return _compat.needs_newer_airflow(
        "The session janitor (RemoteRenderingSessionJanitorOperator)",
        VARIABLE_KEYS_SINCE,
        "it finds the sessions' owners in the ownership records, which only Airflow 3.3 can list "
        "(Variable.keys), and without them it cannot tell a finished owner's session from one in use",
        "each DAG's stop teardown stops its own sessions and a session's lease ends it; run the janitor "
        "with dry_run=True to list each account's live sessions (all reported as unattributed, none "
        "stopped), or upgrade to Airflow 3.3",
    )
