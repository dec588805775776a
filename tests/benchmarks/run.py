"""Run every benchmark, then print the tables and draw the plot (what ``make bench`` does).

Each benchmark is a script of its own, run in a fresh interpreter one after the other so that they
do not compete for the CPU; only the life-cycle count, which mostly sleeps for a minute, runs in the
background during the hook and import benchmarks (it counts calls, which CPU load does not change).
Results accumulate in ``.bench/results.json``; ``report.py`` turns them into the tables of
``docs/performance.md`` and ``docs/benchmarks.png``.

Run: ``python tests/benchmarks/run.py [--quick]`` with the benchmark venv's Python
(``--quick``: fewer rounds and sizes, to try the scripts out; not for the docs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import BENCH_DIR, HERE, RESULTS, machine


def script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(HERE / name), *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()
    BENCH_DIR.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": machine()}, indent=2) + "\n")

    quick = args.quick
    subprocess.run(script("bench_emulator.py", *(["--seconds=3"] if quick else [])), check=True)
    # From here on the life-cycle count runs alongside: it sleeps, and CPU load does not change counts.
    lifecycle = subprocess.Popen(script("bench_lifecycle.py", *(["--start-delay=20"] if quick else [])))
    subprocess.run(script("bench_hook_overhead.py", *(["--calls=500"] if quick else [])), check=True)
    subprocess.run(script("bench_import.py", *(["--rounds=3"] if quick else [])), check=True)
    if lifecycle.wait() != 0:
        raise SystemExit("bench_lifecycle.py failed")
    subprocess.run(script("bench_waiting.py", *(["--sizes=100,1000"] if quick else [])), check=True)
    # The shared poller's list is paged on 2021-01-01: the same waits there, at the emulator's page size.
    waiting_2021 = ["--api-version=2021-01-01", "--page-size=50", "--modes=trigger,trigger-own"]
    subprocess.run(
        script("bench_waiting.py", *waiting_2021, *(["--sizes=100,1000"] if quick else [])), check=True
    )
    results = json.loads(RESULTS.read_text())
    results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    subprocess.run(script("report.py"), check=True)
    print(f"\nAll benchmarks took {time.monotonic() - started:.0f} s; results in .bench/{RESULTS.name}")


if __name__ == "__main__":
    main()
