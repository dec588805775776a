"""Crash suite: does any crash, retry, clear or kill leave a billed session running?

On a real deployment of its own (PostgreSQL, api-server, scheduler with the LocalExecutor,
dag-processor and triggerer as separate processes), with the crash emulator (``crash_emulator.py``:
the package's emulator plus held-back answers) as the service, sessions ``Starting`` for
``START_DELAY`` seconds, and ``[scheduler] task_instance_heartbeat_timeout`` at ``HEARTBEAT_TIMEOUT``
seconds. Each scenario runs on both API dialects (connections ``arr_v1`` and ``arr_2021``), one DAG
per scenario and dialect (``tests/e2e/dags/``), shaped as the README teaches: ``create >> render >>
stop``, ``stop.as_teardown(setups=create)``, ``retries=1`` on ``create``:

1. ``kill_task``: SIGKILL the blocking create's task process (``wait_for_ready=True``) while its
   session is Starting; Airflow retries it.
2. ``kill_retry``: the same, and the retry is killed the same way (the last try dies).
3. ``kill_supervisor``: SIGKILL the create's supervisor (the LocalExecutor worker process that forked
   the task process) instead; 3b ``kill_pod``: SIGKILL the scheduler and every process under it (the
   supervisors and task processes: a pod dying), then start the scheduler again.
4. ``kill_create_call``: SIGKILL a non-waiting create (``wait_for_ready=False``, the Ready sensor
   after it) while its create call is in flight (the emulator created the session, its answer is held).
5. ``kill_stop_call``: SIGKILL the ``stop`` teardown while its first call is in flight (held).
6. ``clear_running``: clear ``create`` (REST API ``clearTaskInstances``, its downstream tasks too) while
   ``render`` uses the Ready session.
7. ``clear_deferred``: clear a deferred create (``wait_for_ready=True, deferrable=True``).

Kills are real SIGKILLs to real PIDs: the task instance's ``pid`` from the REST API, checked to be the
process whose title Airflow set to ``airflow worker -- <task instance id>``; its supervisor is that
process's parent, checked to be a LocalExecutor worker. Scenarios of phase A run at once (fourteen
DAG runs); 3b runs alone afterwards (phase B), since it kills every running task.

If an ``arr_session_janitor`` DAG exists (``example_dags/`` or ``airflow_provider_arr/example_dags/``),
it is deployed too, and one janitor run (``arr_conn_ids`` = both connections) follows phase A; the
figures of scenarios 2 and 5 are taken after it, the others before it.

Assertions, per scenario and dialect: the scenario happened as scripted; no session of its DAG run
is left running at the end; never two sessions of its one ``create`` task instance alive at once. A
table of the figures is printed first, so that they can be read even when assertions fail.

Run it alone: ``ARR_E2E_EXECUTORS=local bash scripts/e2e.sh -k crash`` (``ARR_E2E_KEEP=1`` keeps the
logs). ``ARR_E2E_CRASH=0`` leaves it out of ``make e2e``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
E2E = os.environ.get("ARR_E2E") == "1"
EXECUTORS = [name.strip() for name in os.environ.get("ARR_E2E_EXECUTORS", "local,celery").split(",") if name]
ENABLED = E2E and "local" in EXECUTORS and os.environ.get("ARR_E2E_CRASH", "1") != "0"

if E2E:
    from e2e_deployment import AirflowDeployment, Emulator, log


def _load_spec() -> Any:
    location = HERE / "dags" / "_arr_crash_spec.py"
    module_spec = importlib.util.spec_from_file_location("arr_crash_spec", location)
    assert module_spec is not None
    assert module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


SPEC = _load_spec()
CASES = [(scenario, dialect) for scenario in SPEC.SCENARIOS for dialect in SPEC.DIALECTS]
CASE_IDS = [f"{SPEC.SCENARIOS[s]['number']}-{s}-{d}" for s, d in CASES]

#: Seconds a new session stays Starting: time to kill a waiting create, and for its retry to come
#: while the killed try's session is still Starting.
START_DELAY = 20.0
#: ``[scheduler] task_instance_heartbeat_timeout``: a task whose supervisor died is failed (and
#: retried) this long after its last heartbeat.
HEARTBEAT_TIMEOUT = 15
#: Seconds the emulator holds back an answer a scenario kills a task during.
HOLD_SECONDS = 30.0
#: Seconds each phase's DAG runs may take, all together.
PHASE_TIMEOUT = {"A": 480.0, "B": 300.0}
JANITOR_DAG_ID = "arr_session_janitor"
JANITOR_SCENARIOS = ("kill_retry", "kill_stop_call")
FINAL_RUN_STATES = ("success", "failed")
ALIVE = ("Starting", "Ready")

pytestmark = [
    pytest.mark.timeout(1200),
    pytest.mark.skipif(not ENABLED, reason="the crash suite runs with make e2e, on the LocalExecutor"),
]


# --- the cases and what the driver does to them ------------------------------------------------------


@dataclass
class Step:
    """One scripted action on a DAG run: done once ``ready`` holds, by ``act`` (which returns what it
    did, or ``None`` to try again at the next poll)."""

    name: str
    ready: Callable[[Driver, Case], bool]
    act: Callable[[Driver, Case], str | None]
    done_at: float | None = None


@dataclass(repr=False)
class Case:
    """One scenario on one dialect: its DAG run, what was done to it, what Airflow and the service show."""

    scenario: str
    dialect: str
    steps: list[Step] = field(default_factory=list)
    run_id: str | None = None
    run_state: str | None = None
    tis: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: dict[str, list[str]] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    #: The sessions when the run had finished, before the janitor run (if there was one).
    before_janitor: list[dict[str, Any]] | None = None
    janitor_applies: bool = False

    @property
    def spec(self) -> dict[str, Any]:
        return dict(SPEC.SCENARIOS[self.scenario])

    @property
    def dag_id(self) -> str:
        return str(SPEC.dag_id(self.scenario, self.dialect))

    @property
    def lease_seconds(self) -> int:
        return int(SPEC.lease_minutes(self.scenario, self.dialect)) * 60

    @property
    def label(self) -> str:
        return f"{self.spec['number']} {self.scenario} {self.dialect}"

    @property
    def pending(self) -> list[str]:
        return [step.name for step in self.steps if step.done_at is None]

    @property
    def created(self) -> int:
        return len(self.sessions)

    @property
    def left_running(self) -> int:
        return sum(1 for session in self.sessions if session["status"] in ALIVE)

    @property
    def left_before_janitor(self) -> int | None:
        if self.before_janitor is None:
            return None
        return sum(1 for session in self.before_janitor if session["status"] in ALIVE)

    @property
    def max_alive(self) -> int:
        """The most sessions of this run's ``create`` task instance alive (Starting or Ready) at once."""
        changes = []
        for session in self.sessions:
            changes.append((session["createdAt"], 1))
            if session["endedAt"] is not None:
                changes.append((session["endedAt"], -1))
        alive = most = 0
        for _, change in sorted(changes, key=lambda item: (item[0], item[1])):
            alive += change
            most = max(most, alive)
        return most

    def ti(self, task_id: str) -> dict[str, Any]:
        return self.tis.get(task_id, {})

    def __repr__(self) -> str:  # short, for pytest's assertion messages
        return f"<Case {self.label}: run {self.run_state}, {self.created} sessions>"


