"""Operators that create, extend and stop Azure Remote Rendering sessions.

A session is a billed cloud VM: it is billed from ``Ready`` until it stops or its lease expires. So the
create operator records every session it is about to start in a durable ownership record (see
:mod:`airflow_provider_arr.ownership`) before the create call is sent, reconnects to its own session on
a retry or a cleared re-run instead of starting a second, and stops the session it created whenever its
own wait for Ready fails, times out or is killed. The stop operator is idempotent and, as a teardown,
stops everything the create task started, in all its tries, also when the create failed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from airflow_provider_arr._compat import AirflowException, AirflowFailException, conf
from airflow_provider_arr.exceptions import (
    RemoteRenderingSessionNotFoundError,
    RemoteRenderingWaitCancelledError,
    RemoteRenderingWaitError,
    RemoteRenderingWaitTimeoutError,
)
from airflow_provider_arr.links import RemoteRenderingInspectorLink, note_link
from airflow_provider_arr.models import MAX_LEASE_TIME, ArrInputError, format_timespan, validate_lease
from airflow_provider_arr.operators import _create
from airflow_provider_arr.operators._create import task_instance_session_id
from airflow_provider_arr.operators.base import RemoteRenderingBaseOperator
from airflow_provider_arr.sensors.base import wait_deadline

if TYPE_CHECKING:
    from airflow.sdk import Context


#: How long ``on_kill`` may spend stopping the session the task created.
STOP_ON_KILL_TIMEOUT = 20.0
__all__ = [
    "STOP_ON_KILL_TIMEOUT",
    "RemoteRenderingCreateSessionOperator",
    "RemoteRenderingExtendSessionOperator",
    "RemoteRenderingStopSessionOperator",
    "task_instance_session_id",
]


class RemoteRenderingCreateSessionOperator(RemoteRenderingBaseOperator):
    """Create a rendering session; optionally wait until it is Ready.

    Before anything is created, the task's durable ownership record is read: a session that an earlier
    try (or the run before a clear) started and that is still Starting or Ready is reconnected to, other
    active ones of this task are stopped, so one task instance never has two sessions alive. What is
    about to be created is recorded before the create call is sent (on ``v1``: the request and the
    account's sessions just before; on ``2021-01-01``: the id), so a try that dies at any instant leaves
    a record that the next try, the teardown and the session janitor act on.

    The session id is pushed to XCom (key ``session_id``) right after creation, before any wait, and
    returned (``return_value``). With ``wait_for_ready``, the session's properties are pushed as
    ``session_properties`` and its hostname as ``hostname`` once it is Ready.

    If the wait fails (the session ends in Error, Expired or Stopped, the service cannot be asked, or
    ``timeout`` passes) or the task is killed while waiting, the operator **stops the session it
    created**: a session that never became Ready for its task is billed and of no use. Pair it with
    :class:`RemoteRenderingStopSessionOperator` as a teardown to stop the session after the work.

    :param max_lease_time: the lease, total time since start: a ``timedelta`` or ``"4:0:0"``; at most
        24 h. (templated)
    :param size: ``standard`` or ``premium``. (templated)
    :param models: asset-container URLs to preload. (templated)
    :param arr_conn_id: the Airflow connection id. (templated)
    :param wait_for_ready: wait until the session is Ready before the task succeeds.
    :param deferrable: wait in the triggerer instead of the worker.
    :param poll_interval: seconds between two status reads while waiting.
    :param timeout: seconds to wait for Ready before stopping the session and failing.
    :param session_id: ``2021-01-01`` connections only: the id to give the session. (templated) By
        default it is derived from the task instance (dag id, run id, task id, map index), so an
        Airflow retry of the same task reconnects to the session an earlier try started instead of
        starting a second one; a session of that id that has already ended gets a numbered successor.
    """

    template_fields: Sequence[str] = ("max_lease_time", "size", "models", "arr_conn_id", "session_id")
    operator_extra_links = (RemoteRenderingInspectorLink(),)
    #: Its task instances record the sessions they create (``ownership.rules.CREATES_SESSIONS``).
    records_arr_sessions = True

    def __init__(
        self,
        *,
        max_lease_time: timedelta | str,
        size: str = "standard",
        models: Sequence[str] | None = None,
        arr_conn_id: str = "arr_default",
        wait_for_ready: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10.0,
        timeout: float = 3600.0,
        session_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(arr_conn_id=arr_conn_id, **kwargs)
        self.session_id = session_id
        self.max_lease_time = max_lease_time
        self.size = size
        self.models = models
        self.wait_for_ready = wait_for_ready
        self.deferrable = deferrable
        self.poll_interval = float(poll_interval)
        self.timeout = float(timeout)
        if self.poll_interval <= 0 or self.timeout <= 0:
            raise ValueError("poll_interval and timeout must be greater than zero")
        # Set only while the blocking wait runs (an Event cannot be deep-copied with the operator).
        self._waiting_for: str | None = None
        self._killed: threading.Event | None = None
        # Set while the create call is in flight: the 2021-01-01 id it sends, or the v1 (lease, size).
        self._creating: str | tuple[timedelta, str] | None = None

    def execute(self, context: Context) -> str:
        from airflow_provider_arr import ownership
        from airflow_provider_arr.ownership.rules import reconcile

        try:  # everything that can be checked is checked before any HTTP; no retry fixes bad input
            dialect = self.hook.dialect
            lease, size, models = dialect.check_create(
                self.max_lease_time, self.size, self.models, self.session_id
            )
        except ArrInputError as error:
            raise AirflowFailException(str(error)) from None
        ti = context["ti"]
        # A value for every index that ran, even one that fails: Airflow expands `.expand(session_id=
        # create.output)` over these by position, and an index with none would shift every later one.
        ti.xcom_push(key="return_value", value=None)
        try_number = int(getattr(ti, "try_number", 1) or 1)
        owner = ownership.Owner.of(ti)
        record = ownership.load(owner) or ownership.OwnershipRecord(
            owner, self.arr_conn_id, dialect.api_version
        )
        record.account_id = self.hook.settings.account_id
        # Claim the record first: a killed wait of an older try then leaves what we reconnect to alone.
        record.claimed_by_try = max(record.claimed_by_try, try_number)
        ownership.save(record)
        session_id = reconcile(self.hook, record, size, self.log)
        if session_id is None and dialect.client_names_sessions:
            session_id = _create.create_or_reconnect(self, context, record, try_number, (lease, size, models))
        elif session_id is None:
            session_id = _create.create_v1(self, record, try_number, (lease, size, models))
        context["ti"].xcom_push(key="session_id", value=session_id)
        context["ti"].xcom_push(key="return_value", value=session_id)  # a failed wait still names it
        if not self.wait_for_ready:
            return session_id
        if self.deferrable:
            from airflow_provider_arr.triggers.remote_rendering import RemoteRenderingSessionTrigger

            trigger = RemoteRenderingSessionTrigger(
                session_id=session_id,
                arr_conn_id=self.arr_conn_id,
                poll_interval=self.poll_interval,
                end_time=wait_deadline(self.timeout, self.execution_timeout),
                stop_on_kill=True,
                owner_key=owner.key,
                owner_try=try_number,
            )
            self.defer(trigger=trigger, method_name="execute_complete", timeout=None)
        killed = self._killed = threading.Event()
        self._waiting_for = session_id
        try:
            properties = self.hook.wait_until_ready(
                session_id, self.poll_interval, time.time() + self.timeout, killed
            )
        except BaseException as error:
            if not killed.is_set():
                self._stop_quietly(session_id, f"waiting for Ready failed ({error})")
            raise self._wait_failure(session_id, error) from error
        finally:
            self._waiting_for = self._killed = None
        self._push_ready(context, properties.to_dict(), time.time())
        return session_id

    def _wait_failure(self, session_id: str, error: BaseException) -> BaseException:
        if isinstance(error, RemoteRenderingWaitTimeoutError):
            return AirflowException(
                f"Session {session_id} was not Ready after {self.timeout:g} s (still Starting)"
            )
        if isinstance(error, RemoteRenderingWaitCancelledError):
            return AirflowException(f"Task killed while waiting for session {session_id}")
        if isinstance(error, RemoteRenderingWaitError):
            return AirflowException(str(error))
        return error

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Resume after the trigger: return the session id if Ready, else stop the session and fail."""
        from airflow_provider_arr.triggers.events import validate_event

        try:
            event = validate_event(event)
        except AirflowException as error:
            ti = context["ti"]
            session_id = ti.xcom_pull(task_ids=ti.task_id, key="session_id", map_indexes=ti.map_index)
            if isinstance(session_id, str):
                self._stop_quietly(session_id, f"the wait for Ready ended without a valid event ({error})")
            raise
        session_id = event["session_id"]
        if event["status"] != "success":
            self._stop_quietly(session_id, f"the wait for Ready ended with {event['status']}")
            if event["status"] == "timeout" and self.execution_timeout is not None:
                raise AirflowException(
                    f"{event['message']} (timeout {self.timeout:g} s, execution_timeout "
                    f"{self.execution_timeout.total_seconds():g} s; the nearer one applies while deferred)"
                )
            raise AirflowException(event["message"])
        self.log.info("%s", event["message"])
        self._push_ready(context, event["properties"], event.get("seen_at") or time.time())
        return session_id

    def _push_ready(self, context: Context, properties: dict[str, Any], seen_at: float) -> None:
        from airflow_provider_arr.models import SessionProperties
        from airflow_provider_arr.ownership.rules import note_ready

        ti = context["ti"]
        ti.xcom_push(key="session_properties", value=properties)
        ti.xcom_push(key="hostname", value=properties.get("hostname"))
        ready = SessionProperties.from_dict(properties)
        note_link(self, RemoteRenderingInspectorLink, ready.arr_inspector_url)
        note_ready(ti, self.task_id, ready.session_id, seen_at, self.log)
        self.log.info("Session %s is Ready at %s", ready.session_id, ready.hostname)

    def on_kill(self) -> None:
        """
        Stop the session this task created if it is killed while creating it or waiting for Ready.

        Bounded by ``STOP_ON_KILL_TIMEOUT``. Killed while the create call is in flight, the service may
        already have started the session: on 2021-01-01 its id is known and it is stopped; on v1 the
        account is listed and the one new session matching this create is stopped. A kill that gives no
        chance to run this (SIGKILL, OOM) is covered by the ownership record instead.
        """
        session_id, killed, creating = self._waiting_for, self._killed, self._creating
        if killed is not None:
            killed.set()
        stop: Callable[[], None]
        if session_id is not None:
            stop = partial(self._stop_quietly, session_id, "the task was killed while waiting")
        elif isinstance(creating, str):
            stop = partial(self._stop_quietly, creating, "the task was killed while creating it")
        elif creating is not None:
            stop = partial(_create.stop_in_flight_v1_create, self, creating)
        else:
            return
        worker = threading.Thread(target=stop, daemon=True)
        worker.start()
        worker.join(STOP_ON_KILL_TIMEOUT)
        if worker.is_alive():
            self.log.error(
                "Stopping the session of the killed task took over %.0f s; the teardown or janitor stops it",
                STOP_ON_KILL_TIMEOUT,
            )


class RemoteRenderingExtendSessionOperator(RemoteRenderingBaseOperator):
    """Extend a session's lease; give exactly one of ``max_lease_time`` or ``extend_by``.

    The lease is the total time since the session started. ``extend_by`` is added to the lease the
    service reports now (so a retry after a successful extend extends again). The new total must be
    larger than the current lease and at most 24 h. Returns the new total as ``"hh:mm:ss"``.

    :param session_id: the session's id. (templated)
    :param max_lease_time: the new total lease (``timedelta`` or ``"5:0:0"``). (templated)
    :param extend_by: time to add to the current lease (``timedelta`` or ``"0:30:0"``). (templated)
    :param arr_conn_id: the Airflow connection id. (templated)
    """

    template_fields: Sequence[str] = ("session_id", "max_lease_time", "extend_by", "arr_conn_id")

    def __init__(
        self,
        *,
        session_id: str,
        max_lease_time: timedelta | str | None = None,
        extend_by: timedelta | str | None = None,
        arr_conn_id: str = "arr_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(arr_conn_id=arr_conn_id, **kwargs)
        if (max_lease_time is None) == (extend_by is None):
            raise ValueError("Give exactly one of max_lease_time (the new total) or extend_by (time to add)")
        self.session_id = session_id
        self.max_lease_time = max_lease_time
        self.extend_by = extend_by

    def execute(self, context: Context) -> str:
        session_id = self._checked_session_id(self.session_id)
        field = "extend_by" if self.extend_by is not None else "max_lease_time"
        try:
            requested = validate_lease(
                self.extend_by if self.extend_by is not None else self.max_lease_time, field
            )
        except ArrInputError as error:
            raise AirflowFailException(str(error)) from None
        try:
            current = self.hook.get_session(session_id)
        except RemoteRenderingSessionNotFoundError as error:
            raise AirflowFailException(f"Cannot extend session {session_id}: {error}") from None
        from airflow_provider_arr.models import SessionStatus

        if current.status not in (SessionStatus.STARTING, SessionStatus.READY):
            raise AirflowFailException(
                f"Cannot extend session {session_id}: it is {current.status.value}, not Starting or Ready"
            )
        new_total = current.max_lease_time + requested if self.extend_by is not None else requested
        old, new = format_timespan(current.max_lease_time), format_timespan(new_total)
        if new_total <= current.max_lease_time:
            raise AirflowFailException(
                f"{field}: the new lease {new} is not longer than the session's current lease {old} "
                "(the lease is the total time since the session started)"
            )
        if new_total > MAX_LEASE_TIME:
            raise AirflowFailException(
                f"{field}: the new lease {new} (current {old}) exceeds the service's limit of "
                f"{format_timespan(MAX_LEASE_TIME)}"
            )
        try:
            self.hook.update_session(session_id, new_total)
        except ArrInputError as error:
            raise AirflowFailException(str(error)) from None
        self.log.info(
            "Extended session %s: lease %s -> %s (elapsed %s)",
            session_id,
            old,
            new,
            format_timespan(current.elapsed_time),
        )
        return new


class RemoteRenderingStopSessionOperator(RemoteRenderingBaseOperator):
    """Stop a session; idempotent, so it is safe as a teardown and on retries.

    A session that is already Stopping, Stopped, Expired or in Error, or that the service no longer knows
    (HTTP 404), counts as stopped. As the teardown of a create task (``session_id=create.output``, or
    ``create_task_id="create"``), it also stops **every session the create task instance recorded**, in
    all its tries, including one whose create never returned: so it is useful even when the create
    failed (give the teardown ``trigger_rule="all_done"`` so that it runs then; docs:
    failure-and-recovery.md).
    It retries 3 times by default (a teardown that gives up leaves a billed VM to the janitor).

    Returns the final status of ``session_id``: ``"Stopped"`` after a stop, the session's status if it
    had already ended (or is ``"Stopping"``), or ``"NotFound"``; without a ``session_id``, the status of
    the last recorded session, or ``"NotFound"`` when there was none.

    :param session_id: the session's id (templated); may render to nothing when ``create_task_id`` is
        known, e.g. ``create.output`` of a create that failed.
    :param arr_conn_id: the Airflow connection id. (templated)
    :param create_task_id: the task id of the create operator whose sessions to stop (same DAG run and
        map index); taken from ``session_id`` when it is that task's ``.output``.
    """

    template_fields: Sequence[str] = ("session_id", "arr_conn_id")

    def __init__(
        self,
        *,
        session_id: str | None = None,
        arr_conn_id: str = "arr_default",
        create_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 3)
        kwargs.setdefault("retry_delay", timedelta(seconds=10))
        super().__init__(arr_conn_id=arr_conn_id, **kwargs)
        if create_task_id is None:  # session_id=create.output names the create task
            operator = getattr(session_id, "operator", None)
            if isinstance(operator, RemoteRenderingCreateSessionOperator):
                create_task_id = operator.task_id
        self.session_id = session_id
        self.create_task_id = create_task_id

    def execute(self, context: Context) -> str:
        from airflow_provider_arr.ownership.indexes import map_index_of
        from airflow_provider_arr.ownership.rules import create_task_of
        from airflow_provider_arr.ownership.teardown import stop_as_teardown

        ti = context.get("ti")
        create_task_id = self.create_task_id
        if create_task_id is None and ti is not None and map_index_of(ti) >= 0:
            create_task_id = create_task_of(self)  # a mapped stop: its value is a plain string by now
        given = self.session_id is not None or create_task_id is None  # None: the create returned nothing
        session_id = self._checked_session_id(self.session_id) if given else None
        return stop_as_teardown(self.hook, self.log, ti, session_id, create_task_id)
