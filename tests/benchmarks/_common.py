"""Helpers shared by the benchmark scripts: the emulator in its own process, raw HTTP, stats, results.

Nothing here imports Airflow or the provider when imported, so a script can measure those imports
itself (the emulator's launcher is imported when an emulator starts).
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = ROOT / ".bench"
RESULTS = BENCH_DIR / "results.json"
HERE = Path(__file__).resolve().parent


def bench_env(**extra: str) -> dict[str, str]:
    """Environment for child interpreters: a throwaway AIRFLOW_HOME, no example DAGs, cached bytecode.

    Bytecode is cached (under ``.bench/pycache``) even where ``PYTHONDONTWRITEBYTECODE`` is set, as
    in any real deployment: without it every import would compile its sources again.
    """
    home = BENCH_DIR / "airflow-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONPYCACHEPREFIX": str(BENCH_DIR / "pycache"),
            **extra,
        }
    )
    return env


def setup_airflow_env() -> None:
    """Give this interpreter the same throwaway AIRFLOW_HOME, before anything imports Airflow."""
    for name, value in bench_env().items():
        if name.startswith("AIRFLOW"):
            os.environ.setdefault(name, value)


# ------------------------------------------------------------------------------------ the emulator


class EmulatorProcess:
    """The emulator's command line in a separate process (the provider's ``EmulatorProcess``), with raw
    HTTP helpers and the bench environment.

    The provider's class is imported when the emulator starts, not with this module: the child
    interpreters that measure imports and memory import this module too, and must not find the
    emulator's web stack already loaded.

    :param start_delay: seconds a new session stays Starting.
    :param log_name: file (under ``.bench/``) for the emulator's output.
    :param options: more command-line options of the emulator (``--page-size 50``).
    """

    def __init__(
        self, start_delay: float, log_name: str = "emulator.log", options: tuple[str, ...] = ()
    ) -> None:
        self.start_delay = start_delay
        self.options = options
        self.log_path = BENCH_DIR / log_name
        self.process: Any = None
        self.url = ""
        self.connection_json = ""
        self._token: str | None = None

    def __enter__(self) -> EmulatorProcess:
        from airflow_provider_arr.emulator.process import EmulatorProcess as Process

        BENCH_DIR.mkdir(exist_ok=True)
        self.process = Process(
            *self.options, start_delay=self.start_delay, env=bench_env(), cwd=ROOT, log_path=self.log_path
        )
        self.process.start()
        self.url = self.process.url
        self.connection_json = self.process.connection_json()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def connection(self) -> dict[str, Any]:
        return json.loads(self.connection_json)

    def env(self) -> dict[str, str]:
        """The environment a child needs: the bench Airflow home and the connection to this emulator."""
        return bench_env(AIRFLOW_CONN_ARR_DEFAULT=self.connection_json)

    # Raw HTTP, on purpose without the hook: setup and introspection must not warm its caches.

    def client(self) -> RawClient:
        return RawClient(self.url)

    def counts(self) -> dict[str, int]:
        with self.client() as client:
            return client.json("GET", "/_emulator/counts")

    def sessions(self) -> list[dict[str, Any]]:
        with self.client() as client:
            return client.json("GET", "/_emulator/sessions")

    def token(self) -> str:
        if self._token is None:
            with self.client() as client:
                self._token = client.token(self.connection)
        return self._token


class RawClient:
    """One keep-alive ``http.client`` connection to the emulator (setup and introspection only)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.auth: dict[str, str] = {}

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.conn.close()

    def json(self, method: str, path: str, body: Any = None, headers: Mapping[str, str] = ()) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {**self.auth, **dict(headers)}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=all_headers)
        answer = self.conn.getresponse()
        text = answer.read()
        if answer.status >= 300:
            raise RuntimeError(f"{method} {path} -> {answer.status}: {text[:200]!r}")
        return json.loads(text) if text else None

    def token(self, connection: Mapping[str, Any]) -> str:
        account, key = connection["login"], connection["password"]
        body = self.json(
            "GET", f"/accounts/{account}/token", headers={"Authorization": f"Bearer {account}:{key}"}
        )
        token = body["AccessToken"]
        self.auth = {"Authorization": f"Bearer {token}"}
        return token

    def create_session(self, account: str, lease: str = "1:00:00") -> str:
        body = {"maxLeaseTime": lease, "models": [], "size": "standard"}
        return self.json("POST", f"/v1/accounts/{account}/sessions/create", body)["sessionId"]


# ------------------------------------------------------------------------------------------ stats


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100), linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of a process, in MiB, from /proc."""
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_seconds(pid: int | str) -> float:
    """User + system CPU seconds a process (all its threads) has used, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------- results


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        total_kb = int(meminfo.readline().split()[1])
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": round(total_kb / 2**20, 1),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def save_result(name: str, result: Mapping[str, Any]) -> None:
    """Merge one benchmark's result into ``.bench/results.json``."""
    BENCH_DIR.mkdir(exist_ok=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[name] = {**result, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


def load_results() -> dict[str, Any]:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
