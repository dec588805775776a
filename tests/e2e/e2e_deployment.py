"""A real, multi-process Airflow deployment on loopback, for the end-to-end test.

PostgreSQL (a throwaway cluster in a temporary directory), optionally Redis, the ARR emulator, and
Airflow's scheduler, dag-processor, triggerer and api-server (plus a Celery worker for the
CeleryExecutor) as separate processes, each in its own process group so that stopping it stops its
children too. Everything started here is stopped by ``stop()``/``close()``, which are safe to call
after a partial start.

The system packages (PostgreSQL, Redis) and the Python drivers are installed beforehand by
``scripts/e2e.sh``; this module only finds and runs them.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from airflow_provider_arr.emulator.process import EmulatorProcess

ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = ROOT / "example_dags"
BIN = Path(sys.executable).parent
#: Seconds a new emulated session stays Starting. Longer than the time from the create task's end to the
#: sensor's first look (a new task process on a busy two-core machine: 5-15 s), so that the sensor finds
#: the session Starting and defers.
EMULATOR_START_DELAY = 25.0


def log(message: str) -> None:
    """Progress lines, shown even when pytest captures output (the test takes minutes)."""
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", file=sys.__stderr__, flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Call ``check`` until it returns something truthy; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as error:
            last_error = error
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what} (last error: {last_error!r})")


def tail(path: Path, lines: int = 60) -> str:
    """The last lines of a log file, or a note that it is missing."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} not found)"


class Service:
    """One long-running process in its own session (process group), logging to a file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_path: Path, **popen: Any):
        self.name = name
        self.command = command
        self.log_path = log_path
        with log_path.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **popen,
            )

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def check_alive(self) -> None:
        """Raise, with the end of its log, if the process has exited."""
        if not self.alive():
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}; its log ends with:\n"
                f"{tail(self.log_path)}"
            )

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it is still there after ``timeout`` seconds."""
        started = time.monotonic()
        group = self.process.pid  # start_new_session: the group id is the leader's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{self.name} did not stop within {timeout:g} s; killing it")
        # Children (task processes, gunicorn/uvicorn workers, the log server) may outlive the leader.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        log(f"stopped {self.name} (pid {group}) in {time.monotonic() - started:.1f} s")


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise RuntimeError(
        f"PostgreSQL's {name} was not found; scripts/e2e.sh installs it (apt-get install postgresql)"
    )


