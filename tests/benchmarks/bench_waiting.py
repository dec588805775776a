"""Waiting at scale: N sessions waited on by our trigger in one event loop, versus poke-mode threads.

What is measured, for N = 100, 1,000 and 5,000 sessions and for each of three ways of waiting:

- ``trigger``: N ``RemoteRenderingSessionTrigger.run()`` generators run concurrently on one asyncio
  event loop in one process, as the triggerer runs them, sharing the account's poller (one list call
  per poll interval answers them all);
- ``trigger-own``: the same triggers with ``shared_poll=False``: each reads its own session every
  poll interval, as every trigger did before the shared poller;
- ``poke`` (the baseline; up to ``--poke-max`` sessions, 1,000 by default): N threads, each looping
  ``hook.get_session`` + ``time.sleep(poll)`` with its own hook, as N poke-mode sensors do (each of
  which holds a worker slot; in a real deployment each is even a process of its own, so the thread
  baseline is a generous one).

The emulator runs in another process (the CLI). Each case runs in a fresh child interpreter, which
first creates its N sessions over a ``--window`` of seconds with a raw HTTP client (so the hook's
token cache stays cold), then starts all N waits at once. The emulator's start delay is the window
plus ``START_MARGIN`` (12 s), so the sessions become Ready at staggered times, spread over the
window, from 12 s after the waits began: after the start-up burst of N first polls, which is timed
too (from the emulator's counters). Only sessions that became Ready after every waiter had polled
once count for the detection latency (all of them, unless the burst took longer than the margin).

Per case: detection latency (the moment the waiter reports Ready minus the moment the emulator made
the session Ready, both read from the system-wide monotonic clock) p50 / p99 / max; CPU seconds of
the waiting process (``getrusage``); its peak RSS growth over the RSS before the waits (sampled every
50 ms from ``/proc``); HTTP requests per session and STS calls in total (the emulator's counters);
the emulator's own CPU seconds, to show it was not the bottleneck; and the session reads (``list``
and ``properties`` calls) per poll interval, counted by the emulator in consecutive windows of one
poll interval while the waits run: the mean over the windows that ended before the first session
turned Ready (the steady state, start-up burst included) and the most in any window. After a case
its sessions are stopped, so that the next case's list holds only its own.

What the shared poller's reads per interval depend on: one list call per page of the account's list,
plus one read per session that ended. ``v1`` lists every session in one answer; ``2021-01-01`` pages it
(the emulator: ``--page-size``, 50 by default, as ``DEFAULT_PAGE_SIZE``), so N waits cost
``ceil(N / page size)`` list calls per interval there. ``--api-version 2021-01-01`` runs the cases on
that dialect; its result is saved under ``waiting-2021-01-01`` beside the ``v1`` run's ``waiting``.

Run: ``python tests/benchmarks/bench_waiting.py [--sizes 100,500,1000] [--poll 5]
[--api-version 2021-01-01 --page-size 50]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    ROOT,
    EmulatorProcess,
    cpu_seconds,
    percentile,
    rss_mb,
    save_result,
    setup_airflow_env,
)

MODES = ("trigger", "trigger-own", "poke")
#: The first session becomes Ready this long after the waits begin: time for the start-up burst of
#: N first polls (seconds on a small, busy machine) to pass before detection latencies are measured.
START_MARGIN = 12.0


# ------------------------------------------------------------------------ the child: one case


class RssSampler(threading.Thread):
    """Samples this process's RSS every ``interval`` seconds and keeps the peak."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = rss_mb()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.peak = max(self.peak, rss_mb())

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return max(self.peak, rss_mb())


