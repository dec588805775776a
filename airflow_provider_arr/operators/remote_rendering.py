"""Operators that create, extend and stop Azure Remote Rendering sessions.

A session is a billed cloud VM: it costs money from creation until it stops. The create operator
therefore stops the session it created whenever its own wait for Ready fails, times out or is killed,
and the stop operator is idempotent so it can run as a teardown and on retries.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_arr.exceptions import RemoteRenderingSessionNotFoundError
from airflow_provider_arr.models import (
    API_2021,
    MAX_LEASE_TIME,
    ArrInputError,
    SessionProperties,
    SessionStatus,
    format_timespan,
    lease_minutes,
    validate_lease,
    validate_models,
    validate_session_id,
    validate_size,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

#: How long ``on_kill`` may spend stopping the session the task created.
STOP_ON_KILL_TIMEOUT = 20.0
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


class _RemoteRenderingBaseOperator(BaseOperator):
    """Shared bits: the connection id, a lazily built hook, and input checks that fail without retries.

    :param arr_conn_id: the Airflow connection id of the ARR account. (templated)
    """

    template_fields: Sequence[str] = ("arr_conn_id",)

    def __init__(self, *, arr_conn_id: str = "arr_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arr_conn_id = arr_conn_id

    @cached_property
    def hook(self) -> RemoteRenderingHook:
        """The hook for :attr:`arr_conn_id` (imported lazily to keep DAG parsing cheap)."""
        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

        return RemoteRenderingHook(arr_conn_id=self.arr_conn_id)

    def _checked_session_id(self, value: Any) -> str:
        """The session id, checked by the rules of the connection's API dialect, before any HTTP."""
        try:
            return validate_session_id(value, api_version=self.hook.settings.api_version)
        except ArrInputError as error:
            raise AirflowFailException(str(error)) from None

    def _stop_quietly(self, session_id: str, reason: str) -> None:
        """Stop a session this task created, best effort: log failures instead of raising them."""
        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

        # A fresh hook: on_kill runs in another thread or a signal handler, maybe while self.hook is busy.
        hook = RemoteRenderingHook(arr_conn_id=self.arr_conn_id)
        try:
            try:
                status: SessionStatus | None = hook.get_session(session_id).status
            except RemoteRenderingSessionNotFoundError:
                self.log.info("Session %s no longer exists; nothing to stop", session_id)
                return
            except Exception as error:
                self.log.warning(
                    "Could not read the status of session %s (%s); stopping it anyway", session_id, error
                )
                status = None
            if status is not None and status.is_terminal:
                self.log.info("Session %s is already %s; nothing to stop", session_id, status.value)
                return
            self.log.warning("Stopping session %s because %s", session_id, reason)
            hook.stop_session(session_id)
            self.log.info("Stopped session %s", session_id)
        except RemoteRenderingSessionNotFoundError:
            self.log.info("Session %s no longer exists; nothing to stop", session_id)
        except Exception:
            self.log.exception("Could not stop session %s; stop it by hand, it is billed", session_id)
        finally:
            hook.close()


