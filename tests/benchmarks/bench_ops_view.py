"""The operations view's account page at scale: 1,000 live sessions and 1,000 ownership records (issue 20).

Issue 20 asks that the account view answer within 1 s of server time for 1,000 live sessions and 1,000
records. This builds that world and times the view; it prints figures and asserts nothing about time.

- Airflow's real API server app (``create_app``) over a fresh sqlite database in a throwaway
  ``AIRFLOW_HOME``, the plugin mounted, an admin's token from the simple auth manager;
- the emulator on a loopback socket with ``--sessions`` Ready sessions on one account, reached through
  one priced connection (``AIRFLOW_CONN_ARR_BENCH``);
- ``--records`` ownership records (Airflow Variables), each naming one session, owned by create task
  instances of 100 real DAG runs (half running, half success), so every verdict is read from Airflow.

Each round is one ``GET /arr/api/accounts`` (JSON) through ``TestClient`` (in-process ASGI, no socket to
the app); the HTML page is timed too. ``server`` is the view's own ``server_seconds`` (records read,
Airflow read, the list call and the rows); ``wall`` is the whole request (auth, JSON encoding,
rendering). The emulator's request counts are printed too: one list call per connection and view.

Run: ``PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_ops_view.py [--sessions 1000] [--records 1000]
[--rounds 7]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="arr-bench-ops-")
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    try:
        run(args.sessions, args.records, args.rounds, Path(home))
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run(sessions: int, records: int, rounds: int, home: Path) -> None:
    from fastapi.testclient import TestClient

    from airflow_provider_arr.emulator import ArrEmulator
    from tests.plugins.conftest import build_airflow_app, make_runs, role_tokens

    (home / "plugins").mkdir()
    started = time.perf_counter()
    app = build_airflow_app(home / "plugins")
    token = role_tokens()["admin"]
    with ArrEmulator(start_delay=0, token_lifetime=3600) as emulator:
        conn = emulator.connection(price_per_hour={"standard": 2.5, "premium": 10})
        os.environ["AIRFLOW_CONN_ARR_BENCH"] = json.dumps(conn)
        ids = [
            emulator.state.create_session(emulator.account_id, timedelta(hours=4)).session_id
            for _ in range(sessions)
        ]
        runs = {f"run_{i:03d}": ("running" if i % 2 else "success") for i in range(100)}
        make_runs(runs)
        write_records(ids[:records], list(runs), "arr_bench")
        setup = time.perf_counter() - started
        client = TestClient(app)
        headers = {"Authorization": f"Bearer {token}"}
        first = client.get("/arr/api/accounts", headers=headers)  # warm-up: first connection, templates
        assert first.status_code == 200, first.text
        emulator.state.reset_counts()
        server, wall, html = [], [], []
        for _ in range(rounds):
            began = time.perf_counter()
            answer = client.get("/arr/api/accounts", headers=headers)
            wall.append(time.perf_counter() - began)
            server.append(answer.json()["server_seconds"])
            began = time.perf_counter()
            page = client.get("/arr/", headers=headers)
            html.append(time.perf_counter() - began)
            assert page.status_code == 200
        counts = emulator.state.request_counts
        view = answer.json()
    (section,) = view["connections"]
    verdicts: dict[str, int] = {}
    for row in section["sessions"]:
        verdicts[row["verdict"]] = verdicts.get(row["verdict"], 0) + 1
    print(f"setup {setup:.1f} s; {len(section['sessions'])} rows; verdicts {verdicts}")
    print(f"service requests per view: {dict(counts)} over {2 * rounds} views (JSON + HTML)")
    print(f"{'figure':<38}{'median':>9}{'min':>9}{'max':>9}")
    for name, values in (
        ("server time, JSON view (s)", server),
        ("wall time, GET /arr/api/accounts (s)", wall),
        ("wall time, GET /arr/ HTML (s)", html),
    ):
        print(f"{name:<38}{statistics.median(values):>9.3f}{min(values):>9.3f}{max(values):>9.3f}")


def write_records(session_ids: list[str], run_ids: list[str], conn_id: str) -> None:
    """One record per session: create task instance ``create[i]`` of the runs, in turn."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    from airflow_provider_arr.ownership import Owner, OwnershipRecord
    from tests.plugins.conftest import DAG_ID

    with create_session() as session:
        for i, session_id in enumerate(session_ids):
            owner = Owner(DAG_ID, run_ids[i % len(run_ids)], "create", i // len(run_ids))
            record = OwnershipRecord(owner, conn_id, "v1", {session_id: {"try": 1}})
            session.add(Variable(key=owner.key, val=record.to_json(), description="bench record"))


if __name__ == "__main__":
    main()
