"""
Soak test: many session life cycles through the real operators, against the emulator in chaos mode.

Each life cycle is what a DAG run of ``create >> extend >> stop`` (stop as the teardown of create)
does to the service, with Airflow's retry behaviour simulated:

- ``create`` (``RemoteRenderingCreateSessionOperator``, blocking ``wait_for_ready``), ``extend``
  (``RemoteRenderingExtendSessionOperator``, ``extend_by``) and ``stop``
  (``RemoteRenderingStopSessionOperator``) each get up to ``--tries`` tries; every try is a fresh
  operator instance with the same task-instance identity (dag id, run id, task id, map index) and
  empty XComs, as Airflow gives it; ``AirflowFailException`` ends the task without further tries;
- ``stop`` runs whenever ``create`` succeeded, whatever ``extend`` did (Airflow runs a teardown when
  its setup succeeded); it stops the session id ``create`` returned.

The emulator runs in-process with a short start delay, a chaos rate of 10 % by default (per call:
429 with Retry-After, 503, 500, connection dropped before or after processing, late answer; per
session: failed start, slow start) and seeded randomness, so a run can be repeated. Life cycles
alternate between the v1 and the 2021-01-01 dialect.

At the end it prints the life cycles, the faults injected by kind, the sessions created, the sessions
**left running**, the **duplicates**, the task failures whose message **did not say what happened**
or held a secret (the account key or a token the emulator issued), and the sessions whose lease was
extended twice. The exit status is non-zero if a session was left running or duplicated, or a
failure message held a secret.

Definitions:

- *left running*: a session of any life cycle still ``Starting`` or ``Ready`` when all cycles are done.
- *duplicate*: a life cycle that started a session while another session of the same life cycle was
  still active (a second billed VM at once), or a single create try that started more than one
  session. A session that replaces one that had already ended (failed start, wait that timed out
  and stopped its session) is a *replacement*, counted separately: that is what retries are for.
- a failure *says what happened* if its message names the hook operation that failed
  (``create_session``, ``get_session``, ...) and the HTTP status (``HTTP 503``) or the transport
  error (``ConnectionError``, ``ReadTimeout``, ...); or says which state the session ended in and
  why (``Session x is Error and will not become Ready: ...``, ``was not Ready after 1 s``); or names
  the invalid field (``max_lease_time: ...``).

Run ``python scripts/soak.py --help`` for the options; ``tests/reliability/test_soak.py`` runs a short
soak in the test suite.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_arr.emulator import ArrEmulator, SessionRecord

DIALECTS = ("v1", "2021-01-01")
CONN_IDS = {"v1": "arr_soak_v1", "2021-01-01": "arr_soak_2021"}
#: Retry settings of the soak's connections: the hook's policy, with short waits.
CONNECTION_EXTRAS = {
    "retry_min_wait": 0.02,
    "retry_max_wait": 0.2,
    "retry_max_time": 20,
    "retry_limit": 6,
    "read_timeout": 2,
    "connect_timeout": 2,
}

_OPERATIONS = r"(get_token|create_session|get_session|list_sessions|update_session|stop_session)"
_HOOK_FAILURE = re.compile(
    _OPERATIONS
    + r" failed: (HTTP \d{3}|no HTTP answer; service message: [A-Za-z_.]*(Error|Timeout|Exception)\b)"
)
_SESSION_STATE = re.compile(
    r"Session \S+ (is (Error|Expired|Stopped|Stopping) and will not become Ready"
    r"|was not Ready after \d)|Cannot extend session \S+: it is (Error|Expired|Stopped|Stopping)"
)
_INVALID_FIELD = re.compile(r"^(connection '[^']*' [\w '()]+|[a-z_]+(\[\d+\])?): \S")


def says_what_happened(error: BaseException) -> bool:
    """Whether a task failure's message says what happened (see the module docstring).

    :param error: the exception a task try raised.
    """
    text = str(error)
    return bool(_HOOK_FAILURE.search(text) or _SESSION_STATE.search(text) or _INVALID_FIELD.match(text))


@dataclass
class TaskFailure:
    """One failed try of one task.

    :param task_id: ``create``, ``extend`` or ``stop``.
    :param try_number: which try failed.
    :param error: the exception's type and message.
    :param explained: whether the message says what happened.
    """

    task_id: str
    try_number: int
    error: str
    explained: bool


@dataclass
class CycleResult:
    """What one life cycle did.

    :param index: the life cycle's number.
    :param dialect: ``v1`` or ``2021-01-01``.
    :param succeeded: whether create, extend and stop all succeeded (after retries).
    :param sessions: the sessions it started, in order, as the emulator reports them at the end.
    :param duplicate: why it counts as a duplicate, or ``""``.
    :param failures: its failed task tries.
    :param faults: the faults injected while it ran, by kind.
    :param over_extended: if the session's lease ended up longer than create plus one extend asked
        for, the two leases; else ``""``.
    """

    index: int
    dialect: str
    succeeded: bool
    sessions: list[str] = field(default_factory=list)
    duplicate: str = ""
    over_extended: str = ""
    failures: list[TaskFailure] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)


@dataclass
class SoakReport:
    """The figures of a soak run.

    :param cycles: every life cycle's result.
    :param faults: the faults injected, by kind.
    :param left_running: the sessions still active at the end.
    :param seconds: the wall time.
    :param chaos_rate: the chaos rate the emulator ran with.
    :param seed: the chaos seed.
    :param secrets_in_failures: failure messages that hold the account key or an issued token.
    """

    cycles: list[CycleResult]
    faults: Counter[str]
    left_running: list[SessionRecord]
    seconds: float
    chaos_rate: float
    seed: int
    secrets_in_failures: list[str] = field(default_factory=list)

    @property
    def sessions_created(self) -> int:
        """How many sessions the life cycles started."""
        return sum(len(cycle.sessions) for cycle in self.cycles)

    @property
    def duplicates(self) -> list[CycleResult]:
        """The life cycles that had two sessions running at once (or one create try that started two)."""
        return [cycle for cycle in self.cycles if cycle.duplicate]

    @property
    def failures(self) -> list[TaskFailure]:
        """Every failed task try."""
        return [failure for cycle in self.cycles for failure in cycle.failures]

    @property
    def unexplained(self) -> list[TaskFailure]:
        """The failed task tries whose message did not say what happened."""
        return [failure for failure in self.failures if not failure.explained]

    @property
    def over_extended(self) -> list[CycleResult]:
        """The life cycles whose session got a longer lease than asked for (an extend applied twice)."""
        return [cycle for cycle in self.cycles if cycle.over_extended]

    @property
    def ok(self) -> bool:
        """No session left running, no duplicate, no secret in a failure message."""
        return not self.left_running and not self.duplicates and not self.secrets_in_failures

    def format(self) -> str:
        """The report as printed: one figure per line, then the details of anything that went wrong."""
        by_dialect = Counter(cycle.dialect for cycle in self.cycles)
        succeeded = sum(cycle.succeeded for cycle in self.cycles)
        failed_tasks = Counter(failure.task_id for failure in self.failures)
        replacements = self.sessions_created - sum(1 for cycle in self.cycles if cycle.sessions)
        faults = ", ".join(f"{kind} {count}" for kind, count in sorted(self.faults.items())) or "none"
        lines = [
            f"life cycles:           {len(self.cycles)} "
            f"({', '.join(f'{n} {d}' for d, n in sorted(by_dialect.items()))}); "
            f"{succeeded} ended with create, extend and stop succeeded",
            f"chaos:                 rate {self.chaos_rate:.0%}, seed {self.seed}",
            f"faults injected:       {sum(self.faults.values())} ({faults})",
            f"sessions created:      {self.sessions_created} "
            f"({replacements} replacing a session that had already ended)",
            f"left running at end:   {len(self.left_running)}",
            f"duplicates:            {len(self.duplicates)}",
            f"failed task tries:     {len(self.failures)} "
            f"({', '.join(f'{task} {n}' for task, n in sorted(failed_tasks.items())) or 'none'})",
            f"unexplained failures:  {len(self.unexplained)}",
            f"secrets in failures:   {len(self.secrets_in_failures)} (account key or a token in a message)",
            f"extended twice:        {len(self.over_extended)} (lease longer than create + one extend_by)",
            f"wall time:             {self.seconds:.1f} s",
        ]
        for record in self.left_running:
            lines.append(
                f"LEFT RUNNING: {record.session_id} ({record.status}) {self._cycle_of(record.session_id)}"
            )
        for cycle in self.duplicates:
            lines.append(f"DUPLICATE: {self._describe(cycle)}")
        for text in self.secrets_in_failures:
            lines.append(f"SECRET IN A FAILURE MESSAGE: {text[:200]}")
        for failure in self.unexplained:
            lines.append(f"UNEXPLAINED ({failure.task_id} try {failure.try_number}): {failure.error}")
        for cycle in self.over_extended:
            lines.append(f"EXTENDED TWICE: {cycle.over_extended}; {self._describe(cycle)}")
        return "\n".join(lines)

    def _cycle_of(self, session_id: str) -> str:
        for cycle in self.cycles:
            if session_id in cycle.sessions:
                return self._describe(cycle)
        return "(no life cycle started it)"

    @staticmethod
    def _describe(cycle: CycleResult) -> str:
        failures = "; ".join(f"{f.task_id}#{f.try_number}: {f.error[:300]}" for f in cycle.failures)
        return (
            f"life cycle {cycle.index} ({cycle.dialect}) {cycle.duplicate} sessions {cycle.sessions}, "
            f"faults {dict(cycle.faults)}, failures: {failures or 'none'}"
        )


class SoakTaskInstance:
    """One try of a task instance: its identity and its XComs (empty at the start of a try).

    :param run_id: the life cycle's DAG run id.
    :param task_id: the task's id.
    :param try_number: the try.
    """

    def __init__(self, run_id: str, task_id: str, try_number: int) -> None:
        self.dag_id = "arr_soak"
        self.run_id = run_id
        self.task_id = task_id
        self.map_index = -1
        self.try_number = try_number
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        """Record an XCom."""
        self.xcom[key] = value

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value", **kwargs: Any) -> Any:
        """Read an XCom this try pushed."""
        return self.xcom.get(key)


def run_task(
    run_id: str, task_id: str, make_operator: Callable[[], Any], tries: int, failures: list[TaskFailure]
) -> Any:
    """Run a task as Airflow would: up to ``tries`` tries, a fresh operator and empty XComs each time.

    :param run_id: the life cycle's DAG run id.
    :param task_id: the task's id.
    :param make_operator: builds the operator for one try.
    :param tries: the most tries (1 + Airflow's ``retries``).
    :param failures: failed tries are appended here.
    :return: the task's return value, or ``None`` if every try failed.
    """
    from airflow_provider_arr._compat import AirflowFailException

    for try_number in range(1, tries + 1):
        ti = SoakTaskInstance(run_id, task_id, try_number)
        try:
            return make_operator().execute({"ti": ti})
        except Exception as error:
            failures.append(
                TaskFailure(
                    task_id, try_number, f"{type(error).__name__}: {error}", says_what_happened(error)
                )
            )
            if isinstance(error, AirflowFailException):
                return None  # Airflow does not retry these
    return None


def run_cycle(
    emulator: ArrEmulator, index: int, dialect: str, tries: int, create_timeout: float, seed: int
) -> CycleResult:
    """Run one life cycle: create (and wait) → extend → stop, with retries; see the module docstring.

    :param emulator: the emulator (its state is read to attribute sessions to the cycle).
    :param index: the life cycle's number.
    :param dialect: the API dialect to use.
    :param tries: tries per task.
    :param create_timeout: seconds the create task waits for Ready.
    :param seed: the run's seed, part of the DAG run id.
    """
    from airflow_provider_arr.operators.remote_rendering import (
        RemoteRenderingCreateSessionOperator,
        RemoteRenderingExtendSessionOperator,
        RemoteRenderingStopSessionOperator,
    )

    conn_id, run_id = CONN_IDS[dialect], f"soak__{seed}_{index:05d}"
    state = emulator.state
    result = CycleResult(index, dialect, succeeded=False)
    first, faults_before = len(state.sessions()), state.faults_injected
    lease, extend_by = ("1:00:00" if dialect == "v1" else "0:30:00"), "0:15:00"

    def create() -> RemoteRenderingCreateSessionOperator:
        return RemoteRenderingCreateSessionOperator(
            task_id="create",
            arr_conn_id=conn_id,
            max_lease_time=lease,
            wait_for_ready=True,
            deferrable=False,
            poll_interval=0.05,
            timeout=create_timeout,
        )

    created_per_try: list[int] = []

    def counted_create() -> Any:
        operator = create()
        execute = operator.execute

        def execute_and_count(context: Any) -> Any:
            before = len(state.sessions())
            try:
                return execute(context)
            finally:
                created_per_try.append(len(state.sessions()) - before)

        operator.execute = execute_and_count  # type: ignore[method-assign]
        return operator

    session_id = run_task(run_id, "create", counted_create, tries, result.failures)
    if session_id is not None:
        extended = run_task(
            run_id,
            "extend",
            lambda: RemoteRenderingExtendSessionOperator(
                task_id="extend", arr_conn_id=conn_id, session_id=session_id, extend_by=extend_by
            ),
            tries,
            result.failures,
        )
        stopped = run_task(
            run_id,
            "stop",
            lambda: RemoteRenderingStopSessionOperator(
                task_id="stop", arr_conn_id=conn_id, session_id=session_id
            ),
            tries,
            result.failures,
        )
        result.succeeded = extended is not None and stopped is not None
    records = state.sessions()[first:]
    result.sessions = [record.session_id for record in records]
    result.duplicate = _duplicate(records, created_per_try)
    result.faults = state.faults_injected - faults_before
    if session_id is not None:
        asked = _timedelta(lease) + _timedelta(extend_by)
        final = next(record.max_lease_time for record in records if record.session_id == session_id)
        if final > asked:
            result.over_extended = f"session {session_id} has a lease of {final}, asked for {asked}"
    return result


def _timedelta(timespan: str) -> timedelta:
    hours, minutes, seconds = (int(part) for part in timespan.split(":"))
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _duplicate(records: Sequence[SessionRecord], created_per_try: Sequence[int]) -> str:
    """Why a life cycle's sessions count as a duplicate, or ``""``."""
    if any(count > 1 for count in created_per_try):
        return "(one create try started several sessions)"
    ordered = sorted(records, key=lambda record: record.created_at)
    for earlier, later in itertools.pairwise(ordered):
        if earlier.ended_at is None or earlier.ended_at > later.created_at:
            return f"(session {later.session_id} started while {earlier.session_id} was still active)"
    return ""


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_soak(
    cycles: int = 200,
    chaos_rate: float = 0.1,
    seed: int = 42,
    dialects: Sequence[str] = DIALECTS,
    tries: int = 3,
    start_delay: float = 0.05,
    create_timeout: float = 1.0,
    slow_start: float = 1.5,
    max_seconds: float = 1800.0,
    progress: Callable[[CycleResult], None] | None = None,
) -> SoakReport:
    """Run the soak against an in-process emulator and return its figures.

    :param cycles: how many life cycles to run.
    :param chaos_rate: the emulator's chaos rate, per call and per new session.
    :param seed: seeds the chaos.
    :param dialects: the dialects the life cycles take turns on.
    :param tries: tries per task (Airflow's ``retries`` + 1).
    :param start_delay: seconds a session stays Starting (unless chaos makes it slow).
    :param create_timeout: seconds the create task waits for Ready; some slow starts exceed it, so
        the create stops its session and a retry starts a new one.
    :param slow_start: the most extra seconds a chaos slow start adds.
    :param max_seconds: stop starting new life cycles after this long (the report says how many ran).
    :param progress: called after each life cycle.
    """
    from airflow_provider_arr.emulator import ArrEmulator
    from airflow_provider_arr.hooks.remote_rendering import clear_token_cache

    unknown = set(dialects) - set(DIALECTS)
    if unknown or not dialects:
        raise ValueError(f"dialects must be among {DIALECTS}, got {list(dialects)}")
    started = time.monotonic()
    results: list[CycleResult] = []
    with ArrEmulator(start_delay=start_delay, token_lifetime=3600) as emulator:
        env = {}
        for dialect in DIALECTS:
            env.update(emulator.env(CONN_IDS[dialect], api_version=dialect, **CONNECTION_EXTRAS))
        emulator.state.enable_chaos(rate=chaos_rate, seed=seed, max_delay=0.3, slow_start=slow_start)
        clear_token_cache()
        with _environment(env):
            for index in range(cycles):
                if time.monotonic() - started > max_seconds:
                    break
                result = run_cycle(
                    emulator, index, dialects[index % len(dialects)], tries, create_timeout, seed
                )
                results.append(result)
                if progress is not None:
                    progress(result)
        emulator.state.disable_chaos()
        left_running = emulator.state.active_sessions()
        faults = emulator.state.faults_injected
        secrets = [emulator.account_key, *emulator.state.issued_tokens()]
    clear_token_cache()
    leaking = [
        failure.error
        for cycle in results
        for failure in cycle.failures
        if any(secret in failure.error for secret in secrets)
    ]
    return SoakReport(results, faults, left_running, time.monotonic() - started, chaos_rate, seed, leaking)


def _quiet_logs() -> None:
    """Keep the operators' and the hook's info and warning lines (retries, waits) off the console."""
    import logging

    import airflow.sdk  # noqa: F401  (configures structlog; reconfigure after it)
    import structlog

    logging.disable(logging.WARNING)
    structlog.configure(
        processors=[structlog.processors.KeyValueRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
        cache_logger_on_first_use=False,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak from the command line; exit status 1 if a session was left running or duplicated.

    :param argv: the arguments; ``sys.argv[1:]`` if omitted.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--cycles", type=int, default=200, help="life cycles to run (default: %(default)s)")
    parser.add_argument("--chaos-rate", type=float, default=0.1, help="fault rate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42, help="chaos seed (default: %(default)s)")
    parser.add_argument(
        "--dialect", choices=[*DIALECTS, "both"], default="both", help="API dialect (default: %(default)s)"
    )
    parser.add_argument("--tries", type=int, default=3, help="tries per task (default: %(default)s)")
    parser.add_argument(
        "--max-minutes", type=float, default=30, help="start no life cycle after this (default: %(default)s)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print one line per life cycle")
    args = parser.parse_args(argv)
    if args.cycles < 1 or args.tries < 1 or not 0 <= args.chaos_rate <= 1:
        parser.error("--cycles and --tries must be at least 1, --chaos-rate between 0 and 1")
    _quiet_logs()

    def progress(cycle: CycleResult) -> None:
        if args.verbose:
            print(
                f"#{cycle.index} {cycle.dialect}: {'ok' if cycle.succeeded else 'FAILED'}, "
                f"{len(cycle.sessions)} session(s), faults {dict(cycle.faults)}",
                flush=True,
            )
        elif cycle.index % 10 == 9:
            print(f"... {cycle.index + 1} life cycles", file=sys.stderr, flush=True)

    dialects = DIALECTS if args.dialect == "both" else (args.dialect,)
    report = run_soak(
        cycles=args.cycles,
        chaos_rate=args.chaos_rate,
        seed=args.seed,
        dialects=dialects,
        tries=args.tries,
        max_seconds=args.max_minutes * 60,
        progress=progress,
    )
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    # Airflow reads its home when first imported: give the soak a throwaway one, and find the package.
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="arr-soak-airflow-home-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
