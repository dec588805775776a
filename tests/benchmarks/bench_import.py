"""Import cost: what a DAG file pays to import our operators, sensor and hook, over ``airflow.sdk``.

Airflow parses DAG files over and over, each time importing what they import. Each measurement is a
fresh interpreter that imports ``airflow.sdk`` (every DAG file does) and then one of:

- ``arr``: every operator and sensor module of the provider (``airflow_provider_arr.operators``'
  ``remote_rendering``, ``conversion`` and ``janitor``, ``.sensors``' ``remote_rendering`` and
  ``conversion``) and ``.hooks.remote_rendering``: what a DAG file using this provider imports, and the
  hook (issue 21);
- ``dbt-cloud``: ``airflow.providers.dbt.cloud.operators.dbt`` (``apache-airflow-providers-dbt-cloud``,
  installed only in the benchmark environment), the comparison point;
- ``nothing``: no further import, to show the noise of the measurement itself.

The interpreter times both steps with ``time.perf_counter`` around the import statements, so the
added cost is measured within one process, after the very same ``airflow.sdk`` import (its CPU time,
``time.process_time``, is reported too: on a busy machine it is the steadier of the two). Variants are
interleaved round by round (machine noise hits them alike); the table shows the medians. The wall
time of a whole interpreter (``python -c 'import ...'``) is reported too: its median difference to the
``nothing`` variant is a second estimate of the same cost. A ``-X importtime`` run lists the heaviest
modules our import adds.

Run: ``python tests/benchmarks/bench_import.py [--rounds 11]`` with the benchmark venv's Python.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import time
from typing import Any

from _common import ROOT, bench_env, median, save_result

VARIANTS = {
    "nothing": [],
    "arr": [
        "airflow_provider_arr.operators.remote_rendering",
        "airflow_provider_arr.operators.conversion",
        "airflow_provider_arr.operators.janitor",
        "airflow_provider_arr.sensors.remote_rendering",
        "airflow_provider_arr.sensors.conversion",
        "airflow_provider_arr.hooks.remote_rendering",
    ],
    "dbt-cloud": ["airflow.providers.dbt.cloud.operators.dbt"],
}

PROBE = """
import time
t0 = time.perf_counter()
import airflow.sdk
t1, c1 = time.perf_counter(), time.process_time()
for name in {modules!r}:
    __import__(name)
t2, c2 = time.perf_counter(), time.process_time()
print({{"sdk_s": t1 - t0, "added_s": t2 - t1, "added_cpu_s": c2 - c1}})
"""


def measure(modules: list[str]) -> dict[str, float]:
    """One fresh interpreter: seconds for ``airflow.sdk``, seconds added by ``modules``, wall seconds."""
    started = time.perf_counter()
    answer = subprocess.run(
        [sys.executable, "-c", PROBE.format(modules=modules)],
        capture_output=True,
        text=True,
        check=True,
        env=bench_env(),
        cwd=ROOT,
    )
    wall = time.perf_counter() - started
    result = ast.literal_eval(answer.stdout.strip().splitlines()[-1])
    return {**result, "wall_s": wall}


def _import_times(code: str) -> dict[str, float]:
    """``-X importtime`` of ``code``: cumulative milliseconds per module."""
    answer = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=bench_env(),
        cwd=ROOT,
    )
    times = {}
    for line in answer.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            _, cumulative, name = line.split("|")
            times[name.strip()] = int(cumulative) / 1000
    return times


def heaviest_added(modules: list[str], top: int = 8) -> list[tuple[str, float]]:
    """Modules that importing ``modules`` adds to ``airflow.sdk``'s, by cumulative import time."""
    sdk_only = _import_times("import airflow.sdk")
    ours = _import_times("import airflow.sdk\n" + "".join(f"import {name}\n" for name in modules))
    added = [(name, ms) for name, ms in ours.items() if name not in sdk_only]
    return sorted(added, key=lambda row: -row[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()

    print(f"Import cost: {args.rounds} rounds of fresh interpreters per variant")
    for modules in VARIANTS.values():  # warm-up: .pyc files, AIRFLOW_HOME, the page cache
        measure(modules)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, modules in VARIANTS.items():
            samples[name].append(measure(modules))

    baseline_wall = median([s["wall_s"] for s in samples["nothing"]])
    result: dict[str, Any] = {"rounds": args.rounds, "variants": {}}
    for name, runs in samples.items():
        added = [s["added_s"] * 1000 for s in runs]
        row = {
            "modules": VARIANTS[name],
            "added_ms_median": median(added),
            "added_ms_min": min(added),
            "added_ms_max": max(added),
            "added_cpu_ms_median": median([s["added_cpu_s"] * 1000 for s in runs]),
            "sdk_ms_median": median([s["sdk_s"] * 1000 for s in runs]),
            "wall_ms_median": median([s["wall_s"] * 1000 for s in runs]),
            "wall_over_nothing_ms": (median([s["wall_s"] for s in runs]) - baseline_wall) * 1000,
        }
        result["variants"][name] = row
        print(
            f"  {name:9}: +{row['added_ms_median']:6.1f} ms over airflow.sdk "
            f"(min {row['added_ms_min']:.1f}, max {row['added_ms_max']:.1f}; "
            f"CPU {row['added_cpu_ms_median']:.1f} ms); "
            f"airflow.sdk itself {row['sdk_ms_median']:.0f} ms; "
            f"whole interpreter {row['wall_ms_median']:.0f} ms ({row['wall_over_nothing_ms']:+.0f} ms)",
            flush=True,
        )
    result["arr_heaviest_imports_ms"] = heaviest_added(VARIANTS["arr"])
    print("  modules our import adds (one -X importtime run, which slows imports; cumulative ms):")
    for name, ms in result["arr_heaviest_imports_ms"]:
        print(f"    {ms:7.1f}  {name}")
    save_result("import", result)


if __name__ == "__main__":
    main()
