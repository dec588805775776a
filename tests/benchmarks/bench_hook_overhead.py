"""Hook overhead: time per ``RemoteRenderingHook.get_session`` versus a raw pooled ``requests`` GET.

Both sides read the same session's properties from the emulator (another process, on loopback):

- ``raw``: ``requests.Session().get(url, headers={"Authorization": "Bearer <token>"})`` then
  ``raise_for_status()`` and ``.json()`` - the least a caller must do to get the properties;
- ``hook``: ``hook.get_session(session_id)`` - the same GET plus what the hook adds: cached settings
  and token, input validation, the retry policy (tenacity), error mapping, debug logging and
  parsing into ``SessionProperties``.

Both keep their connection alive. After a warm-up, calls alternate in blocks of 100 (so that machine
noise hits both alike) until each side has made ``--calls`` calls; each call is timed with
``time.perf_counter``. Reported: median and p90 wall time per call, the ratio of the medians, and
the client CPU time per call (``getrusage``), which shows the client-side cost without the
emulator's share of the round trip.

Run: ``python tests/benchmarks/bench_hook_overhead.py [--calls 3000]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable
from typing import Any

from _common import EmulatorProcess, median, percentile, save_result, setup_airflow_env

BLOCK = 100


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    setup_airflow_env()

    with EmulatorProcess(start_delay=0, log_name="emulator-hook.log") as emulator:
        os.environ["AIRFLOW_CONN_ARR_DEFAULT"] = emulator.connection_json
        import requests

        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

        hook = RemoteRenderingHook("arr_default")
        session_id = hook.create_session("1:00:00")
        account = emulator.connection["login"]
        url = f"{emulator.url}/v1/accounts/{account}/sessions/{session_id}/properties"
        headers = {"Authorization": f"Bearer {hook.get_token()}", "Accept": "application/json"}
        raw_session = requests.Session()

        def raw() -> Any:
            answer = raw_session.get(url, headers=headers, timeout=(10, 30))
            answer.raise_for_status()
            return answer.json()

        def with_hook() -> Any:
            return hook.get_session(session_id)

        sides: dict[str, Callable[[], Any]] = {"raw": raw, "hook": with_hook}
        times: dict[str, list[float]] = {name: [] for name in sides}
        cpu_used = dict.fromkeys(sides, 0.0)
        for call in sides.values():  # warm-up
            for _ in range(200):
                call()
        print(f"Hook overhead: {args.calls} calls each, alternating blocks of {BLOCK}")
        for _ in range(max(1, args.calls // BLOCK)):
            for name, call in sides.items():
                cpu_before = cpu()
                for _ in range(BLOCK):
                    started = time.perf_counter()
                    call()
                    times[name].append(time.perf_counter() - started)
                cpu_used[name] += cpu() - cpu_before
        hook.close()
        raw_session.close()

    result: dict[str, Any] = {"calls": len(times["hook"])}
    for name, values in times.items():
        result[name] = {
            "median_ms": median(values) * 1000,
            "p90_ms": percentile(values, 90) * 1000,
            "cpu_ms_per_call": cpu_used[name] / len(values) * 1000,
        }
    result["ratio"] = result["hook"]["median_ms"] / result["raw"]["median_ms"]
    result["overhead_us"] = (result["hook"]["median_ms"] - result["raw"]["median_ms"]) * 1000
    for name in sides:
        row = result[name]
        print(
            f"  {name:4}: median {row['median_ms']:.3f} ms, p90 {row['p90_ms']:.3f} ms, "
            f"client CPU {row['cpu_ms_per_call']:.3f} ms per call"
        )
    print(f"  ratio of medians {result['ratio']:.3f} ({result['overhead_us']:+.0f} us per call)")
    save_result("hook_overhead", result)


if __name__ == "__main__":
    main()