def _alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _lease_seconds(text: str) -> int:
    """Seconds of a .NET TimeSpan as the emulator writes it: ``[d.]hh:mm:ss[.fffffff]``."""
    match = re.fullmatch(r"(?:(\d+)\.)?(\d+):(\d+):(\d+)(?:\.\d+)?", text)
    assert match, f"unexpected maxLeaseTime {text!r}"
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


class Driver:
    """Polls the DAG runs and the emulator, and performs each case's steps when they are due."""

    def __init__(self, airflow: AirflowDeployment, emulator: Emulator) -> None:
        self.airflow = airflow
        self.emulator = emulator
        self.events: list[dict[str, Any]] = []
        self.emulator_sessions: list[dict[str, Any]] = []
        self.orphans: dict[int, Case] = {}
        self.started = time.monotonic()
        self.poll_errors = 0
        # Its own client, with a short timeout: a stuck poll must not hold the kills back for long.
        self.client = airflow.new_client()
        self.client.timeout = httpx.Timeout(10.0)

    def elapsed(self) -> str:
        return f"t+{time.monotonic() - self.started:.0f}s"

    # --- observing ---

    def _get(self, path: str, **params: Any) -> Any:
        answer = self.client.get(path, params=params)
        answer.raise_for_status()
        return answer.json()

    def poll(self, cases: list[Case]) -> bool:
        """``refresh``, tolerating a slow or failing API (a loaded api-server serves the tasks too)."""
        try:
            self.refresh(cases)
        except httpx.HTTPError as error:
            self.poll_errors += 1
            log(f"crash: polling failed ({error!r}); trying again")
            return False
        return True

    def refresh(self, cases: list[Case]) -> None:
        runs = {
            (run["dag_id"], run["dag_run_id"]): run["state"]
            for run in self._get("/dags/~/dagRuns", limit=100)["dag_runs"]
        }
        answer = self._get("/dags/~/dagRuns/~/taskInstances", limit=100, dag_id_pattern="arr_crash_")
        tis = answer["task_instances"]
        if answer["total_entries"] > len(tis):  # 16 runs of 3-4 tasks: far from it
            raise AssertionError(f"{answer['total_entries']} task instances, more than one page")
        self.events += self.emulator.events(after=len(self.events))
        self.emulator_sessions = self.emulator.sessions()
        for pid, case in list(self.orphans.items()):
            if not _alive(pid):
                case.actions.append(f"{self.elapsed()} the orphaned task process {pid} has exited")
                del self.orphans[pid]
        for case in cases:
            case.run_state = runs.get((case.dag_id, case.run_id), case.run_state)
            for ti in tis:
                if (ti["dag_id"], ti["dag_run_id"]) != (case.dag_id, case.run_id):
                    continue
                case.tis[ti["task_id"]] = ti
                seen = case.seen.setdefault(ti["task_id"], [])
                state = f"{ti['state']}#{ti['try_number']}"
                if not seen or seen[-1] != state:
                    seen.append(state)
            case.sessions = [
                session
                for session in self.emulator_sessions
                if _lease_seconds(session["maxLeaseTime"]) == case.lease_seconds
            ]

    def calls(self, case: Case, task_id: str, operation: str, **match: Any) -> list[dict[str, Any]]:
        """Calls of one operation on the case's sessions that came after the task's current try started.

        Compared on the wall clock: the task's ``start_date`` (the API) and the call's arrival (the crash
        emulator); both are this machine's clock.
        """
        started = case.ti(task_id).get("start_date")
        if not started:
            return []
        since = datetime.fromisoformat(started).timestamp()
        return [
            event
            for event in self.events
            if event["wall"] >= since
            and event["lease_seconds"] == case.lease_seconds
            and event["operation"] == operation
            and all(event.get(key) == value for key, value in match.items())
        ]

    def listed(self, case: Case, task_id: str, **match: Any) -> list[dict[str, Any]]:
        """The case's sessions as list calls answered them after the task's current try started.

        The triggerer's shared poller reads a session by listing the account: its list calls carry no
        session id, but the crash emulator records what each answer listed.
        """
        started = case.ti(task_id).get("start_date")
        if not started:
            return []
        since = datetime.fromisoformat(started).timestamp()
        return [
            session
            for event in self.events
            if event["wall"] >= since and event["operation"] == "list"
            for session in event.get("listed", ())
            if session["lease_seconds"] == case.lease_seconds
            and all(session.get(key) == value for key, value in match.items())
        ]

    # --- acting ---

    def task_process(self, case: Case, task_id: str) -> Any:
        """The live task process of the task's current try, checked by its title; ``None`` if not found."""
        import psutil

        ti = case.ti(task_id)
        if not ti.get("pid") or ti.get("state") != "running":
            return None
        try:
            process = psutil.Process(ti["pid"])
            title = " ".join(process.cmdline())
        except psutil.Error:
            return None
        if str(ti["id"]) not in title:
            return None
        return process

    def kill_task_process(self, case: Case, task_id: str) -> str | None:
        process = self.task_process(case, task_id)
        if process is None:
            return None
        try_number = case.ti(task_id)["try_number"]
        os.kill(process.pid, signal.SIGKILL)
        return f"SIGKILL {task_id} try {try_number} task process, pid {process.pid}"

    def kill_supervisor(self, case: Case, task_id: str) -> str | None:
        process = self.task_process(case, task_id)
        if process is None:
            return None
        supervisor = process.parent()
        title = " ".join(supervisor.cmdline()) if supervisor else ""
        if supervisor is None or "LocalExecutor" not in title:
            return None
        os.kill(supervisor.pid, signal.SIGKILL)
        self.orphans[process.pid] = case
        return (
            f"SIGKILL {task_id} try {case.ti(task_id)['try_number']} supervisor pid {supervisor.pid} "
            f"({title!r}); its task process {process.pid} is left orphaned"
        )

    def clear(self, case: Case, task_id: str) -> str:
        body = {
            "dry_run": False,
            "dag_run_id": case.run_id,
            "task_ids": [task_id],
            "include_downstream": True,
            "only_failed": False,
            "reset_dag_runs": True,
        }
        answer = self.airflow.api.post(f"/dags/{case.dag_id}/clearTaskInstances", json=body)
        answer.raise_for_status()
        cleared = sorted(f"{ti['task_id']}:{ti['state']}" for ti in answer.json()["task_instances"])
        return f"cleared {task_id} with its downstream tasks ({', '.join(cleared)})"

    # --- running a phase ---

    def run_phase(
        self,
        cases: list[Case],
        timeout: float,
        on_tick: Callable[[Driver, list[Case]], None] | None = None,
    ) -> None:
        for case in cases:
            if case.scenario == "kill_create_call":  # armed before the run starts: its create is the first
                self.emulator.hold(case.lease_seconds, ["create"], HOLD_SECONDS)
                case.actions.append(f"{self.elapsed()} armed: hold the answer to its create call")
        for case in cases:
            case.run_id = self.airflow.trigger(case.dag_id)
        log(f"crash: triggered {len(cases)} runs: {', '.join(case.label for case in cases)}")
        deadline = time.monotonic() + timeout
        while True:
            if not self.poll(cases) and time.monotonic() < deadline:
                time.sleep(1)
                continue
            for case in cases:
                step = next((step for step in case.steps if step.done_at is None), None)
                if step is not None and case.run_state not in FINAL_RUN_STATES and step.ready(self, case):
                    what = step.act(self, case)
                    if what is not None:
                        step.done_at = time.monotonic()
                        case.actions.append(f"{self.elapsed()} {step.name}: {what}")
                        log(f"crash: {case.label}: {what}")
            if on_tick is not None:
                on_tick(self, cases)
            if all(case.run_state in FINAL_RUN_STATES for case in cases):
                # A cleared run is final for a moment before the scheduler takes it up again.
                time.sleep(2)
                if self.poll(cases) and all(case.run_state in FINAL_RUN_STATES for case in cases):
                    break
            if time.monotonic() > deadline:
                unfinished = [case.label for case in cases if case.run_state not in FINAL_RUN_STATES]
                log(f"crash: runs unfinished after {timeout:g} s: {unfinished}")
                for case in cases:
                    if case.run_state not in FINAL_RUN_STATES:
                        case.actions.append(f"{self.elapsed()} run still {case.run_state} at the timeout")
                break
            time.sleep(1)

    def cleanup_orphans(self) -> None:
        """SIGKILL the task processes whose supervisor the suite killed, if they still run."""
        import psutil

        for pid, case in self.orphans.items():
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                if "airflow worker --" in " ".join(process.cmdline()):
                    process.kill()
                    case.actions.append(f"{self.elapsed()} the orphaned task process {pid} still ran: killed")
                    log(f"crash: killed the orphaned task process {pid} of {case.label}, still running")


