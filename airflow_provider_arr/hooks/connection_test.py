"""Airflow's "Test connection" for this hook: one quick try of each call, and an answer that says what to fix.

A test is a person waiting at a button (or ``airflow connections test``): the hook's retries, meant to
ride out a busy service during a DAG run, would make an unreachable host answer after 20-30 s of
backoff. Here each call is tried once, with short timeouts, and a failure names the field to change.
Airflow tests a connection under a random temporary id, so no answer names the connection.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from airflow_provider_arr.exceptions import RemoteRenderingError
from airflow_provider_arr.hooks import entra
from airflow_provider_arr.hooks.settings import ConnectionSettings
from airflow_provider_arr.hooks.urls import is_loopback
from airflow_provider_arr.models import ArrInputError

if TYPE_CHECKING:
    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

#: The longest wait for a TCP connection during a test, in seconds (the connection's own may be longer).
TEST_CONNECT_TIMEOUT = 5.0
#: The longest wait for an answer during a test, in seconds.
TEST_READ_TIMEOUT = 15.0


def test_connection(hook: RemoteRenderingHook) -> tuple[bool, str]:
    """Check the connection's fields, fetch a token and list the sessions: ``(passed, message)``.

    With Entra ID the list call matters most: the token service checks the identity, but the roles
    (Administrator, Client) are only checked by the service itself.
    """
    named = f"connection {hook.arr_conn_id!r} "
    try:
        settings = hook.settings
    except ArrInputError as error:  # "connection '<id>' host: ..." -> "host: ..."
        return False, str(error).removeprefix(named)
    hook._settings = dataclasses.replace(
        settings,
        retry_limit=1,
        connect_timeout=min(settings.connect_timeout, TEST_CONNECT_TIMEOUT),
        read_timeout=min(settings.read_timeout, TEST_READ_TIMEOUT),
    )
    step = "token"
    try:
        hook.get_token()
        step = "service"
        sessions = hook.list_sessions()
    except RemoteRenderingError as error:
        return False, explain(error, settings, step)
    except Exception as error:  # the button shows whatever we return; never a traceback
        return False, str(error).replace(named, "the connection ")
    finally:
        hook._settings = settings
    who = f" as {entra.describe(settings)}" if settings.uses_entra else ""
    return True, f"Connected{who}: token fetched, {len(sessions)} active session(s) in the account."


def explain(error: RemoteRenderingError, settings: ConnectionSettings, step: str) -> str:
    """The failed call's account (status, service message, MS-CV) and what to change.

    :param error: the call's error.
    :param settings: the connection's settings.
    :param step: ``token`` (the token service failed) or ``service`` (the session API failed).
    """
    if step == "token":
        where = f"the token service {settings.sts_url} (Token service URL, extra sts_url)"
    else:
        where = f"the service {settings.base_url} (Service URL, or extra region)"
    status = error.http_status
    if status is None and error.hint and not error.hint.startswith("Gave up"):
        fix = error.hint  # no request was sent: the values themselves are wrong (policy.transport_error)
    elif status is None:
        fix = f"No answer from {where}: check that URL, and that the Airflow API server can reach it."
        if step == "token" and _is_local(settings.base_url) and not _is_local(settings.sts_url):
            fix += (
                " The Service URL is a local emulator, which serves tokens too: "
                f"set the Token service URL to {settings.base_url}."
            )
    elif status in (408, 429) or status >= 500:
        fix = f"{where[0].upper()}{where[1:]} is busy or failing (HTTP {status}); test again in a minute."
    elif status == 404:
        fix = f"{where[0].upper()}{where[1:]} does not know this path or account: check that URL"
        fix += " and the account id (login)." if step == "service" else "."
    else:
        fix = error.hint or ""
    return str(
        RemoteRenderingError(
            error.operation,
            http_status=status,
            service_message=error.service_message,
            ms_cv=error.ms_cv,
            hint=fix or None,
            code=error.code,
        )
    )


def _is_local(url: str) -> bool:
    from urllib.parse import urlsplit

    return is_loopback(urlsplit(url).hostname or "")
