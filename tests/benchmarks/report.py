"""Print the benchmark results (``.bench/results.json``) as Markdown tables, and plot the waits.

The goals are the ones of the performance issue; each row says whether it is met. The plot
(``docs/benchmarks.png``) shows detection latency and peak RSS growth against the number of waiting
sessions, our trigger versus poke-mode threads.

Run: ``python tests/benchmarks/report.py [--plot docs/benchmarks.png]``.
"""

from __future__ import annotations

import argparse
from typing import Any

from _common import ROOT, load_results, machine

#: Goals at 1,000 waiting sessions: p99 detection within poll interval + 1 s, RSS growth, STS calls.
WAIT_SIZE, WAIT_SLACK_S, WAIT_RSS_MB = 1000, 1.0, 60.0
IMPORT_MS, LIFECYCLE_CALLS, HOOK_RATIO, EMULATOR_RPS, EMULATOR_P99_MS = 50.0, 16, 1.15, 2000.0, 50.0


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def goal_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    if "import" in results:
        variants = results["import"]["variants"]
        ours, dbt = variants["arr"]["added_ms_median"], variants["dbt-cloud"]["added_ms_median"]
        ours_cpu, dbt_cpu = (
            variants[name].get("added_cpu_ms_median", float("nan")) for name in ("arr", "dbt-cloud")
        )
        rows.append(
            [
                "1. Import cost (operators + sensor + hook, over `airflow.sdk`, median)",
                f"+{ours:.0f} ms (CPU {ours_cpu:.0f} ms)",
                f"dbt-cloud operators: +{dbt:.0f} ms (CPU {dbt_cpu:.0f} ms)",
                f"≤ {IMPORT_MS:.0f} ms",
                _met(ours <= IMPORT_MS),
            ]
        )
    if "waiting" in results:
        poll = results["waiting"]["poll_interval"]
        cases = {(c["mode"], c["size"]): c for c in results["waiting"]["cases"]}
        ours, base = cases.get(("trigger", WAIT_SIZE)), cases.get(("poke", WAIT_SIZE))
        if ours:
            base_text = (
                f"p99 {base['latency_p99_s']:.1f} s, +{base['rss_growth_mb']:.0f} MB, {base['sts_calls']} STS"
                if base
                else "-"
            )
            ok = (
                ours["latency_p99_s"] <= poll + WAIT_SLACK_S
                and ours["rss_growth_mb"] < WAIT_RSS_MB
                and ours["sts_calls"] == 1
                and ours["failure_count"] == 0
            )
            rows.append(
                [
                    f"2. Waiting, {WAIT_SIZE:,} sessions in one event loop (poll {poll:g} s)",
                    f"p99 {ours['latency_p99_s']:.1f} s, +{ours['rss_growth_mb']:.0f} MB, "
                    f"{ours['sts_calls']} STS",
                    f"poke threads: {base_text}",
                    f"p99 ≤ {poll + WAIT_SLACK_S:g} s, < {WAIT_RSS_MB:.0f} MB, 1 STS",
                    _met(ok),
                ]
            )
    if "lifecycle" in results:
        for variant in results["lifecycle"]["variants"]:
            total, one = variant["total"], variant["total_one_process"]
            rows.append(
                [
                    f"3. HTTP calls per life cycle, sensor {variant['mode']} "
                    f"({results['lifecycle']['start_delay']:g} s start, poll {variant['poke_interval']:g} s)",
                    f"{one} with one token; {total} with a token per task process ({variant['sts']})",
                    "-",
                    f"≤ {LIFECYCLE_CALLS}",
                    f"{_met(one <= LIFECYCLE_CALLS)} / {_met(total <= LIFECYCLE_CALLS)}",
                ]
            )
    if "hook_overhead" in results:
        hook = results["hook_overhead"]
        rows.append(
            [
                "4. `get_session` vs raw pooled `requests` GET (median per call)",
                f"{hook['hook']['median_ms']:.2f} ms (ratio {hook['ratio']:.3f})",
                f"raw: {hook['raw']['median_ms']:.2f} ms",
                f"ratio ≤ {HOOK_RATIO}",
                _met(hook["ratio"] <= HOOK_RATIO),
            ]
        )
    if "emulator" in results:
        emulator = results["emulator"]
        rows.append(
            [
                f"5. Emulator, `properties` at {emulator['clients']} connections ({emulator['tool']})",
                f"{emulator['requests_per_s']:,.0f} req/s, p99 {emulator['p99_ms']:.0f} ms",
                "-",
                f"≥ {EMULATOR_RPS:,.0f} req/s, p99 < {EMULATOR_P99_MS:.0f} ms",
                f"{_met(emulator['requests_per_s'] >= EMULATOR_RPS)} / "
                f"{_met(emulator['p99_ms'] < EMULATOR_P99_MS)}",
            ]
        )
    return rows