# --- conditions the steps wait for ---------------------------------------------------------------------


def create_waiting(try_number: int, task_id: str = "create") -> Callable[[Driver, Case], bool]:
    """The task's try ``try_number`` runs and waits: a status read of its Starting session came after
    the try was first seen running."""

    def ready(driver: Driver, case: Case) -> bool:
        ti = case.ti(task_id)
        if ti.get("state") != "running" or ti.get("try_number") != try_number or not ti.get("pid"):
            return False
        return bool(driver.calls(case, task_id, "properties", session_status="Starting"))

    return ready


def held_call(task_id: str, operations: tuple[str, ...]) -> Callable[[Driver, Case], bool]:
    """The task runs, and a call of one of ``operations`` on the case's sessions is held back."""

    def ready(driver: Driver, case: Case) -> bool:
        if case.ti(task_id).get("state") != "running":
            return False
        return any(
            event["held"] for operation in operations for event in driver.calls(case, task_id, operation)
        )

    return ready


def render_using_session(driver: Driver, case: Case) -> bool:
    """``render`` runs and has read its session Ready (it now "renders" for a while)."""
    if case.ti("render").get("state") != "running":
        return False
    return bool(driver.calls(case, "render", "properties", session_status="Ready"))


def create_deferred(driver: Driver, case: Case) -> bool:
    """``create`` is deferred and its trigger polls the session from the triggerer (the operator itself
    reads no status of its new session before deferring): either a read of the session Starting (a
    wait of its own) or a list call, the shared poller's, whose answer holds the session Starting. A
    list before the create (v1 lists the account first) cannot hold it: it did not exist yet."""
    if case.ti("create").get("state") != "deferred":
        return False
    if driver.calls(case, "create", "properties", session_status="Starting"):
        return True
    return bool(driver.listed(case, "create", session_status="Starting"))


