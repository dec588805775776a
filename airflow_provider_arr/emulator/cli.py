"""Command line: ``arr-emulator`` / ``python -m airflow_provider_arr.emulator``.

The first stdout line is machine-readable, ``ARR_EMULATOR_URL=http://127.0.0.1:PORT``, so a parent
process can learn the port chosen for ``--port 0``; a human banner follows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from airflow_provider_arr.emulator.entra import DEFAULT_TENANT_ID, ROLES
from airflow_provider_arr.emulator.faults import FAULT_ACTIONS, OPERATIONS
from airflow_provider_arr.emulator.oddities import FOREIGN_KINDS, LINK_LOOPS, LINK_SPELLINGS, LIST_RESOURCES
from airflow_provider_arr.emulator.server import (
    CONN_TYPE,
    EmulatorServer,
    base_url,
    bind_socket,
    server_config,
)
from airflow_provider_arr.emulator.state import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_ACCOUNT_KEY,
    DEFAULT_PAGE_SIZE,
    EmulatorState,
)

DEFAULT_PORT = 8710


def build_parser() -> argparse.ArgumentParser:
    """Return the command line parser."""
    parser = argparse.ArgumentParser(
        prog="arr-emulator",
        description="Local emulator of the Azure Remote Rendering session and conversion APIs (v1 and "
        '2021-01-01) and its token service. Reference: the documentation\'s page "The emulator".',
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
        "--conversion-delay",
        type=float,
        default=5.0,
        help="seconds a new asset conversion takes (default: %(default)s)",
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
    parser.add_argument(
        "--page-size",
        type=int,
        default=DEFAULT_PAGE_SIZE,
        help="sessions per page of the 2021-01-01 list call (default: %(default)s)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        type=parse_fault,
        metavar="OPERATION:STATUS[:COUNT]",
        help="script a fault: the next COUNT (default 1) calls of OPERATION (token, create, update, "
        "list, properties, stop, conversion_create, conversion_properties, conversion_list) answer "
        "HTTP STATUS instead of being processed, as the service "
        "answers it (error body, Retry-After on 429); STATUS may also be drop_before, drop_after, "
        "truncate or garble (see EmulatorState.add_fault). Repeatable.",
    )
    parser.add_argument(
        "--fail-conversion",
        action="append",
        default=[],
        type=parse_fail_conversion,
        metavar="GLOB[:MESSAGE]",
        help="every conversion whose input asset path (relativeInputAssetPath, e.g. broken/chair.fbx) "
        "matches the shell-style GLOB ends Failed with MESSAGE (default: a generic read error) after its "
        "conversion delay; others are unaffected, whatever order they come in "
        "(see EmulatorState.fail_conversions). Repeatable.",
    )
    parser.add_argument(
        "--chaos-rate",
        type=float,
        default=0.0,
        help="probability, 0 to 1, that a call gets a random fault (429, 503, 500, dropped "
        "connection, late answer) and that a new session fails or starts slowly (default: off)",
    )
    parser.add_argument(
        "--chaos-seed", type=int, help="seed of the chaos mode's random choices, for a reproducible run"
    )
    parser.add_argument(
        "--foreign-item",
        action="append",
        default=[],
        type=parse_foreign_item,
        metavar="KIND[:RESOURCE[:COUNT]]",
        help="put COUNT (default 1) items of no client at the start of every list answer of RESOURCE "
        "(sessions, the default, or conversions), on both dialects; KIND is one of "
        f"{', '.join(FOREIGN_KINDS)} "
        "(unknown_status reports 'Hibernating'; see EmulatorState.add_foreign_items). Repeatable.",
    )
    parser.add_argument(
        "--next-link-loop",
        action="append",
        default=[],
        type=parse_link_loop,
        metavar="MODE[:RESOURCE[:PAGES[:SPELLING]]]",
        help="make every list answer of RESOURCE (sessions or conversions) carry an @nextLink that never "
        "ends the list, on both dialects: MODE self (the page itself), cycle (PAGES pages in a ring, "
        "default 2) or endless (a new page each time); SPELLING exact, relative or upper_host "
        "(see EmulatorState.loop_next_link).",
    )
    parser.add_argument(
        "--principal",
        action="append",
        default=[],
        type=parse_principal,
        metavar="CLIENT_ID:SECRET:ROLE",
        help="a Microsoft Entra service principal that may sign in (ROLE: Administrator or Client, its "
        "Remote Rendering role on the account). Entra clients need https: give --certfile. Repeatable.",
    )
    parser.add_argument(
        "--tenant-id", default=DEFAULT_TENANT_ID, help="tenant of the principals (default: %(default)s)"
    )
    parser.add_argument("--certfile", help="PEM certificate: serve https instead of http")
    parser.add_argument(
        "--keyfile", help="PEM private key of --certfile, unless the certificate file holds it"
    )
    return parser


def parse_fault(text: str) -> dict[str, Any]:
    """Parse a ``--fault`` value, ``OPERATION:STATUS[:COUNT]``, into ``EmulatorState.add_fault`` arguments.

    :param text: e.g. ``create:503``, ``list:429:3`` or ``create:drop_after``.
    :raises argparse.ArgumentTypeError: if it is not of that form.
    """
    parts = text.split(":")
    if len(parts) not in (2, 3) or parts[0] not in OPERATIONS:
        operations = ", ".join(sorted(OPERATIONS))
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected OPERATION:STATUS[:COUNT] with OPERATION one of {operations}"
        )
    arguments: dict[str, Any] = {"operation": parts[0]}
    if parts[1] in FAULT_ACTIONS and parts[1] != "answer":
        arguments["action"] = parts[1]
    elif parts[1].isdigit() and 100 <= int(parts[1]) <= 599:
        arguments["status"] = int(parts[1])
    else:
        raise argparse.ArgumentTypeError(
            f"{text!r}: STATUS must be an HTTP status (100-599) or one of drop_before, drop_after, "
            "truncate, garble"
        )
    if len(parts) == 3:
        if not parts[2].isdigit() or int(parts[2]) < 1:
            raise argparse.ArgumentTypeError(f"{text!r}: COUNT must be a whole number of at least 1")
        arguments["count"] = int(parts[2])
    return arguments


def parse_fail_conversion(text: str) -> tuple[str, str | None]:
    """Parse a ``--fail-conversion`` value, ``GLOB[:MESSAGE]``, into ``fail_conversions`` arguments.

    :param text: e.g. ``broken/*`` or ``*.ply:Point clouds are not licensed`` (the message may hold colons).
    :return: the glob, and the message (``None``: the default one).
    :raises argparse.ArgumentTypeError: if the glob is empty.
    """
    pattern, _, message = text.partition(":")
    if not pattern:
        raise argparse.ArgumentTypeError(f"{text!r}: expected GLOB[:MESSAGE] with a non-empty GLOB")
    return pattern, message or None


def parse_foreign_item(text: str) -> dict[str, Any]:
    """Parse a ``--foreign-item`` value, ``KIND[:RESOURCE[:COUNT]]``, into ``add_foreign_items`` arguments.

    :param text: e.g. ``unknown_status``, ``no_id:sessions:3`` or ``bad_types:conversions``.
    :raises argparse.ArgumentTypeError: if it is not of that form.
    """
    parts = text.split(":")
    count = parts[2] if len(parts) == 3 else "1"
    if not 1 <= len(parts) <= 3 or parts[0] not in FOREIGN_KINDS or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected KIND[:RESOURCE[:COUNT]] with KIND one of {', '.join(FOREIGN_KINDS)}"
        )
    resource = parts[1] if len(parts) > 1 else "sessions"
    if resource not in LIST_RESOURCES:
        raise argparse.ArgumentTypeError(f"{text!r}: RESOURCE must be one of {', '.join(LIST_RESOURCES)}")
    return {"kind": parts[0], "resource": resource, "count": int(count)}


def parse_link_loop(text: str) -> dict[str, Any]:
    """Parse a ``--next-link-loop`` value, ``MODE[:RESOURCE[:PAGES[:SPELLING]]]``, into ``loop_next_link``'s.

    :param text: e.g. ``self``, ``cycle:sessions:3`` or ``self:conversions:2:upper_host``.
    :raises argparse.ArgumentTypeError: if it is not of that form.
    """
    parts = text.split(":")
    mode, resource, pages, spelling = (parts + ["sessions", "2", "exact"][len(parts) - 1 :])[:4]
    if (
        len(parts) > 4
        or mode not in LINK_LOOPS
        or resource not in LIST_RESOURCES
        or not pages.isdigit()
        or int(pages) < 2
        or spelling not in LINK_SPELLINGS
    ):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected MODE[:RESOURCE[:PAGES[:SPELLING]]] with MODE one of "
            f"{', '.join(LINK_LOOPS)}, "
            f"RESOURCE one of {', '.join(LIST_RESOURCES)}, PAGES at least 2, SPELLING one of "
            f"{', '.join(LINK_SPELLINGS)}"
        )
    return {"mode": mode, "resource": resource, "pages": int(pages), "spelling": spelling}


def parse_principal(text: str) -> tuple[str, str, str]:
    """Parse a ``--principal`` value, ``CLIENT_ID:SECRET:ROLE``, into its three parts.

    :param text: e.g. ``0d5c...:my-secret:Administrator`` (the secret may contain colons).
    :raises argparse.ArgumentTypeError: if it is not of that form or the role is unknown.
    """
    client_id, _, rest = text.partition(":")
    secret, _, role = rest.rpartition(":")
    if not client_id or not secret or role not in ROLES:
        raise argparse.ArgumentTypeError(
            f"expected CLIENT_ID:SECRET:ROLE with ROLE one of {', '.join(ROLES)} (the value is not shown)"
        )
    return client_id, secret, role


def banner(url: str, state: EmulatorState, certfile: str | None = None) -> str:
    """Return the text printed at start: the URL line for programs, then account and connection for people.

    :param url: the base URL the emulator answers on.
    :param state: the emulator state (for the account).
    :param certfile: the certificate served, if https.
    """
    connection = {
        "conn_type": CONN_TYPE,
        "host": url,
        "login": state.account_id,
        "password": state.account_key,
        "extra": {"sts_url": url},
    }
    tls = []
    if certfile:
        tls = [f"  https certificate: {certfile} (clients must trust it, e.g. REQUESTS_CA_BUNDLE={certfile})"]
    return "\n".join(
        [
            f"ARR_EMULATOR_URL={url}",
            f"Azure Remote Rendering emulator listening on {url} (STS on the same port)",
            f"  account id:  {state.account_id}",
            f"  account key: {state.account_key}",
            f"  start delay: {state.start_delay:g} s, conversion delay: {state.conversion_delay:g} s,"
            f" token lifetime: {state.token_lifetime:g} s, region: {state.region}",
            "  emulator-only introspection: GET /_emulator/sessions, /_emulator/conversions,"
            " /_emulator/counts, /_emulator/faults",
            *_fault_lines(state),
            *tls,
            "Airflow connection:",
            f"export AIRFLOW_CONN_ARR_DEFAULT='{json.dumps(connection)}'",
            *_entra_lines(url, state),
        ]
    )


def _entra_lines(url: str, state: EmulatorState) -> list[str]:
    """The Entra ID sign-in of the first principal, as an Airflow connection (its secret is a flag away)."""
    principals = state.principals()
    if not principals:
        return []
    first = principals[0]
    extra = {"sts_url": url, "authority_host": url, "tenantId": first.tenant_id, "client_id": first.client_id}
    entra = {"conn_type": CONN_TYPE, "host": url, "login": state.account_id, "extra": extra}
    described = [
        f"{p.client_id} ({', '.join(f'{r} on {a}' for a, r in p.roles.items()) or 'no role'})"
        for p in principals
    ]
    lines = [f"  Entra ID principals (tenant {first.tenant_id}): {'; '.join(described)}"]
    if not url.startswith("https://"):
        lines.append("  (Entra clients accept only https: start the emulator with --certfile to sign in)")
    return [
        *lines,
        "Airflow connection with Entra ID (add the principal's client_secret to the extras):",
        f"export AIRFLOW_CONN_ARR_ENTRA='{json.dumps(entra)}'",
    ]


def _fault_lines(state: EmulatorState) -> list[str]:
    """The faults in force at start: scripted calls, failing conversions, chaos."""
    lines = []
    for fault in state.scripted_faults():
        lines.append(f"  fault: the next {fault.remaining} {fault.operation} call(s) get {fault.kind}")
    for pattern, message in state.failing_conversions():
        lines.append(f"  failing conversions: input {pattern!r} ends Failed: {message}")
    chaos = state.chaos
    if chaos is not None:
        lines.append(f"  chaos: {chaos.rate:.0%} of calls and of new sessions get a random fault")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator in the foreground until interrupted (Ctrl-C or SIGTERM).

    :param argv: the arguments; ``sys.argv[1:]`` if omitted.
    :return: the process exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.start_delay < 0 or args.conversion_delay < 0 or args.token_lifetime <= 0 or args.page_size < 1:
        parser.error(
            "--start-delay and --conversion-delay must be >= 0, --token-lifetime > 0 and --page-size >= 1"
        )
    if args.keyfile and not args.certfile:
        parser.error("--keyfile needs --certfile")
    if not 0 <= args.chaos_rate <= 1:
        parser.error("--chaos-rate must be between 0 and 1")
    for path in (args.certfile, args.keyfile):
        if path and not os.path.isfile(path):
            parser.error(f"no such file: {path}")
    state = EmulatorState(
        start_delay=args.start_delay,
        conversion_delay=args.conversion_delay,
        fail_conversions=dict(args.fail_conversion),
        token_lifetime=args.token_lifetime,
        region=args.region,
        account_id=args.account_id,
        account_key=args.account_key,
        page_size=args.page_size,
    )
    for fault in args.fault:
        state.add_fault(**fault)
    for foreign in args.foreign_item:
        state.add_foreign_items(**foreign)
    for loop in args.next_link_loop:
        state.loop_next_link(**loop)
    for client_id, secret, role in args.principal:
        state.add_principal(client_id, secret, role, tenant_id=args.tenant_id)
    if args.chaos_rate > 0:
        state.enable_chaos(rate=args.chaos_rate, seed=args.chaos_seed)
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as error:
        print(f"arr-emulator: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    print(banner(base_url(args.host, port, tls=bool(args.certfile)), state, args.certfile), flush=True)
    try:
        with sock:
            config = server_config(state, args.host, port, args.certfile, args.keyfile)
            EmulatorServer(config).run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn has already shut down gracefully; it re-raises Ctrl-C for the caller.
        pass
    return 0
