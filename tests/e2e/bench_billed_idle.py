"""Billed idle seconds per life cycle of ``arr_render_pipeline`` on a real deployment (``make bench-billed``).

A session is billed from Ready until it stops. The time in between that no task uses it is money for
nothing: from Ready until the render task starts, and from the render task's end until the session is
Stopped. This starts the e2e deployment (PostgreSQL, api-server, scheduler, dag-processor, triggerer,
LocalExecutor; Airflow's own loop settings, the example DAG's default poll interval) and runs the
pipeline ``--runs`` times, one after the other, and splits each idle stretch into its parts:

- detection: Ready (the emulator's clock) → the first read that saw it Ready (``billed_time.ready_at``
  of the stop task; whole seconds);
- hand-over: that read → the sensor task's end (trigger event, scheduler, a worker resuming the sensor);
- to render: the sensor's end → the render task's start (scheduling it; ``extend`` runs beside it);
- to teardown: the render's end → the stop task's start (scheduling the teardown);
- stop: the stop task's start → Stopped (a new task process, its token and two calls).

Prints a table, writes ``.bench/billed_idle.json``. Not a test: figures, no thresholds.
Run: ``make bench-billed`` (installs PostgreSQL and the drivers like ``make e2e``), or
``ARR_E2E=1 .venv/bin/python tests/e2e/bench_billed_idle.py [--runs 3] [--poll-interval 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e_deployment import ROOT, AirflowDeployment, Emulator, Postgres, log, wait_for, workdir

#: Airflow's defaults for the loops the e2e test shortens (airflow config list --defaults, 3.3.2).
AIRFLOW_LOOP_DEFAULTS = {
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "5",
    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "5",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "5",
}
PARTS = ("detection", "hand-over", "to render", "to teardown", "stop")


def _time(value: str | None) -> float:
    if not value:
        raise ValueError("a task has no start or end date")
    return datetime.fromisoformat(value).timestamp()


def life_cycle(airflow: AirflowDeployment, emulator: Emulator, known: set[str]) -> dict[str, float]:
    """Run the pipeline once and measure its billed idle seconds, by part."""
    run_id = airflow.trigger("arr_render_pipeline")
    wait_for(
        "the pipeline run to finish",
        lambda: airflow.run_state("arr_render_pipeline", run_id) in ("success", "failed"),
        timeout=600,
        interval=1,
    )
    state = airflow.run_state("arr_render_pipeline", run_id)
    if state != "success":
        raise SystemExit(f"run {run_id} ended {state}")
    (session,) = [s for s in emulator.sessions() if s["sessionId"] not in known]
    known.add(session["sessionId"])
    to_unix = session["creationTime"] - session["createdAt"]  # the emulator's clock → UNIX time
    ready, stopped = session["readyAt"] + to_unix, session["endedAt"] + to_unix
    tasks = {ti["task_id"]: ti for ti in airflow.task_instances("arr_render_pipeline", run_id)}
    billed = airflow.xcom("arr_render_pipeline", run_id, "stop", key="billed_time")
    seen = datetime.fromisoformat(billed["ready_at"]).timestamp()
    sensor_end = _time(tasks["wait_ready"]["end_date"])
    render_start, render_end = _time(tasks["render"]["start_date"]), _time(tasks["render"]["end_date"])
    stop_start = _time(tasks["stop"]["start_date"])
    parts = {
        "detection": seen - ready,
        "hand-over": sensor_end - seen,
        "to render": render_start - sensor_end,
        "to teardown": stop_start - render_end,
        "stop": stopped - stop_start,
    }
    result = {name: round(value, 1) for name, value in parts.items()}
    result["idle"] = round((render_start - ready) + (stopped - render_end), 1)
    result["billed"] = round(stopped - ready, 1)
    result["logged billed"] = billed["billed_seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--poll-interval", type=float, default=5.0, help="the example DAGs' (default 5)")
    parser.add_argument("--start-delay", type=float, default=30.0, help="seconds a session stays Starting")
    args = parser.parse_args()
    if os.environ.get("ARR_E2E") != "1":
        raise SystemExit("run it through `make bench-billed` (or with ARR_E2E=1 after `make e2e` set up)")
    started = time.monotonic()
    results: list[dict[str, float]] = []
    with workdir("arr-bench-billed-") as base:
        postgres = Postgres(base / "postgres")
        emulator = airflow = None
        try:
            postgres.start()
            emulator = Emulator(base, start_delay=args.start_delay)
            env = AIRFLOW_LOOP_DEFAULTS | {"ARR_EXAMPLE_POLL_INTERVAL": f"{args.poll_interval:g}"}
            airflow = AirflowDeployment(
                "bench",
                base,
                postgres.create_database("airflow_bench"),
                emulator.connection,
                extra_env=env,
            )
            airflow.start()
            airflow.wait_for_dag("arr_render_pipeline")
            known: set[str] = set()
            for number in range(1, args.runs + 1):
                results.append(life_cycle(airflow, emulator, known))
                log(f"life cycle {number}: {results[-1]}")
        finally:
            for component in (airflow, emulator, postgres):
                if component is not None:
                    component.stop()
    columns = (*PARTS, "idle", "billed", "logged billed")
    print(f"\nBilled idle seconds per life cycle of arr_render_pipeline (poll {args.poll_interval:g} s)")
    print("| run | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for number, result in enumerate(results, 1):
        print(f"| {number} | " + " | ".join(f"{result[c]:.1f}" for c in columns) + " |")
    means = {c: round(statistics.mean(r[c] for r in results), 1) for c in columns}
    print("| mean | " + " | ".join(f"{means[c]:.1f}" for c in columns) + " |")
    out = ROOT / ".bench" / "billed_idle.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d"),
                "machine": f"{platform.node()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
                "poll_interval": args.poll_interval,
                "start_delay": args.start_delay,
                "runs": results,
                "mean": means,
                "wall_seconds": round(time.monotonic() - started),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written to {out.relative_to(ROOT)} ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