def succeeded(task_id: str) -> Callable[[Driver, Case], bool]:
    return lambda driver, case: case.ti(task_id).get("state") == "success"


def arm_stop_hold(driver: Driver, case: Case) -> str:
    driver.emulator.hold(case.lease_seconds, ["properties", "stop"], HOLD_SECONDS)
    return "armed: hold the answer to the next status read or stop of its session (the teardown's)"


def steps_for(scenario: str, pod_kill: PodKill) -> list[Step]:
    """The scripted actions of a scenario, in order."""
    kill_create = lambda driver, case: driver.kill_task_process(case, "create")  # noqa: E731
    if scenario == "kill_task":
        return [Step("kill create try 1 while Starting", create_waiting(1), kill_create)]
    if scenario == "kill_retry":
        return [
            Step("kill create try 1 while Starting", create_waiting(1), kill_create),
            Step("kill create try 2 while Starting", create_waiting(2), kill_create),
        ]
    if scenario == "kill_supervisor":
        return [
            Step(
                "kill the supervisor of create try 1 while Starting",
                create_waiting(1),
                lambda driver, case: driver.kill_supervisor(case, "create"),
            )
        ]
    if scenario == "kill_pod":
        return [
            Step("create try 1 waits while Starting", create_waiting(1), lambda d, c: "waits"),
            Step("pod kill", lambda d, c: pod_kill.done, lambda d, c: "its create died with the scheduler"),
        ]
    if scenario == "kill_create_call":
        return [
            Step(
                "kill create try 1 during its create call",
                held_call("create", ("create",)),
                kill_create,
            )
        ]
    if scenario == "kill_stop_call":
        return [
            Step("arm after render", succeeded("render"), arm_stop_hold),
            Step(
                "kill stop during its first call",
                held_call("stop", ("properties", "stop")),
                lambda driver, case: driver.kill_task_process(case, "stop"),
            ),
        ]
    if scenario == "clear_running":
        return [
            Step(
                "clear create while render uses the session",
                render_using_session,
                lambda d, c: d.clear(c, "create"),
            )
        ]
    if scenario == "clear_deferred":
        return [Step("clear create while it is deferred", create_deferred, lambda d, c: d.clear(c, "create"))]
    raise AssertionError(f"unknown scenario {scenario}")