class RemoteRenderingCreateSessionOperator(_RemoteRenderingBaseOperator):
    """Create a rendering session; optionally wait until it is Ready.

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
        try:  # everything that can be checked is checked before any HTTP; no retry fixes bad input
            lease = validate_lease(self.max_lease_time)
            size = validate_size(self.size)
            models = validate_models(self.models)
            api_version = self.hook.settings.api_version
            if api_version == API_2021:
                lease_minutes(lease)
                if models:
                    raise ArrInputError(
                        "models", "the 2021-01-01 API does not preload models; leave it empty"
                    )
            elif self.session_id is not None:
                raise ArrInputError("session_id", "the v1 API chooses session ids itself; leave it unset")
        except ArrInputError as error:
            raise AirflowFailException(str(error)) from None
        if api_version == API_2021:
            session_id = self._create_or_reconnect(context, lease, size, models)
        else:
            self._creating = (lease, size)
            try:
                session_id = self.hook.create_session(lease, size, models)
            finally:
                self._creating = None
            self.log.info(
                "Created %s session %s with a lease of %s", size, session_id, format_timespan(lease)
            )
        context["ti"].xcom_push(key="session_id", value=session_id)
        if not self.wait_for_ready:
            return session_id
        if self.deferrable:
            from airflow_provider_arr.triggers.remote_rendering import RemoteRenderingSessionTrigger

            trigger = RemoteRenderingSessionTrigger(
                session_id=session_id,
                arr_conn_id=self.arr_conn_id,
                poll_interval=self.poll_interval,
                end_time=time.time() + self.timeout,
                stop_on_kill=True,
            )
            self.defer(trigger=trigger, method_name="execute_complete", timeout=None)
        killed = self._killed = threading.Event()
        self._waiting_for = session_id
        try:
            properties = self._wait_until_ready(session_id, killed)
        except BaseException as error:
            if not killed.is_set():
                self._stop_quietly(session_id, f"waiting for Ready failed ({error})")
            raise
        finally:
            self._waiting_for = self._killed = None
        self._push_ready(context, properties.to_dict())
        return session_id

    def _create_or_reconnect(self, context: Context, lease: timedelta, size: str, models: list[str]) -> str:
        """
        On ``2021-01-01``: create the session under a retry-stable id, or reconnect to it.

        A retry of this task finds the session its earlier try started (even if that try crashed
        before it could record the id) and reconnects, instead of starting a second billed VM.
        """
        base = self.session_id or task_instance_session_id(context)
        base = self._checked_session_id(base)
        for attempt in range(MAX_ENDED_PREDECESSORS + 1):
            candidate = base if attempt == 0 else _numbered(base, attempt + 1)
            try:
                existing = self.hook.get_session(candidate)
            except RemoteRenderingSessionNotFoundError:
                self._creating = candidate
                try:
                    session_id = self.hook.create_session(lease, size, models, session_id=candidate)
                except ArrInputError as error:
                    raise AirflowFailException(str(error)) from None
                finally:
                    self._creating = None
                self.log.info(
                    "Created %s session %s with a lease of %s", size, session_id, format_timespan(lease)
                )
                return session_id
            if existing.status.is_active:
                self.log.info(
                    "Session %s (started by an earlier try of this task) is %s; reconnecting to it",
                    candidate,
                    existing.status.value,
                )
                return candidate
            self.log.info(
                "Session %s has already ended (%s); using a new id", candidate, existing.status.value
            )
        raise AirflowFailException(
            f"session_id: {MAX_ENDED_PREDECESSORS + 1} sessions named after {base!r} have already ended; "
            "pass a session_id of your own"
        )

    def _wait_until_ready(self, session_id: str, killed: threading.Event) -> SessionProperties:
        deadline = time.monotonic() + self.timeout
        while True:
            properties = self.hook.get_session(session_id)
            self.log.info(
                "Session %s is %s (elapsed %s of lease %s)",
                session_id,
                properties.status.value,
                format_timespan(properties.elapsed_time),
                format_timespan(properties.max_lease_time),
            )
            if properties.status == SessionStatus.READY:
                return properties
            if properties.status != SessionStatus.STARTING:
                from airflow_provider_arr.triggers.remote_rendering import failure_message

                raise AirflowException(failure_message(properties))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AirflowException(
                    f"Session {session_id} was not Ready after {self.timeout:g} s (still Starting)"
                )
            if killed.wait(min(self.poll_interval, remaining)):
                raise AirflowException(f"Task killed while waiting for session {session_id}")

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Resume after the trigger: return the session id if Ready, else stop the session and fail."""
        from airflow_provider_arr.triggers.remote_rendering import validate_event

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
            raise AirflowException(event["message"])
        self.log.info("%s", event["message"])
        self._push_ready(context, event["properties"])
        return session_id

    def _push_ready(self, context: Context, properties: dict[str, Any]) -> None:
        context["ti"].xcom_push(key="session_properties", value=properties)
        context["ti"].xcom_push(key="hostname", value=properties.get("hostname"))
        self.log.info("Session %s is Ready at %s", properties.get("session_id"), properties.get("hostname"))

    def on_kill(self) -> None:
        """
        Stop the session this task created if it is killed while creating it or waiting for Ready.

        Bounded by ``STOP_ON_KILL_TIMEOUT``. Killed while the create call is in flight, the service may
        already have started the session: on 2021-01-01 its id is known and it is stopped; on v1 the
        account is listed and the one new session matching this create is stopped.
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
            stop = partial(self._stop_in_flight_v1_create, creating)
        else:
            return
        worker = threading.Thread(target=stop, daemon=True)
        worker.start()
        worker.join(STOP_ON_KILL_TIMEOUT)
        if worker.is_alive():
            self.log.error(
                "Stopping the session of killed task took over %.0f s; check the account's sessions by hand",
                STOP_ON_KILL_TIMEOUT,
            )

    def _stop_in_flight_v1_create(self, requested: tuple[timedelta, str]) -> None:
        """Find and stop the session a killed v1 create may have started (the one new matching session)."""
        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

        before = self.hook.sessions_before_create
        if before is None:
            self.log.info("Killed before the create was sent; nothing to stop")
            return
        lease, size = requested
        with RemoteRenderingHook(arr_conn_id=self.arr_conn_id) as hook:
            try:
                new = [
                    session.session_id
                    for session in hook.list_sessions()
                    if session.session_id not in before
                    and session.max_lease_time == lease
                    and (session.size is None or session.size.lower() == size)
                ]
            except Exception:
                self.log.exception("Could not list the sessions to find the one the killed create started")
                return
        if len(new) == 1:
            self._stop_quietly(new[0], "the task was killed while creating it")
        elif new:
            self.log.error(
                "Killed while creating a session; %d matching new sessions exist (%s) and which one is this "
                "task's cannot be told: stop the unused ones by hand",
                len(new),
                ", ".join(new),
            )
        else:
            self.log.info("Killed while creating a session; no new session appeared, nothing to stop")


class RemoteRenderingExtendSessionOperator(_RemoteRenderingBaseOperator):
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


class RemoteRenderingStopSessionOperator(_RemoteRenderingBaseOperator):
    """Stop a session; idempotent, so it is safe as a teardown and on retries.

    A session that is already Stopped, Expired or in Error, or that the service no longer knows
    (HTTP 404), counts as stopped. Returns the final status: ``"Stopped"`` after a stop, the
    session's status if it had already ended (or is ``"Stopping"``), or ``"NotFound"``.

    :param session_id: the session's id. (templated)
    :param arr_conn_id: the Airflow connection id. (templated)
    """

    template_fields: Sequence[str] = ("session_id", "arr_conn_id")

    def __init__(self, *, session_id: str, arr_conn_id: str = "arr_default", **kwargs: Any) -> None:
        super().__init__(arr_conn_id=arr_conn_id, **kwargs)
        self.session_id = session_id

    def execute(self, context: Context) -> str:
        session_id = self._checked_session_id(self.session_id)
        try:
            status = self.hook.get_session(session_id).status
            if status.is_terminal or status == SessionStatus.STOPPING:
                self.log.info("Session %s is already %s; nothing to stop", session_id, status.value)
                return status.value
            self.hook.stop_session(session_id)
        except RemoteRenderingSessionNotFoundError:
            self.log.info("Session %s does not exist (any more); nothing to stop", session_id)
            return "NotFound"
        self.log.info("Stopped session %s (it was %s)", session_id, status.value)
        return SessionStatus.STOPPED.value
