"""HTTP calls per session life cycle, counted at the emulator: create, wait for Ready, extend, stop.

The life cycle of the example DAG ``arr_render_pipeline``, task by task, with the operators' and the
sensor's defaults: ``RemoteRenderingCreateSessionOperator`` (lease 1 h), then
``RemoteRenderingSessionReadySensor`` (default ``poke_interval`` of 10 s), then
``RemoteRenderingExtendSessionOperator`` (``extend_by`` 30 min), then
``RemoteRenderingStopSessionOperator``. The emulator (its own process) starts sessions in 60 s, so
the whole run takes a minute of real time.

Two variants run side by side, each against its own emulator: the sensor in ``poke`` mode, and
``deferrable`` (it checks once, defers, and the trigger polls; here the trigger runs in the same
process, and ``execute_complete`` follows, as in Airflow).

In Airflow every task instance runs in a process of its own, and the trigger runs in the triggerer,
so each of them fetches its own STS token: the process-wide token cache is cleared before each task
and before the trigger to count exactly that. The table also shows the count as if one process did
everything (one token).

Run: ``python tests/benchmarks/bench_lifecycle.py [--start-delay 60]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import BENCH_DIR, ROOT, EmulatorProcess, save_result, setup_airflow_env

MODES = ("poke", "deferrable")


class TaskInstance:
    """Just enough of a runtime task instance for ``execute``: its identity, and XCom pushes."""

    def __init__(self, task_id: str) -> None:
        self.dag_id = "arr_bench"
        self.run_id = "manual__bench"
        self.task_id = task_id
        self.map_index = -1
        self.try_number = 1
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value", **kwargs: Any) -> Any:
        return self.xcom.get(key)


def new_task_process() -> None:
    """What a fresh task (or triggerer) process starts with: no cached token."""
    from airflow_provider_arr.hooks.remote_rendering import clear_token_cache

    clear_token_cache()


async def first_event(trigger: Any) -> Any:
    """Run a trigger as the triggerer does, until its first event."""
    async for event in trigger.run():
        return event
    raise RuntimeError("the trigger ended without an event")


def life_cycle(mode: str) -> dict[str, Any]:
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider_arr import ownership
    from airflow_provider_arr.operators.remote_rendering import (
        RemoteRenderingCreateSessionOperator,
        RemoteRenderingExtendSessionOperator,
        RemoteRenderingStopSessionOperator,
    )
    from airflow_provider_arr.sensors.remote_rendering import RemoteRenderingSessionReadySensor

    # No task runner here: the create operator's ownership record goes to a dict, not to an Airflow
    # Variable (that store is Airflow's, not the service's: it changes no count below).
    ownership.use_ledger(ownership.MemoryLedger())
    started = time.monotonic()
    new_task_process()
    create = RemoteRenderingCreateSessionOperator(task_id="create", max_lease_time="1:00:00")
    session_id = create.execute({"ti": TaskInstance("create")})

    new_task_process()
    sensor = RemoteRenderingSessionReadySensor(
        task_id="wait_ready", session_id=session_id, deferrable=mode == "deferrable"
    )
    context = {"ti": TaskInstance("wait_ready")}
    try:
        properties = sensor.execute(context)
    except TaskDeferred as deferred:
        new_task_process()  # the triggerer
        event = asyncio.run(first_event(deferred.trigger))
        new_task_process()  # the task resumes in a new process
        properties = sensor.execute_complete(context, event=event.payload)
    ready_after = time.monotonic() - started

    new_task_process()
    extend = RemoteRenderingExtendSessionOperator(
        task_id="extend", session_id=session_id, extend_by=timedelta(minutes=30)
    )
    new_lease = extend.execute({"ti": TaskInstance("extend")})

    new_task_process()
    stop = RemoteRenderingStopSessionOperator(task_id="stop", session_id=session_id)
    final = stop.execute({"ti": TaskInstance("stop")})
    return {
        "mode": mode,
        "poke_interval": sensor.poke_interval,
        "ready_status": properties["status"],
        "ready_after_s": ready_after,
        "new_lease": new_lease,
        "final_status": final,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start-delay", type=float, default=60)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    setup_airflow_env()
    if args.child:
        Path(args.out).write_text(json.dumps(life_cycle(args.child)))
        return

    modes = [mode for mode in args.modes.split(",") if mode]
    print(f"Life cycle: create -> Ready ({args.start_delay:g} s start) -> extend -> stop; {', '.join(modes)}")
    emulators = {mode: EmulatorProcess(args.start_delay, f"emulator-lifecycle-{mode}.log") for mode in modes}
    outputs = {mode: BENCH_DIR / f"lifecycle-{mode}.json" for mode in modes}
    try:
        for emulator in emulators.values():
            emulator.__enter__()
        children = {}
        for mode in modes:
            with open(BENCH_DIR / f"lifecycle-{mode}.log", "w") as log:
                children[mode] = subprocess.Popen(
                    [sys.executable, __file__, f"--child={mode}", f"--out={outputs[mode]}"],
                    env=emulators[mode].env(),
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        variants = []
        for mode, child in children.items():
            if child.wait() != 0:
                raise RuntimeError(f"the {mode} life cycle failed; see .bench/lifecycle-{mode}.log")
            run = json.loads(outputs[mode].read_text())
            counts = emulators[mode].counts()
            run["calls"] = counts
            run["total"] = sum(counts.values())
            run["sts"] = counts.get("token", 0)
            run["total_one_process"] = run["total"] - run["sts"] + 1
            variants.append(run)
            breakdown = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
            print(
                f"  {mode:10}: {run['total']} calls ({breakdown}); {run['total_one_process']} with one "
                f"token for all; Ready after {run['ready_after_s']:.1f} s, final {run['final_status']}"
            )
    finally:
        for emulator in emulators.values():
            emulator.__exit__()
    save_result("lifecycle", {"start_delay": args.start_delay, "variants": variants})


if __name__ == "__main__":
    main()