class FirstPollWatch(threading.Thread):
    """Watches the emulator's counters until every waiter has polled once: the start-up burst.

    A detection latency only means something for sessions that became Ready after that. A shared
    poller's first polls are done when it has polled after every wait registered: the waiting process
    sets :attr:`done_at` itself then.
    """

    def __init__(self, url: str, already: int, size: int, shared: bool) -> None:
        super().__init__(daemon=True)
        self.url, self.target, self.shared = url, already + size, shared
        self.started = time.monotonic()
        self.done_at: float | None = None

    def run(self) -> None:
        from _common import RawClient

        if self.shared:
            return
        with RawClient(self.url) as client:
            while time.monotonic() - self.started < 120:
                if client.json("GET", "/_emulator/counts").get("properties", 0) >= self.target:
                    self.done_at = time.monotonic()
                    return
                time.sleep(0.1)


class ReadsPerInterval(threading.Thread):
    """Counts the session reads (``list`` + ``properties`` calls) in each poll interval of the waits."""

    def __init__(self, url: str, poll: float) -> None:
        super().__init__(daemon=True)
        self.url, self.poll = url, poll
        self.windows: list[tuple[float, int]] = []  # (end of the window, reads in it)
        self._stop_event = threading.Event()

    def run(self) -> None:
        from _common import RawClient

        def reads() -> int:  # a connection each time: the emulator closes one idle for 5 s
            with RawClient(self.url) as client:
                counts = client.json("GET", "/_emulator/counts")
            return int(counts.get("list", 0)) + int(counts.get("properties", 0))

        last = reads()
        while not self._stop_event.wait(self.poll):
            now = reads()
            self.windows.append((time.monotonic(), now - last))
            last = now

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def create_sessions(emulator_url: str, connection: dict[str, Any], size: int, window: float) -> list[str]:
    """Create ``size`` sessions at even intervals over ``window`` seconds (raw HTTP, not the hook)."""
    from _common import RawClient

    ids = []
    with RawClient(emulator_url) as client:
        client.token(connection)
        start = time.monotonic()
        for index in range(size):
            delay = start + index * window / size - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            ids.append(client.create_session(connection["login"]))
    return ids


def wait_with_triggers(
    ids: list[str], poll: float, detected: dict[str, tuple[float, str]], shared: bool, watch: FirstPollWatch
) -> None:
    import asyncio

    from airflow_provider_arr.triggers import _poller
    from airflow_provider_arr.triggers.remote_rendering import RemoteRenderingSessionTrigger

    end_time = time.time() + 600

    async def wait(session_id: str) -> None:
        trigger = RemoteRenderingSessionTrigger(session_id, "arr_default", poll, end_time, shared_poll=shared)
        async for event in trigger.run():
            detected[session_id] = (time.monotonic(), event.payload["status"])

    async def first_polls() -> None:
        """The first poll that began after every wait had registered (or had its answer)."""
        while True:
            pollers = _poller.active_pollers()
            if sum(poller.waiting for poller in pollers) + len(detected) >= len(ids):
                break
            await asyncio.sleep(0.05)
        started = {poller: poller.polls for poller in pollers}  # a poll begun since then answers all
        while any(poller.waiting and poller.polls_done <= started[poller] for poller in pollers):
            await asyncio.sleep(0.05)
        watch.done_at = time.monotonic()

    async def wait_all() -> None:
        monitor = asyncio.ensure_future(first_polls()) if shared else None
        await asyncio.gather(*(wait(session_id) for session_id in ids))
        if monitor is not None:
            await asyncio.wait([monitor], timeout=1)
            monitor.cancel()

    asyncio.run(wait_all())