MODE_LABELS = {
    "trigger": "trigger, shared poller",
    "trigger-own": "trigger, own reads",
    "poke": "poke, 1 thread each",
}


def waiting_rows(results: dict[str, Any], key: str = "waiting") -> list[list[str]]:
    rows = []
    for case in sorted(results.get(key, {}).get("cases", []), key=lambda c: (c["size"], c["mode"])):
        rows.append(
            [
                f"{case['size']:,}",
                MODE_LABELS.get(case["mode"], case["mode"]),
                f"{case.get('reads_per_interval_steady', float('nan')):.1f} / "
                f"{case.get('reads_per_interval_max', float('nan'))}",
                f"{case['latency_p50_s']:.2f} / {case['latency_p99_s']:.2f}",
                f"{case['cpu_s']:.1f}",
                f"{case['rss_growth_mb']:.0f}",
                f"{case['requests_per_session']:.2f}",
                str(case["sts_calls"]),
                f"{case.get('first_polls_done_s', float('nan')):.1f}",
                f"{case.get('emulator_cpu_s', float('nan')):.1f}",
                str(case["failure_count"]),
            ]
        )
    return rows


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plot)")
        return False
    cases = results.get("waiting", {}).get("cases", [])
    if not cases:
        return False
    poll = results["waiting"]["poll_interval"]
    figure, (latency_axes, memory_axes, cpu_axes) = plt.subplots(1, 3, figsize=(15, 4.2))
    styles = {
        "trigger": ("our trigger, shared poller", "tab:blue"),
        "trigger-own": ("our trigger, own reads", "tab:green"),
        "poke": ("poke-mode threads", "tab:red"),
    }
    for mode, (label, color) in styles.items():
        mode_cases = sorted((c for c in cases if c["mode"] == mode), key=lambda c: c["size"])
        if not mode_cases:
            continue
        sizes = [c["size"] for c in mode_cases]
        latency_axes.plot(
            sizes, [c["latency_p99_s"] for c in mode_cases], "o-", color=color, label=f"{label}, p99"
        )
        latency_axes.plot(
            sizes,
            [c["latency_p50_s"] for c in mode_cases],
            "o--",
            color=color,
            alpha=0.6,
            label=f"{label}, p50",
        )
        memory_axes.plot(sizes, [c["rss_growth_mb"] for c in mode_cases], "o-", color=color, label=label)
        cpu_axes.plot(sizes, [c["cpu_s"] for c in mode_cases], "o-", color=color, label=label)
    latency_axes.axhline(poll + WAIT_SLACK_S, color="grey", linestyle=":", label="goal: p99 ≤ poll + 1 s")
    memory_axes.axhline(
        WAIT_RSS_MB, color="grey", linestyle=":", label=f"goal at 1,000: < {WAIT_RSS_MB:.0f} MB"
    )
    latency_axes.set(
        title=f"Detection latency after Ready (poll {poll:g} s)", xlabel="waiting sessions", ylabel="seconds"
    )
    memory_axes.set(title="Peak RSS growth of the waiting process", xlabel="waiting sessions", ylabel="MiB")
    cpu_axes.set(title="CPU time of the waiting process", xlabel="waiting sessions", ylabel="seconds")
    for axes in (latency_axes, memory_axes, cpu_axes):
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    info = machine()
    figure.suptitle(
        f"airflow-provider-arr waiting at scale - {results['waiting'].get('measured_at', '')}, "
        f"{info['cpus']} x {info['cpu_model']}",
        fontsize=9,
    )
    figure.tight_layout()
    (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(ROOT / path, dpi=110)
    plt.close(figure)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", default="docs/benchmarks.png", help="where to write the plot")
    args = parser.parse_args()
    results = load_results()
    info = results.get("machine") or machine()
    print(
        f"\nMeasured {info['date']} on {info['cpus']} x {info['cpu_model']}, {info['ram_gib']} GiB RAM, "
        f"Python {info['python']} (load average at start {info['load_average']}, "
        f"at the end {info.get('load_average_end', '?')})\n"
    )
    print(markdown(["Goal", "Ours", "Baseline, same run", "Target", "Met"], goal_rows(results)))
    for key in sorted(name for name in results if name.startswith("waiting")):
        run = results[key]
        dialect = run.get("api_version", "v1")
        pages = f", list page size {run['page_size']}" if run.get("page_size") else ""
        print(f"\nWaiting at scale ({dialect}{pages}; poll interval {run['poll_interval']:g} s):\n")
        header = [
            "sessions",
            "waiting with",
            "session reads / poll interval, steady / max",
            "detection p50 / p99 (s)",
            "CPU (s)",
            "peak RSS growth (MiB)",
            "HTTP requests / session",
            "STS calls",
            "all first polls done (s)",
            "emulator CPU (s)",
            "failed",
        ]
        print(markdown(header, waiting_rows(results, key)))
    if args.plot and plot(results, args.plot):
        print(f"\nPlot: {args.plot}")


if __name__ == "__main__":
    main()
