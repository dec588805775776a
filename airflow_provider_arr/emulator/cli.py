"""Command line: ``arr-emulator`` / ``python -m airflow_provider_arr.emulator``.

The first stdout line is machine-readable, ``ARR_EMULATOR_URL=http://127.0.0.1:PORT``, so a parent
process can learn the port chosen for ``--port 0``; a human banner follows.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import uvicorn

from airflow_provider_arr.emulator.server import CONN_TYPE, base_url, bind_socket, server_config
from airflow_provider_arr.emulator.state import DEFAULT_ACCOUNT_ID, DEFAULT_ACCOUNT_KEY, EmulatorState

DEFAULT_PORT = 8710


def build_parser() -> argparse.ArgumentParser:
    """Return the command line parser."""
    parser = argparse.ArgumentParser(
        prog="arr-emulator",
        description="Local emulator of the Azure Remote Rendering session API (v1) and its token service.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port, 0 = any free one (default: %(default)s)"
    )
    parser.add_argument(
        "--start-delay",
        type=float,
        default=5.0,
        help="seconds a new session stays Starting (default: %(default)s)",
    )
    parser.add_argument(
        "--token-lifetime",
        type=float,
        default=86_400,
        help="seconds an access token is valid (default: %(default)s)",
    )
    parser.add_argument(
        "--region", default="westus2", help="region in session hostnames (default: %(default)s)"
    )
    parser.add_argument("--account-id", default=DEFAULT_ACCOUNT_ID, help="account id (default: %(default)s)")
    parser.add_argument(
        "--account-key", default=DEFAULT_ACCOUNT_KEY, help="account key (default: %(default)s)"
    )
    return parser


def banner(url: str, state: EmulatorState) -> str:
    """Return the text printed at start: the URL line for programs, then account and connection for people.

    :param url: the base URL the emulator answers on.
    :param state: the emulator state (for the account).
    """
    connection = {
        "conn_type": CONN_TYPE,
        "host": url,
        "login": state.account_id,
        "password": state.account_key,
        "extra": {"sts_url": url},
    }
    return "\n".join(
        [
            f"ARR_EMULATOR_URL={url}",
            f"Azure Remote Rendering emulator listening on {url} (STS on the same port)",
            f"  account id:  {state.account_id}",
            f"  account key: {state.account_key}",
            f"  start delay: {state.start_delay:g} s, token lifetime: {state.token_lifetime:g} s,"
            f" region: {state.region}",
            "  emulator-only introspection: GET /_emulator/sessions, GET /_emulator/counts",
            "Airflow connection:",
            f"export AIRFLOW_CONN_ARR_DEFAULT='{json.dumps(connection)}'",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator in the foreground until interrupted (Ctrl-C or SIGTERM).

    :param argv: the arguments; ``sys.argv[1:]`` if omitted.
    :return: the process exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.start_delay < 0 or args.token_lifetime <= 0:
        parser.error("--start-delay must be >= 0 and --token-lifetime > 0")
    state = EmulatorState(
        start_delay=args.start_delay,
        token_lifetime=args.token_lifetime,
        region=args.region,
        account_id=args.account_id,
        account_key=args.account_key,
    )
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as error:
        print(f"arr-emulator: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    print(banner(base_url(args.host, port), state), flush=True)
    try:
        with sock:
            uvicorn.Server(server_config(state, args.host, port)).run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn has already shut down gracefully; it re-raises Ctrl-C for the caller.
        pass
    return 0