class Postgres:
    """A throwaway PostgreSQL cluster on a free loopback port, data in a temporary directory.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user that the
    Debian package creates.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.data = workdir / "pgdata"
        self.port = free_port()
        self.log_path = workdir / "postgres.log"
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.started = False

    def _run(self, *command: str) -> None:
        if os.geteuid() == 0:
            command = ("runuser", "-u", "postgres", "--", *command)
        subprocess.run(command, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd="/")

    def start(self) -> Postgres:
        """Create the cluster (trust authentication, loopback only) and start it."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres")
        self._run(
            _postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8"
        )
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.workdir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            _postgres_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log_path),
            "-w",
            "start",
        )
        self.started = True
        return self

    def create_database(self, name: str) -> str:
        """Create a database; return its SQLAlchemy URL (psycopg2)."""
        self._run(_postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the cluster (fast shutdown); safe if it never started."""
        if self.started:
            try:
                self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
            except subprocess.CalledProcessError as error:
                log(f"pg_ctl stop failed: {error.stdout!r}")
            self.started = False


class Emulator:
    """The ARR emulator as a separate process (its CLI, through ``EmulatorProcess``), on a free port."""

    def __init__(
        self, workdir: Path, start_delay: float = EMULATOR_START_DELAY, program: list[str] | None = None
    ) -> None:
        """Start it; ``program`` replaces ``-m airflow_provider_arr.emulator`` (same options and banner)."""
        self.process = EmulatorProcess(
            start_delay=start_delay,
            log_path=workdir / "emulator.log",
            startup_timeout=30,
            start_new_session=True,
        )
        if program:
            self.process.command[1:3] = program
        self.process.start()
        self.url = self.process.url
        self.connection = self.process.connection_json()

    def sessions(self) -> list[dict[str, Any]]:
        """Every session the emulator ever created, with its current state."""
        return list(httpx.get(f"{self.url}/_emulator/sessions", timeout=10).json())

    def events(self, after: int = 0) -> list[dict[str, Any]]:
        """The session calls recorded after number ``after`` (crash_emulator.py only)."""
        return list(httpx.get(f"{self.url}/_crash/events", params={"after": after}, timeout=10).json())

    def hold(self, lease_seconds: int, operations: list[str], seconds: float, count: int = 1) -> None:
        """Hold back the next ``count`` answers to such calls on that lease's sessions (crash_emulator.py)."""
        rule = {"lease_seconds": lease_seconds, "operations": operations, "seconds": seconds, "count": count}
        httpx.post(f"{self.url}/_crash/hold", json=rule, timeout=10).raise_for_status()

    def stop(self) -> None:
        """Stop the emulator process."""
        started = time.monotonic()
        self.process.stop(timeout=10)
        log(f"stopped emulator (pid {self.process.pid}) in {time.monotonic() - started:.1f} s")


class Redis:
    """A throwaway Redis server (the Celery broker) on a free loopback port, nothing persisted."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        command = [
            server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ]
        self.service = Service("redis", command, dict(os.environ), workdir / "redis.log")
        wait_for("Redis", self._ping, 20, 0.1)

    def _ping(self) -> bool:
        self.service.check_alive()
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    @property
    def url(self) -> str:
        """The broker URL for Celery."""
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """Stop the server."""
        self.service.stop(timeout=10)


class AirflowDeployment:
    """Airflow 3 as its users run it: one process per component, a PostgreSQL metadata database.

    :param name: a short name (``local`` or ``celery``), used for the database and the directory.
    :param workdir: a directory of its own; ``AIRFLOW_HOME`` and the logs go there.
    :param database_url: the metadata database (SQLAlchemy URL).
    :param connection: the ``AIRFLOW_CONN_ARR_DEFAULT`` value (the emulator's connection JSON).
    :param executor: ``LocalExecutor`` or ``CeleryExecutor``.
    :param broker_url: the Celery broker, for ``CeleryExecutor``.
    """

    def __init__(
        self,
        name: str,
        workdir: Path,
        database_url: str,
        connection: str,
        executor: str = "LocalExecutor",
        broker_url: str | None = None,
        dags_folder: Path = DAGS_FOLDER,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.executor = executor
        self.home = workdir / "airflow-home"
        self.logs = workdir / "process-logs"
        for directory in (self.home, self.logs, workdir / "renders"):
            directory.mkdir(parents=True, exist_ok=True)
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.username, self.password = "admin", secrets.token_urlsafe(16)
        # A viewer too: the operations view's browser test signs in with both roles.
        self.viewer_password = secrets.token_urlsafe(16)
        passwords_file = self.home / "passwords.json"
        passwords_file.write_text(json.dumps({self.username: self.password, "viewer": self.viewer_password}))
        from cryptography.fernet import Fernet

        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin,viewer:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # Quick loops: the defaults suit production (seconds to minutes), not a test.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            # The provider under test: the connection for every component, fast example DAGs.
            "AIRFLOW_CONN_ARR_DEFAULT": connection,
            "ARR_EXAMPLE_POLL_INTERVAL": "1",
            "ARR_RENDER_OUTPUT_DIR": str(workdir / "renders"),
        }
        self.env.update(extra_env or {})
        if broker_url is not None:
            self.env["AIRFLOW__CELERY__BROKER_URL"] = broker_url
            self.env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + database_url.replace("+psycopg2", "")
            self.env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = "8"
        self.services: list[Service] = []
        self._token: str | None = None
        self._client: httpx.Client | None = None

    # --- processes -------------------------------------------------------------------------------

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run an ``airflow`` CLI command with the deployment's environment; raise if it fails."""
        result = subprocess.run(
            [str(BIN / "airflow"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.home,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                f"{result.stderr[-3000:]}"
            )
        return result

    def start(self) -> AirflowDeployment:
        """Migrate the database, start every component, and wait until the API reports them healthy."""
        started = time.monotonic()
        self.airflow("db", "migrate")
        log(f"{self.name}: database migrated in {time.monotonic() - started:.1f} s")
        components = [["api-server"], ["scheduler"], ["dag-processor"], ["triggerer"]]
        if self.executor == "CeleryExecutor":
            components.append(["celery", "worker", "--without-mingle", "--without-gossip"])
        for args in components:
            self.services.append(self._start_component(args))
        wait_for("the api-server and healthy components", self._healthy, 180, 1.0)
        log(f"{self.name}: components healthy after {time.monotonic() - started:.1f} s")
        return self

    def _start_component(self, args: list[str]) -> Service:
        name = "-".join(args[:2]) if args[0] == "celery" else args[0]
        command = [str(BIN / "airflow"), *args]
        return Service(name, command, self.env, self.logs / f"{name}.log", cwd=self.home)

    def service(self, name: str) -> Service:
        """The running component of that name (``scheduler``, ``triggerer``, ...)."""
        (service,) = [service for service in self.services if service.name == name]
        return service

    def kill_component(self, name: str) -> list[int]:
        """SIGKILL a component and every process under it, as when its pod or machine dies.

        Its process group is not enough: Airflow's task processes each lead a group of their own. The
        processes are collected first (the leader's descendants), then all killed at once, leader first
        so that it cannot start new ones. Returns the PIDs killed.
        """
        import psutil

        service = self.service(name)
        leader = psutil.Process(service.process.pid)
        victims = [leader, *leader.children(recursive=True)]
        killed = []
        for process in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
                killed.append(process.pid)
        service.process.wait(timeout=10)
        psutil.wait_procs(victims, timeout=10)
        self.services.remove(service)
        log(f"{self.name}: SIGKILLed {name} and everything under it: pids {killed}")
        return killed

    def restart_component(self, name: str, timeout: float = 120) -> None:
        """Start a component (killed before) again and wait until the API reports it healthy."""
        args = name.split("-") if name.startswith("celery") else [name]
        if args[0] == "celery":
            args += ["--without-mingle", "--without-gossip"]
        self.services.append(self._start_component(args))
        wait_for(f"{name} to be healthy again", self._healthy, timeout, 1.0)
        log(f"{self.name}: {name} restarted and healthy")

    def _healthy(self) -> bool:
        for service in self.services:
            service.check_alive()
        health = httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).json()
        return all(
            health.get(component, {}).get("status") == "healthy"
            for component in ("metadatabase", "scheduler", "triggerer", "dag_processor")
        )

    def check_alive(self) -> None:
        """Raise if a component has died."""
        for service in self.services:
            service.check_alive()

    def stop(self) -> None:
        """Stop every component (process groups), in reverse order of start."""
        if self._client is not None:
            self._client.close()
            self._client = None
        for service in reversed(self.services):
            service.stop()
        self.services.clear()

    def log_tails(self, lines: int = 40) -> str:
        """The end of every component's log, for a failure report."""
        return "\n".join(
            f"----- {path.name} -----\n{tail(path, lines)}" for path in sorted(self.logs.glob("*.log"))
        )

    # --- REST API --------------------------------------------------------------------------------

    def login(self, username: str | None = None) -> str:
        """A JWT for the REST API from ``/auth/token`` (simple auth manager): the admin's, or ``viewer``'s."""
        password = self.viewer_password if username == "viewer" else self.password
        answer = httpx.post(
            f"{self.api_url}/auth/token",
            json={"username": username or self.username, "password": password},
            timeout=30,
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def new_client(self) -> httpx.Client:
        """A new authenticated HTTP client for the REST API (``/api/v2``); one per thread."""
        if self._token is None:
            self._token = self.login()
        return httpx.Client(
            base_url=f"{self.api_url}/api/v2", headers={"Authorization": f"Bearer {self._token}"}, timeout=30
        )

    @property
    def api(self) -> httpx.Client:
        """The authenticated HTTP client of the main thread."""
        if self._client is None:
            self._client = self.new_client()
        return self._client

    def get(self, path: str, **params: Any) -> Any:
        """GET a REST API path (relative to ``/api/v2``); raise on an error status."""
        answer = self.api.get(path, params=params)
        answer.raise_for_status()
        return answer.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Wait until the dag-processor has parsed and serialized a DAG."""

        def parsed() -> bool:
            self.check_alive()
            return self.api.get(f"/dags/{dag_id}/details").status_code == 200

        wait_for(f"DAG {dag_id} to be parsed", parsed, timeout, 1.0)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Unpause a DAG and trigger a run; return the run id."""
        answer = self.api.patch(f"/dags/{dag_id}", json={"is_paused": False})
        answer.raise_for_status()
        answer = self.api.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        answer.raise_for_status()
        return str(answer.json()["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        """The state of a DAG run."""
        return str(self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The task instances of a run (mapped ones included)."""
        return list(self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"])

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        """An XCom value, deserialized."""
        entry = self.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            map_index=map_index,
            deserialize=True,
        )
        return entry["value"]

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, expect: tuple[str, ...] = (), try_number: int = 1
    ) -> str:
        """A task try's log as the UI shows it (the worker's part and the triggerer's), as text.

        The triggerer's part is a separate file that the API server merges in; it can lag the task's
        end by moments, so the log is read again (for up to 20 s) until it holds every ``expect``.
        """
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"

        def read() -> str:
            answer = self.api.get(path, params={"full_content": True}, headers={"Accept": "application/json"})
            answer.raise_for_status()
            lines = answer.json()["content"]
            return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)

        deadline = time.monotonic() + 20
        text = read()
        while not all(part in text for part in expect) and time.monotonic() < deadline:
            time.sleep(1)
            text = read()
        return text


class RunWatcher:
    """Polls DAG runs from a background thread until all finish, recording every task-instance state.

    The sensor's trip through ``deferred`` lasts seconds (the emulator keeps a session Starting for
    :data:`EMULATOR_START_DELAY`), so polling twice a second from the moment of triggering sees it,
    whatever the tests do meanwhile.

    :param deployment: the deployment the runs belong to.
    :param runs: label -> (dag_id, run_id).
    :param timeout: seconds after which the watcher gives up.
    :param fail_when_deferred: label -> task id: mark that run failed through the REST API (as a user
        does in the UI) as soon as that task is ``deferred`` and its trigger polls in the triggerer.
    """

    def __init__(
        self,
        deployment: AirflowDeployment,
        runs: dict[str, tuple[str, str]],
        timeout: float,
        fail_when_deferred: dict[str, str] | None = None,
    ) -> None:
        self.deployment = deployment
        self.runs = runs
        self.fail_when_deferred = dict(fail_when_deferred or {})
        self.marked_failed: set[str] = set()
        self.seen: dict[str, dict[tuple[str, int], list[str]]] = {label: {} for label in runs}
        self.final: dict[str, str] = {}
        self.finished_after: dict[str, float] = {}
        self.error: BaseException | None = None
        self._started = time.monotonic()
        self._deadline = self._started + timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="run-watcher", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        try:
            with self.deployment.new_client() as client:
                while len(self.final) < len(self.runs) and not self._stop.is_set():
                    if time.monotonic() > self._deadline:
                        unfinished = sorted(set(self.runs) - set(self.final))
                        raise TimeoutError(
                            f"runs still unfinished: {unfinished}; the states their tasks went through: "
                            + "; ".join(self.describe(label) for label in unfinished)
                        )
                    self.deployment.check_alive()
                    self._poll(client)
                    self._stop.wait(0.5)
        except BaseException as error:
            self.error = error

    def _poll(self, client: httpx.Client) -> None:
        for label, (dag_id, run_id) in self.runs.items():
            if label in self.final:
                continue
            run = client.get(f"/dags/{dag_id}/dagRuns/{run_id}")
            run.raise_for_status()
            tis = client.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
            tis.raise_for_status()
            for ti in tis.json()["task_instances"]:
                states = self.seen[label].setdefault((ti["task_id"], ti["map_index"]), [])
                if not states or states[-1] != ti["state"]:
                    states.append(ti["state"])
            task_id = self.fail_when_deferred.get(label)
            if (
                task_id
                and label not in self.marked_failed
                and self.states_seen(label, task_id)[-1:] == ["deferred"]
                and self._trigger_is_polling(client, dag_id, run_id, task_id)
            ):
                answer = client.patch(f"/dags/{dag_id}/dagRuns/{run_id}", json={"state": "failed"})
                answer.raise_for_status()
                self.marked_failed.add(label)
                log(f"marked run {label} failed while {task_id} was deferred")
                continue
            if run.json()["state"] in ("success", "failed"):
                self.final[label] = run.json()["state"]
                self.finished_after[label] = time.monotonic() - self._started

    @staticmethod
    def _trigger_is_polling(client: httpx.Client, dag_id: str, run_id: str, task_id: str) -> bool:
        """Whether the task's trigger runs in the triggerer: its polling lines are in the task's log.

        A task is ``deferred`` as soon as it hands its trigger over, before a triggerer picks it up;
        marking the run failed in between would kill a trigger that never ran.
        """
        answer = client.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1",
            params={"full_content": True},
            headers={"Accept": "application/json"},
        )
        return answer.status_code == 200 and "RemoteRenderingSessionTrigger" in answer.text

    def wait(self) -> dict[str, str]:
        """Block until every run has finished; return the final states by label."""
        self._thread.join()
        if self.error is not None:
            raise RuntimeError(f"watching the DAG runs failed: {self.error!r}") from self.error
        return self.final

    def stop(self) -> None:
        """Stop polling (at teardown, if a test failed early)."""
        self._stop.set()
        self._thread.join(timeout=10)

    def describe(self, label: str) -> str:
        """``label: task -> state -> state, ...``: what the watcher saw of one run's task instances."""
        tasks = ", ".join(
            f"{task_id}{'' if map_index < 0 else f'[{map_index}]'} {' -> '.join(map(str, states))}"
            for (task_id, map_index), states in sorted(self.seen[label].items())
        )
        return f"{label}: {tasks or 'no task instances seen'}"

    def states_seen(self, label: str, task_id: str, map_index: int = -1) -> list[str]:
        """Every state one task instance was seen in, in order (consecutive repeats collapsed)."""
        return self.seen[label].get((task_id, map_index), [])


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A temporary directory, removed afterwards unless ``ARR_E2E_KEEP=1`` (then its path is logged)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        if os.environ.get("ARR_E2E_KEEP") == "1":
            log(f"kept {path} (ARR_E2E_KEEP=1)")
        else:
            shutil.rmtree(path, ignore_errors=True)