class PodKill:
    """Phase B: once every case's create waits, SIGKILL the scheduler and all under it, then restart it.

    If one create waits and another does not within 10 s (it missed its Starting window), the kill goes
    ahead for the one; the other case then shows as not reproduced.
    """

    def __init__(self) -> None:
        self.done = False

    def __call__(self, driver: Driver, cases: list[Case]) -> None:
        waiting = [case.steps[0].done_at for case in cases if case.steps[0].done_at is not None]
        if self.done or not waiting:
            return
        if len(waiting) < len(cases) and time.monotonic() - min(waiting) < 10:
            return
        killed = driver.airflow.kill_component("scheduler")
        what = f"SIGKILL the scheduler and everything under it ({len(killed)} processes: {killed})"
        for case in cases:
            case.actions.append(f"{driver.elapsed()} pod kill: {what}")
        time.sleep(2)
        driver.airflow.restart_component("scheduler")
        for case in cases:
            case.actions.append(f"{driver.elapsed()} scheduler started again")
        self.done = True


# --- the deployment --------------------------------------------------------------------------------------


def find_janitor() -> Path | None:
    """The janitor DAG file, if the repository has one yet."""
    for folder in (ROOT / "example_dags", ROOT / "airflow_provider_arr" / "example_dags"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.py")):
            text = path.read_text(errors="replace")
            if path.stem == JANITOR_DAG_ID or re.search(rf"[\"']{JANITOR_DAG_ID}[\"']", text):
                return path
    return None


def build_dags_folder(target: Path, janitor: Path | None) -> None:
    """The crash DAGs, and the janitor with the private helper modules (``_*.py``) beside it."""
    target.mkdir(parents=True)
    for path in (HERE / "dags").glob("*.py"):
        shutil.copy2(path, target / path.name)
    if janitor is not None:
        shutil.copy2(janitor, target / janitor.name)
        for helper in janitor.parent.glob("_*.py"):
            if helper.name != "__init__.py" and not (target / helper.name).exists():
                shutil.copy2(helper, target / helper.name)


def connections(emulator_connection: str) -> dict[str, str]:
    """``AIRFLOW_CONN_ARR_V1`` and ``AIRFLOW_CONN_ARR_2021``: the emulator, one per API dialect."""
    base = json.loads(emulator_connection)
    env = {}
    for conn_id, api_version in SPEC.DIALECTS.values():
        connection = {**base, "extra": {**base["extra"], "api_version": api_version}}
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(connection)
    return env


def run_janitor(driver: Driver, cases: list[Case]) -> str:
    """Trigger one janitor run over both connections and wait for it; return its final state."""
    airflow = driver.airflow
    airflow.wait_for_dag(JANITOR_DAG_ID)
    for case in cases:
        case.before_janitor = list(case.sessions)
    conn_ids = [conn_id for conn_id, _ in SPEC.DIALECTS.values()]
    run_id = airflow.trigger(JANITOR_DAG_ID, {"arr_conn_ids": conn_ids})
    state = "running"
    deadline = time.monotonic() + 180
    while state not in FINAL_RUN_STATES and time.monotonic() < deadline:
        time.sleep(1)
        state = airflow.run_state(JANITOR_DAG_ID, run_id)
    # Paused again, so that no scheduled janitor run hides what phase B leaves.
    airflow.api.patch(f"/dags/{JANITOR_DAG_ID}", json={"is_paused": True}).raise_for_status()
    driver.refresh(cases)
    tasks = {ti["task_id"]: ti["state"] for ti in airflow.task_instances(JANITOR_DAG_ID, run_id)}
    log(f"crash: janitor run {run_id} ended {state}: {tasks}")
    return f"{state} {tasks}"


@dataclass(repr=False)
class CrashResults:
    """What the suite did and saw, per case."""

    cases: dict[tuple[str, str], Case]
    janitor: str
    wall_time: float

    def __repr__(self) -> str:  # short, for pytest's assertion messages
        return f"<CrashResults: {len(self.cases)} cases, {self.wall_time:.0f} s>"


def table(results: CrashResults) -> str:
    """The figures per scenario and dialect, as a fixed-width table."""
    header = (
        f"{'#':<3} {'scenario':<17} {'dialect':<8} {'run':<8} {'create':<22} {'render':<16} "
        f"{'stop':<16} {'created':>7} {'left running':>12} {'max alive':>9}  verdict"
    )
    lines = [header, "-" * len(header)]
    for case in results.cases.values():
        left = str(case.left_running)
        if case.janitor_applies and case.left_before_janitor is not None:
            left = f"{case.left_before_janitor}->{case.left_running}"
        problems = []
        if case.pending:
            problems.append("not reproduced")
        if case.left_running:
            problems.append("LEAK")
        if case.max_alive > 1:
            problems.append("DUPLICATE")
        lines.append(
            f"{case.spec['number']:<3} {case.scenario:<17} {case.dialect:<8} {case.run_state or '-':<8} "
            f"{_states(case, 'create'):<22} {_states(case, 'render'):<16} {_states(case, 'stop'):<16} "
            f"{case.created:>7} {left:>12} {case.max_alive:>9}  {', '.join(problems) or 'ok'}"
        )
    lines.append(f"janitor: {results.janitor}")
    lines.append(
        "left running a->b: before -> after the janitor run; create/render/stop: final state#try; "
        f"suite wall time {results.wall_time:.0f} s"
    )
    return "\n".join(lines)


def _states(case: Case, task_id: str) -> str:
    ti = case.ti(task_id)
    return f"{ti.get('state')}#{ti.get('try_number')}" if ti else "-"


def details(results: CrashResults) -> str:
    """What the driver did to each run, the task states seen, and each session of the run."""
    lines = []
    for case in results.cases.values():
        lines.append(f"--- {case.label}: {case.dag_id} run {case.run_id} ended {case.run_state}")
        lines.extend(f"    {action}" for action in case.actions)
        if case.pending:
            lines.append(f"    NOT DONE: {case.pending}")
        for task_id, states in case.seen.items():
            lines.append(f"    {task_id}: {' > '.join(states)}")
        for session in case.sessions:
            lived = (session["endedAt"] or time.monotonic()) - session["createdAt"]
            lines.append(
                f"    session {session['sessionId'][-24:]}: {session['status']}, "
                f"{'ended' if session['endedAt'] else 'alive'} after {lived:.0f} s"
            )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def crash(postgres: Any, e2e_root: Path) -> Iterator[CrashResults]:
    """Deploy, run phase A (all but 3b at once), the janitor if present, phase B (3b); stop it all."""
    started = time.monotonic()
    base = e2e_root / "crash"
    base.mkdir()
    janitor = find_janitor()
    build_dags_folder(base / "dags", janitor)
    emulator = airflow = driver = None
    pod_kill = PodKill()
    cases = {(s, d): Case(s, d, steps=steps_for(s, pod_kill)) for s, d in CASES}
    phase_a = [case for case in cases.values() if case.spec["phase"] == "A"]
    phase_b = [case for case in cases.values() if case.spec["phase"] == "B"]
    janitor_state = "not reached"
    try:
        program = [str(HERE / "crash_emulator.py")]
        for scenario, dialect in CASES:
            if "start_delay" in SPEC.SCENARIOS[scenario]:
                lease = SPEC.lease_minutes(scenario, dialect) * 60
                program += ["--slow-start", f"{lease}:{SPEC.SCENARIOS[scenario]['start_delay']}"]
        emulator = Emulator(base, start_delay=START_DELAY, program=program)
        log(f"crash: emulator at {emulator.url}, sessions Starting for {START_DELAY:g} s")
        extra_env = {
            **connections(emulator.connection),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            # A restarted scheduler resets the running tasks of the one it replaces once that one's job
            # counts as dead (scheduler_health_check_threshold, 30 s) and it looks for orphans (this
            # interval, 300 s by default, which would leave 3b's runs "running" for five minutes). The
            # threshold stays at its default: at 10 s a busy scheduler declared its own job dead and
            # reset its own running tasks again and again.
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
            # Fourteen runs at once, each with a waiting create and then its render: no queueing.
            "AIRFLOW__CORE__PARALLELISM": "24",
        }
        airflow = AirflowDeployment(
            "crash",
            base,
            postgres.create_database("airflow_crash"),
            emulator.connection,
            dags_folder=base / "dags",
            extra_env=extra_env,
        )
        airflow.start()
        for scenario, dialect in CASES:
            airflow.wait_for_dag(SPEC.dag_id(scenario, dialect))
        driver = Driver(airflow, emulator)
        try:
            driver.run_phase(phase_a, PHASE_TIMEOUT["A"])
            janitor_state = janitor_pass(driver, janitor, phase_a)
            driver.run_phase(phase_b, PHASE_TIMEOUT["B"], on_tick=pod_kill)
            driver.cleanup_orphans()
        finally:  # the figures so far, also when a phase failed
            results = CrashResults(cases, janitor_state, time.monotonic() - started)
            report = table(results)
            (base / "crash-results.txt").write_text(report + "\n\n" + details(results) + "\n")
            with contextlib.suppress(httpx.HTTPError):
                (base / "crash-events.json").write_text(json.dumps(emulator.events(), indent=1))
            print(
                f"\n===== crash suite =====\n{report}\n\n{details(results)}", file=sys.__stderr__, flush=True
            )
        yield results
    except BaseException:
        if airflow is not None:
            print(f"\n===== crash: component logs =====\n{airflow.log_tails()}", file=sys.__stderr__)
        raise
    finally:
        if driver is not None:
            driver.cleanup_orphans()
        for component in (airflow, emulator):
            if component is not None:
                component.stop()
        log(f"crash: stopped; {time.monotonic() - started:.1f} s from start to stop")


def janitor_pass(driver: Driver, janitor: Path | None, cases: list[Case]) -> str:
    """One janitor run after phase A, if the janitor exists; what the other scenarios left is counted
    before it. Returns what happened, for the report."""
    if janitor is None:
        state = (
            f"no {JANITOR_DAG_ID} DAG in example_dags/ or airflow_provider_arr/example_dags/: "
            "janitor step skipped, scenarios 2 and 5 counted without it"
        )
    else:
        for case in cases:
            case.janitor_applies = case.scenario in JANITOR_SCENARIOS
        try:
            outcome = run_janitor(driver, cases)
        except Exception as error:  # its failure is a finding too; phase B still runs
            outcome = f"could not run: {error!r}"
        state = f"{janitor.relative_to(ROOT)} run after phase A: {outcome}"
    log(f"crash: {state}")
    for case in cases:  # the janitor is not part of the other scenarios: count what their runs left
        if not case.janitor_applies and case.before_janitor is not None:
            stopped = (case.left_before_janitor or 0) - case.left_running
            if stopped:
                case.actions.append(f"the janitor stopped {stopped} of its sessions (counted as left)")
            case.sessions = case.before_janitor
    return state


# --- the assertions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("scenario", "dialect"), CASES, ids=CASE_IDS)
def test_crash_leaves_no_session_running(crash: CrashResults, scenario: str, dialect: str) -> None:
    case = crash.cases[(scenario, dialect)]
    assert not case.pending, f"{case.label}: the scenario did not happen as scripted: {case.pending}"
    assert case.left_running == 0, (
        f"{case.label}: {case.left_running} of {case.created} sessions left running "
        f"(run {case.run_state}); {case.actions}"
    )


@pytest.mark.parametrize(("scenario", "dialect"), CASES, ids=CASE_IDS)
def test_crash_never_two_sessions_for_one_task_instance(
    crash: CrashResults, scenario: str, dialect: str
) -> None:
    case = crash.cases[(scenario, dialect)]
    assert not case.pending, f"{case.label}: the scenario did not happen as scripted: {case.pending}"
    assert case.max_alive <= 1, (
        f"{case.label}: {case.max_alive} sessions of one create task instance alive at once "
        f"({case.created} created); {case.actions}"
    )
