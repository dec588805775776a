"""Emulator capacity: requests per second and latency of ``GET .../properties`` at 50 concurrent clients.

The emulator runs as the CLI in its own process (one uvicorn worker, as in the other benchmarks). The
load comes from ``wrk`` (Debian package ``wrk``: ``-t1 -c50 --latency``, one thread so that the
load generator and the emulator each get a core of a small machine) or, where ``wrk`` is not
installed, from a small asyncio HTTP/1.1 client in a separate process (50 keep-alive connections,
each sending its next request as soon as the previous answer arrived). Every request carries a valid
token and reads one Starting session's properties, i.e. the call waiting sessions poll.

Reported: requests per second, p50 / p99 latency, non-2xx answers, and the emulator's CPU use.

Run: ``python tests/benchmarks/bench_emulator.py [--seconds 10] [--clients 50] [--tool wrk|python]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from _common import EmulatorProcess, cpu_seconds, percentile, save_result

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([a-z]+)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def run_wrk(url: str, token: str, clients: int, seconds: float) -> dict[str, Any]:
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{clients}",
            f"-d{seconds:g}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", output, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)$", output, re.MULTILINE)
    return {
        "tool": "wrk 1 thread",
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(percentiles["50"]),
        "p99_ms": _ms(percentiles["99"]),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


# ------------------------------------------------------------- the fallback: a Python load client


async def _client(host: str, port: int, request: bytes, stop_at: float, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    bad = 0
    try:
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            bad += not head.startswith(b"HTTP/1.1 2")
    finally:
        writer.close()
    return bad


async def _load(url: str, token: str, clients: int, seconds: float) -> dict[str, Any]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    started = time.monotonic()
    bad = await asyncio.gather(
        *(_client(parts.hostname, parts.port, request, started + seconds, latencies) for _ in range(clients))
    )
    elapsed = time.monotonic() - started
    return {
        "tool": "asyncio client",
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "non_2xx": sum(bad),
        "socket_errors": "",
    }


def run_python_client(url: str, token: str, clients: int, seconds: float) -> dict[str, Any]:
    """Run :func:`_load` in a separate interpreter, so the client does not share a GIL with us."""
    output = subprocess.run(
        [sys.executable, __file__, "--client", url, token, str(clients), str(seconds)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=50)
    default_tool = "wrk" if shutil.which("wrk") else "python"
    parser.add_argument("--tool", choices=("wrk", "python"), default=default_tool)
    parser.add_argument("--client", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        url, token, clients, seconds = args.client
        print(json.dumps(asyncio.run(_load(url, token, int(clients), float(seconds)))))
        return

    with EmulatorProcess(start_delay=3600, log_name="emulator-capacity.log") as emulator:
        token = emulator.token()
        with emulator.client() as client:
            client.token(emulator.connection)
            session_id = client.create_session(emulator.connection["login"])
        account = emulator.connection["login"]
        url = f"{emulator.url}/v1/accounts/{account}/sessions/{session_id}/properties"
        run = run_wrk if args.tool == "wrk" else run_python_client
        run(url, token, args.clients, 2)  # warm-up
        cpu_before = cpu_seconds(emulator.pid)
        result = run(url, token, args.clients, args.seconds)
        result["emulator_cpu_share"] = (cpu_seconds(emulator.pid) - cpu_before) / args.seconds
    result.update({"clients": args.clients, "seconds": args.seconds})
    print(
        f"Emulator capacity ({result['tool']}, {args.clients} connections, {args.seconds:g} s): "
        f"{result['requests_per_s']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms, "
        f"{result['non_2xx']} non-2xx, emulator CPU {result['emulator_cpu_share']:.0%} of a core"
    )
    save_result("emulator", result)


if __name__ == "__main__":
    main()