def wait_with_threads(ids: list[str], poll: float, detected: dict[str, tuple[float, str]]) -> None:
    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
    from airflow_provider_arr.models import SessionStatus

    def poke(session_id: str) -> None:
        hook = RemoteRenderingHook("arr_default")
        try:
            while True:
                properties = hook.get_session(session_id)
                status = properties.status
                # The line the sensor's poke logs, as the trigger does on every poll.
                hook.log.info("Session %s is %s", session_id, status.value)
                if status != SessionStatus.STARTING:
                    outcome = "success" if status == SessionStatus.READY else "failed"
                    detected[session_id] = (time.monotonic(), outcome)
                    return
                time.sleep(poll)
        except Exception as error:
            detected[session_id] = (time.monotonic(), f"error: {error}")
        finally:
            hook.close()

    threads = [threading.Thread(target=poke, args=(session_id,), daemon=True) for session_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run_case(args: argparse.Namespace) -> dict[str, Any]:
    import gc
    import resource

    from _common import RawClient

    connection = json.loads(args.connection)
    # Import what the waiters use before measuring: the import cost is bench_import's business.
    import airflow.sdk  # noqa: F401

    import airflow_provider_arr.hooks.remote_rendering
    import airflow_provider_arr.triggers.remote_rendering  # noqa: F401

    ids = create_sessions(args.url, connection, args.size, args.window)
    with RawClient(args.url) as client:
        counts_before = client.json("GET", "/_emulator/counts")
    gc.collect()
    detected: dict[str, tuple[float, str]] = {}
    sampler = RssSampler()
    shared = args.mode == "trigger"
    watch = FirstPollWatch(args.url, counts_before.get("properties", 0), args.size, shared)
    reads_watch = ReadsPerInterval(args.url, args.poll)
    rss_before = rss_mb()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    sampler.start()
    watch.start()
    reads_watch.start()

    if args.mode == "poke":
        wait_with_threads(ids, args.poll, detected)
    else:
        wait_with_triggers(ids, args.poll, detected, shared, watch)

    wall = time.monotonic() - started
    reads_watch.stop()
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    rss_peak = sampler.stop()
    with RawClient(args.url) as client:
        counts_after = client.json("GET", "/_emulator/counts")
        sessions = {s["sessionId"]: s for s in client.json("GET", "/_emulator/sessions")}

    watch.join()
    with RawClient(args.url) as client:  # the next case lists only its own sessions
        client.token(connection)
        for session_id in ids:
            client.json("DELETE", f"/v1/accounts/{connection['login']}/sessions/{session_id}")
    first_polls_done = watch.done_at if watch.done_at is not None else float("inf")
    first_ready = min(
        (s["readyAt"] for s in sessions.values() if s["sessionId"] in detected and s["readyAt"]),
        default=float("inf"),
    )
    steady = [count for end, count in reads_watch.windows if end < first_ready]  # before any ended
    per_interval = [count for _, count in reads_watch.windows]
    latencies, ready_during_burst, failures = [], 0, []
    for session_id in ids:
        ready_at = sessions[session_id]["readyAt"]
        when, outcome = detected.get(session_id, (float("nan"), "missing"))
        if outcome != "success" or ready_at is None:
            failures.append(f"{session_id}: {outcome}")
            continue
        if ready_at < first_polls_done:
            ready_during_burst += 1  # Ready before every waiter had polled once: not counted
            continue
        latencies.append(when - ready_at)
    cpu = (usage_after.ru_utime + usage_after.ru_stime) - (usage_before.ru_utime + usage_before.ru_stime)
    properties = counts_after.get("properties", 0) - counts_before.get("properties", 0)
    calls = sum(counts_after.values()) - sum(counts_before.values())
    return {
        "size": args.size,
        "mode": args.mode,
        "poll_interval": args.poll,
        "latency_p50_s": percentile(latencies, 50),
        "latency_p99_s": percentile(latencies, 99),
        "latency_max_s": max(latencies, default=float("nan")),
        "cpu_s": cpu,
        "rss_before_mb": rss_before,
        "rss_growth_mb": rss_peak - rss_before,
        "requests_per_session": calls / args.size,
        "properties_calls": properties,
        "sts_calls": counts_after.get("token", 0) - counts_before.get("token", 0),
        "wall_s": wall,
        "first_polls_done_s": first_polls_done - started,
        "ready_during_start_up": ready_during_burst,
        "first_ready_s": first_ready - started,
        "reads_per_interval_steady": (sum(steady) / len(steady)) if steady else float("nan"),
        "reads_per_interval_max": max(per_interval, default=0),
        "list_calls": counts_after.get("list", 0) - counts_before.get("list", 0),
        "failures": failures[:10],
        "failure_count": len(failures),
    }


# --------------------------------------------------------------------- the parent: every case


def run_all(
    sizes: list[int],
    modes: list[str],
    poll: float,
    window: float,
    poke_max: int,
    api_version: str = "v1",
    page_size: int | None = None,
) -> list[dict[str, Any]]:
    cases = []
    options = ("--page-size", str(page_size)) if page_size else ()
    log_name = f"emulator-waiting-{api_version}.log"
    with EmulatorProcess(start_delay=window + START_MARGIN, log_name=log_name, options=options) as emulator:
        connection = json.loads(emulator.connection_json)
        connection["extra"] = {**(connection.get("extra") or {}), "api_version": api_version}
        connection_json = json.dumps(connection)
        for size in sizes:
            for mode in modes:
                if mode == "poke" and size > poke_max:
                    continue
                with tempfile.NamedTemporaryFile("r", suffix=".json", dir=BENCH_DIR) as out:
                    command = [
                        sys.executable,
                        __file__,
                        "--child",
                        f"--size={size}",
                        f"--mode={mode}",
                        f"--poll={poll}",
                        f"--window={window}",
                        f"--url={emulator.url}",
                        f"--connection={connection_json}",
                        f"--out={out.name}",
                    ]
                    emulator_cpu = cpu_seconds(emulator.pid)
                    env = emulator.env() | {"AIRFLOW_CONN_ARR_DEFAULT": connection_json}
                    with open(BENCH_DIR / f"waiting-{api_version}-{mode}-{size}.log", "w") as log:
                        subprocess.run(command, check=True, env=env, cwd=ROOT, stdout=log, stderr=log)
                    case = json.loads(Path(out.name).read_text())
                case["emulator_cpu_s"] = cpu_seconds(emulator.pid) - emulator_cpu
                case["api_version"], case["page_size"] = api_version, page_size
                cases.append(case)
                print(
                    f"  {mode:11} N={size:5}: reads/interval {case['reads_per_interval_steady']:.1f} "
                    f"(max {case['reads_per_interval_max']}), p50 {case['latency_p50_s']:.2f} s, "
                    f"p99 {case['latency_p99_s']:.2f} s, CPU {case['cpu_s']:.1f} s, "
                    f"RSS +{case['rss_growth_mb']:.0f} MB, {case['requests_per_session']:.1f} req/session, "
                    f"{case['sts_calls']} STS, {case['failure_count']} failed; first polls done after "
                    f"{case['first_polls_done_s']:.1f} s, first Ready at {case['first_ready_s']:.1f} s",
                    flush=True,
                )
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--poke-max", type=int, default=1000, help="no poke threads above this size")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--poll", type=float, default=5.0, help="poll interval, seconds")
    parser.add_argument("--window", type=float, default=5.0, help="sessions are created over this time")
    parser.add_argument("--api-version", default="v1", choices=("v1", "2021-01-01"))
    parser.add_argument(
        "--page-size", type=int, help="sessions per 2021-01-01 list page (emulator default 50)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--connection", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        setup_airflow_env()
        Path(args.out).write_text(json.dumps(run_case(args)))
        return
    setup_airflow_env()
    sizes = [int(size) for size in args.sizes.split(",")]
    modes = [mode for mode in args.modes.split(",") if mode]
    print(
        f"Waiting at scale ({args.api_version}, page size {args.page_size or 'default'}): poll interval "
        f"{args.poll:g} s, Ready times spread over {args.window:g} s"
    )
    cases = run_all(sizes, modes, args.poll, args.window, args.poke_max, args.api_version, args.page_size)
    key = "waiting" if args.api_version == "v1" else f"waiting-{args.api_version}"
    result = {"poll_interval": args.poll, "window": args.window, "api_version": args.api_version}
    save_result(key, result | {"page_size": args.page_size, "cases": cases})


if __name__ == "__main__":
    main()
