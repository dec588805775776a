"""Faults the emulated service injects on purpose: scripted ones a test asks for, and seeded chaos.

Request faults replace or disturb one call (:class:`Fault`: a canned status, a late answer, a reset
connection, an answer cut short or garbled); session faults make a new session fail to start or
start slowly. :class:`FaultInjection` is a part of
:class:`~airflow_provider_arr.emulator.state.EmulatorState` (which creates ``_lock`` and calls
:meth:`FaultInjection._init_faults`); the routes turn a :class:`Fault` into an answer in
:mod:`~airflow_provider_arr.emulator.responses`.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_arr.emulator.counters import RequestCounters

OPERATIONS = frozenset(
    {"token", "create", "update", "list", "properties", "stop"}
    | {"conversion_create", "conversion_properties", "conversion_list"}
)
#: What a scripted fault does with a call (see :meth:`EmulatorState.add_fault`).
FAULT_ACTIONS = ("answer", "drop_before", "drop_after", "truncate", "garble")
#: The request faults chaos mode picks from (see :meth:`EmulatorState.enable_chaos`).
CHAOS_REQUEST_KINDS = ("429", "503", "500", "drop_before", "drop_after", "delay")
#: The session faults chaos mode picks from.
CHAOS_SESSION_KINDS = ("fail_start", "slow_start")
#: What a session that chaos makes fail reports.
CHAOS_START_FAILURE = (
    "The session could not be started: the rendering server failed its health check (chaos)."
)
DEFAULT_START_FAILURE = (
    "The session could not be started: no rendering server of the requested size is available in the region."
)

__all__ = [
    "CHAOS_REQUEST_KINDS",
    "CHAOS_SESSION_KINDS",
    "CHAOS_START_FAILURE",
    "DEFAULT_START_FAILURE",
    "FAULT_ACTIONS",
    "OPERATIONS",
    "ChaosSettings",
    "Fault",
    "FaultInjection",
]


@dataclass
class Fault:
    """What to do instead of (or besides) answering the next ``remaining`` calls of one operation.

    ``action`` decides, with ``status``:

    - ``answer``: with a ``status``, send that canned answer (``body``, ``headers``) after ``delay``
      seconds, without processing the call; without one, process the call at once and send its real
      answer ``delay`` seconds late (provokes client timeouts after the service acted).
    - ``drop_before``: after ``delay``, reset the TCP connection without processing the call.
    - ``drop_after``: process the call, wait ``delay``, then reset the connection without answering.
    - ``truncate``: send the headers with a ``Content-Length`` longer than the bytes that follow (half
      the body), then close the connection. With a ``status`` the canned answer is cut and the call
      is not processed; without one the call is processed and its real answer is cut.
    - ``garble``: process the call, then send its real status and headers with ``body`` (by default
      invalid JSON) in place of its real body.

    A canned answer looks like the real service's answer of that status in the route's dialect: a
    ``body`` of ``None`` is the dialect's error body (none below 400, none from the STS), and an error
    status brings the headers the service sends with it (``Retry-After`` on a 429, the
    ``WWW-Authenticate`` challenge on a 401) besides ``headers``, which win.

    :param operation: the operation it applies to: ``token``, ``create``, ``update``, ``list``,
        ``properties`` or ``stop``.
    :param status: the HTTP status of a canned answer, or ``None`` to process the call.
    :param body: the canned (or garbled) body.
    :param headers: headers of the canned answer.
    :param remaining: how many more calls it applies to.
    :param delay: seconds to wait before acting.
    :param action: ``answer``, ``drop_before``, ``drop_after``, ``truncate`` or ``garble``.
    """

    operation: str
    status: int | None
    body: str | bytes | Mapping[str, Any] | list[Any] | None
    headers: dict[str, str]
    remaining: int
    delay: float
    action: str = "answer"

    @property
    def kind(self) -> str:
        """The name :attr:`EmulatorState.faults_injected` counts it under, e.g. ``503`` or ``drop_after``."""
        if self.action != "answer":
            return self.action
        return str(self.status) if self.status is not None else "delay"

    @property
    def processes_call(self) -> bool:
        """Whether the service acts on the call despite the fault (its client cannot tell)."""
        if self.action in ("drop_after", "garble"):
            return True
        return self.action in ("answer", "truncate") and self.status is None


@dataclass(frozen=True)
class ChaosSettings:
    """How chaos mode picks faults; see :meth:`EmulatorState.enable_chaos`.

    :param rate: the probability that one call gets a request fault.
    :param operations: the operations whose calls may get one.
    :param kinds: the request faults to pick from (:data:`CHAOS_REQUEST_KINDS`).
    :param session_rate: the probability that a new session gets a session fault.
    :param session_kinds: the session faults to pick from (:data:`CHAOS_SESSION_KINDS`).
    :param max_delay: the longest ``delay`` fault, in seconds.
    :param slow_start: the extra start-up seconds of a slow session (it gets 50 % to 100 % of it).
    """

    rate: float
    operations: frozenset[str]
    kinds: tuple[str, ...]
    session_rate: float
    session_kinds: tuple[str, ...]
    max_delay: float
    slow_start: float


class FaultInjection(RequestCounters):
    """The scripted and random faults of the emulator state, behind the state's lock (and counted)."""

    def _init_faults(self) -> None:
        self._faults: list[Fault] = []
        self._pending_start_failures: deque[str] = deque()
        self._pending_start_delays: deque[float] = deque()
        self._chaos: ChaosSettings | None = None
        self._random = random.Random()

    def fail_next_start(self, message: str = DEFAULT_START_FAILURE) -> None:
        """Make the next created session end in ``Error`` when its start delay is over.

        :param message: the ``message`` the failed session reports.
        """
        with self._lock:
            self._pending_start_failures.append(message)

    def slow_next_start(self, seconds: float, count: int = 1) -> None:
        """Make the next ``count`` new sessions stay ``Starting`` for ``seconds`` instead of ``start_delay``.

        :param seconds: the start-up delay of each of those sessions.
        :param count: how many sessions it applies to.
        """
        if seconds < 0 or count < 1:
            raise ValueError("seconds must not be negative and count must be at least 1")
        with self._lock:
            self._pending_start_delays.extend([float(seconds)] * count)

    def add_fault(
        self,
        operation: str,
        status: int | None = None,
        body: str | bytes | Mapping[str, Any] | list[Any] | None = None,
        headers: Mapping[str, str] | None = None,
        count: int = 1,
        delay: float = 0.0,
        action: str = "answer",
    ) -> None:
        """Script a fault for the next ``count`` calls of an operation (see :class:`Fault`).

        ``add_fault("list", 429)`` throttles the next list call as the service does (an error body
        in the dialect's shape and ``Retry-After: 1``; ``headers={"Retry-After": "5"}`` asks for
        longer); ``add_fault("create", action="drop_after")`` starts the session but resets the
        connection instead of answering; ``add_fault("properties", delay=2)`` answers late.

        :param operation: one of ``token``, ``create``, ``update``, ``list``, ``properties``, ``stop``,
            ``conversion_create``, ``conversion_properties`` or ``conversion_list``.
        :param status: the HTTP status of a canned answer (``answer``, ``truncate``); ``None`` to
            process the call (a late answer, a truncated or garbled real answer). Must be ``None`` for
            ``drop_before``, ``drop_after`` and ``garble``.
        :param body: the canned (or, for ``garble``, the replacement) body; a dict or list is sent as
            JSON, text as it is (``""``: no body); ``None`` (the default) is the dialect's error body
            for the status, as the real service sends it.
        :param headers: headers of a canned answer, besides (and winning over) those the service
            sends with its status, e.g. ``{"Retry-After": "5"}``.
        :param count: how many calls the fault applies to.
        :param delay: seconds to wait before answering (or dropping).
        :param action: ``answer``, ``drop_before``, ``drop_after``, ``truncate`` or ``garble``.
        """
        if operation not in OPERATIONS:
            raise ValueError(f"operation must be one of {sorted(OPERATIONS)}, got {operation!r}")
        if action not in FAULT_ACTIONS:
            raise ValueError(f"action must be one of {list(FAULT_ACTIONS)}, got {action!r}")
        if status is not None and not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code or None, got {status!r}")
        if status is not None and action in ("drop_before", "drop_after", "garble"):
            raise ValueError(f"a {action} fault sends no status of its own; leave status unset")
        if count < 1 or delay < 0:
            raise ValueError("count must be at least 1 and delay must not be negative")
        if action == "garble" and not body:
            body = '{"garbled'
        with self._lock:
            self._faults.append(Fault(operation, status, body, dict(headers or {}), count, delay, action))

    def scripted_faults(self) -> list[Fault]:
        """Copies of the scripted faults not yet used up, in the order they apply."""
        with self._lock:
            return [replace(fault) for fault in self._faults]

    def clear_faults(self) -> None:
        """Drop every scripted fault not yet used (chaos mode stays as it is)."""
        with self._lock:
            self._faults.clear()

    def enable_chaos(
        self,
        rate: float = 0.1,
        seed: int | None = None,
        operations: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        session_rate: float | None = None,
        session_kinds: Iterable[str] | None = None,
        max_delay: float = 0.5,
        slow_start: float = 1.0,
    ) -> None:
        """Inject random faults from now on, reproducibly for a given seed.

        Each call of the chosen operations gets, with probability ``rate``, one request fault picked
        evenly from ``kinds``: ``429`` (with ``Retry-After`` 0 or 1), ``503`` and ``500`` (canned,
        not processed), ``drop_before``, ``drop_after`` (processed, mutating calls too) or ``delay``
        (processed, answered up to ``max_delay`` seconds late). Each new session gets, with
        probability ``session_rate``, one session fault from ``session_kinds``: ``fail_start`` (it
        ends in ``Error``) or ``slow_start`` (it starts ``slow_start`` x 0.5-1 seconds later). Scripted
        faults (:meth:`add_fault`, :meth:`fail_next_start`, ...) still come first. Every fault is
        counted in :attr:`faults_injected`.

        :param rate: probability, 0 to 1, that a call gets a fault.
        :param seed: seeds the random choices; ``None`` for an unpredictable run.
        :param operations: the operations to disturb; all by default.
        :param kinds: the request faults to pick from; :data:`CHAOS_REQUEST_KINDS` by default.
        :param session_rate: probability that a new session gets a session fault; ``rate`` by default.
        :param session_kinds: the session faults to pick from; :data:`CHAOS_SESSION_KINDS` by default.
        :param max_delay: the longest ``delay`` fault, in seconds.
        :param slow_start: the most extra start-up seconds of a slow session.
        """
        operations = frozenset(OPERATIONS if operations is None else operations)
        kinds = tuple(CHAOS_REQUEST_KINDS if kinds is None else kinds)
        session_kinds = tuple(CHAOS_SESSION_KINDS if session_kinds is None else session_kinds)
        session_rate = rate if session_rate is None else session_rate
        if not (0 <= rate <= 1 and 0 <= session_rate <= 1):
            raise ValueError("rate and session_rate must be between 0 and 1")
        if not operations <= OPERATIONS:
            raise ValueError(f"operations must be among {sorted(OPERATIONS)}, got {sorted(operations)}")
        if not kinds or not set(kinds) <= set(CHAOS_REQUEST_KINDS):
            raise ValueError(f"kinds must be a non-empty subset of {list(CHAOS_REQUEST_KINDS)}")
        if not session_kinds or not set(session_kinds) <= set(CHAOS_SESSION_KINDS):
            raise ValueError(f"session_kinds must be a non-empty subset of {list(CHAOS_SESSION_KINDS)}")
        if max_delay < 0 or slow_start < 0:
            raise ValueError("max_delay and slow_start must not be negative")
        with self._lock:
            self._random = random.Random(seed)
            self._chaos = ChaosSettings(
                rate, operations, kinds, session_rate, session_kinds, float(max_delay), float(slow_start)
            )

    def disable_chaos(self) -> None:
        """Stop injecting random faults (scripted ones are kept)."""
        with self._lock:
            self._chaos = None

    @property
    def chaos(self) -> ChaosSettings | None:
        """The chaos settings in force, or ``None``."""
        with self._lock:
            return self._chaos

    def begin_request(self, operation: str) -> Fault | None:
        """Count a call of an operation and return the fault to apply to it, if any.

        A scripted fault comes first; otherwise chaos mode, if enabled, may draw one.

        :param operation: the operation's name (see :meth:`add_fault`).
        """
        with self._lock:
            self._counts[operation] += 1
            fault = self._scripted_fault(operation) or self._chaos_fault(operation)
            if fault is not None:
                self._faults_injected[fault.kind] += 1
            return fault

    def _scripted_fault(self, operation: str) -> Fault | None:
        for fault in self._faults:
            if fault.operation == operation:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _chaos_fault(self, operation: str) -> Fault | None:
        chaos, rng = self._chaos, self._random
        if chaos is None or operation not in chaos.operations or rng.random() >= chaos.rate:
            return None
        kind = rng.choice(chaos.kinds)
        if kind == "429":
            return Fault(operation, 429, None, {"Retry-After": str(rng.randint(0, 1))}, 1, 0.0)
        if kind in ("503", "500"):
            return Fault(operation, int(kind), None, {}, 1, 0.0)
        if kind == "delay":
            return Fault(operation, None, None, {}, 1, rng.uniform(0, chaos.max_delay))
        return Fault(operation, None, None, {}, 1, 0.0, kind)

    def _start_faults(self, start_delay: float) -> tuple[float, str | None]:
        """Draw a new session's start-up delay and failure from the session faults; the caller holds the lock.

        :param start_delay: the start-up delay without a fault.
        :return: the delay, and the ``message`` of the failure it will end in (``None``: it starts).
        """
        failures, delays = self._pending_start_failures, self._pending_start_delays
        start_failure = failures.popleft() if failures else None
        if start_failure is not None:
            self._faults_injected["fail_start"] += 1
        if delays:
            start_delay = delays.popleft()
            self._faults_injected["slow_start"] += 1
        chaos = self._chaos
        if chaos is not None and start_failure is None and self._random.random() < chaos.session_rate:
            kind = self._random.choice(chaos.session_kinds)
            self._faults_injected[kind] += 1
            if kind == "fail_start":
                start_failure = CHAOS_START_FAILURE
            else:
                start_delay += self._random.uniform(chaos.slow_start / 2, chaos.slow_start)
        return start_delay, start_failure

    def _clear_faults(self) -> None:
        """Forget every fault: scripted, pending session faults and chaos; the caller holds the lock."""
        self._faults.clear()
        self._chaos = None
        self._pending_start_failures.clear()
        self._pending_start_delays.clear()
