"""The hook for the Azure Remote Rendering session-management REST API.

It is the only code that speaks HTTP to the service. The sync path uses one pooled
``requests.Session`` per hook, the async path (for the trigger) one ``httpx.AsyncClient`` per event
loop, shared by every hook on it; both share the connection settings, the process-wide token cache,
one retry policy (tenacity) and one error mapping, so the two paths differ only in the transport call.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ipaddress
import json
import math
import random
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import tenacity
from airflow.sdk import BaseHook

from airflow_provider_arr.exceptions import (
    RemoteRenderingError,
    RemoteRenderingSessionMayExistError,
    RemoteRenderingSessionNotFoundError,
)
from airflow_provider_arr.models import (
    API_2021,
    API_V1,
    API_VERSIONS,
    ArrInputError,
    ArrResponseError,
    SessionProperties,
    format_timespan,
    lease_minutes,
    validate_lease,
    validate_models,
    validate_session_id,
    validate_size,
)

if TYPE_CHECKING:
    import requests  # imported where used: it would add ~40 ms to every DAG file that imports us

DEFAULT_STS_URL = "https://sts.mixedreality.azure.com"
REGION_URL = "https://remoterendering.{region}.mixedreality.azure.com"

#: Tokens are refreshed this long before their ``exp`` (or at half their lifetime, if that is sooner).
TOKEN_REFRESH_LEAD = 300.0
#: Lifetime assumed for a token that is not a JWT, so its expiry cannot be read.
NON_JWT_TOKEN_LIFETIME = 600.0

_CONNECTION_EXTRAS = {
    # name: (type, default)
    "connect_timeout": (float, 10.0),
    "read_timeout": (float, 30.0),
    "retry_limit": (int, 6),
    "retry_max_time": (float, 120.0),
    "retry_min_wait": (float, 1.0),
    "retry_max_wait": (float, 30.0),
}


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything the hook needs from an Airflow connection, checked once.

    :param base_url: the session API's base URL, without a trailing slash.
    :param sts_url: the token service's base URL.
    :param account_id: the ARR account id (a GUID).
    :param account_key: the account key (secret).
    :param api_version: the API dialect, ``v1`` or ``2021-01-01``.
    :param connect_timeout: seconds to wait for a TCP connection.
    :param read_timeout: seconds to wait for an answer.
    :param retry_limit: attempts per call.
    :param retry_max_time: seconds one call may spend retrying.
    :param retry_min_wait: the shortest wait between two attempts, in seconds.
    :param retry_max_wait: the longest wait between two attempts, in seconds.
    """

    base_url: str
    sts_url: str
    account_id: str
    account_key: str = field(repr=False)
    api_version: str = "v1"
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    retry_limit: int = 6
    retry_max_time: float = 120.0
    retry_min_wait: float = 1.0
    retry_max_wait: float = 30.0

    @property
    def token_cache_key(self) -> tuple[str, str, str]:
        """
        Where this connection's token lives in the process-wide cache.

        The key's hash is part of it: a connection with a wrong key must not reuse a token fetched
        with the right one (Airflow's "Test connection" would say "Connected").
        """
        return (self.sts_url, self.account_id, hashlib.sha256(self.account_key.encode()).hexdigest())

    @classmethod
    def from_connection(
        cls, conn_id: str, host: str | None, login: str | None, password: str | None, extra: Mapping[str, Any]
    ) -> ConnectionSettings:
        """Validate a connection's fields; errors name the connection and the field.

        :param conn_id: the connection id, for error messages.
        :param host: the connection's host: the service base URL.
        :param login: the account id.
        :param password: the account key.
        :param extra: the connection's extras.
        """

        def where(name: str) -> str:
            return f"connection {conn_id!r} {name}"

        if not isinstance(extra, Mapping):
            raise ArrInputError(where("extra"), "must be a JSON object")
        region = extra.get("region")
        if host:
            base_url = host.strip()
        elif region:
            if not isinstance(region, str) or not region.isalnum():
                raise ArrInputError(
                    where("extra 'region'"), f"must be a region name like 'westus2', got {region!r}"
                )
            base_url = REGION_URL.format(region=region.lower())
        else:
            raise ArrInputError(
                where("host"),
                "is empty; set the service URL (e.g. https://remoterendering.westus2.mixedreality.azure.com) "
                "or the extra 'region'",
            )
        sts_url = extra.get("sts_url") or DEFAULT_STS_URL
        if not isinstance(sts_url, str):
            raise ArrInputError(
                where("extra 'sts_url'"), f"must be a URL string, got {type(sts_url).__name__}"
            )
        account_id = (login or "").strip()
        try:
            validate_session_id(account_id, where("login (account id)"))
        except ArrInputError:
            raise ArrInputError(
                where("login (account id)"), f"must be the account's GUID, got {account_id!r}"
            ) from None
        if not password:
            raise ArrInputError(where("password (account key)"), "is empty")
        api_version = extra.get("api_version") or "v1"
        if api_version not in API_VERSIONS:
            raise ArrInputError(
                where("extra 'api_version'"), f"must be one of {API_VERSIONS}, got {api_version!r}"
            )
        numbers: dict[str, Any] = {}
        for name, (kind, default) in _CONNECTION_EXTRAS.items():
            value = extra.get(name, default)
            try:
                number = kind(value)
            except (TypeError, ValueError, OverflowError):
                raise ArrInputError(where(f"extra {name!r}"), f"must be a number, got {value!r}") from None
            if not math.isfinite(number):
                raise ArrInputError(where(f"extra {name!r}"), f"must be a finite number, got {value!r}")
            if number <= 0 and name != "retry_min_wait":
                raise ArrInputError(where(f"extra {name!r}"), f"must be greater than zero, got {value!r}")
            numbers[name] = number
        return cls(
            base_url=_checked_url(base_url, where("host")),
            sts_url=_checked_url(sts_url, where("extra 'sts_url'")),
            account_id=account_id.lower(),
            account_key=password,
            api_version=api_version,
            **numbers,
        )


def _check_raw_extra(conn_id: str, extra: str | None) -> None:
    """
    Refuse extras that are not a JSON object.

    Airflow reads unparsable extras as ``{}``, which would silently send the key to the default STS.
    """
    if not extra or not extra.strip():
        return
    try:
        parsed = json.loads(extra)
    except ValueError:
        raise ArrInputError(f"connection {conn_id!r} extra", "is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise ArrInputError(
            f"connection {conn_id!r} extra", f"must be a JSON object, got {type(parsed).__name__}"
        )


def _checked_url(url: str, where: str) -> str:
    """Refuse URLs without a scheme, and plain http to anything but loopback (it would expose secrets)."""
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError as error:
        raise ArrInputError(where, f"is not a valid URL ({error}): {url!r}") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ArrInputError(where, f"must be a full http(s) URL like https://host, got {url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ArrInputError(
            where,
            f"uses plain http:// to {parts.hostname!r}; the account key and tokens are only sent over https "
            "(plain http is allowed for loopback addresses, e.g. the emulator)",
        )
    return url.strip().rstrip("/")


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------------------------------
# Token cache: one per process, shared by every hook instance, sync and async.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CachedToken:
    value: str = field(repr=False)
    refresh_at: float


class _TokenCache:
    """STS tokens keyed by (STS URL, account id), refreshed shortly before they expire."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], _CachedToken] = {}
        self._lock = threading.Lock()
        self._fetch_locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._async_locks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[tuple[str, str, str], asyncio.Lock]
        ] = weakref.WeakKeyDictionary()

    def get(self, key: tuple[str, str, str]) -> str | None:
        cached = self._tokens.get(key)
        if cached is not None and time.time() < cached.refresh_at:
            return cached.value
        return None

    def put(self, key: tuple[str, str, str], token: str) -> None:
        self._tokens[key] = _CachedToken(token, _refresh_time(token))

    def invalidate(self, key: tuple[str, str, str], token: str) -> None:
        """Forget ``token`` (refused with a 401), unless another caller already replaced it."""
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and cached.value == token:
                del self._tokens[key]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()

    def fetch_lock(self, key: tuple[str, str, str]) -> threading.Lock:
        with self._lock:
            return self._fetch_locks.setdefault(key, threading.Lock())

    def async_fetch_lock(self, key: tuple[str, str, str]) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._lock:
            return self._async_locks.setdefault(loop, {}).setdefault(key, asyncio.Lock())


_token_cache = _TokenCache()


def clear_token_cache() -> None:
    """Forget every cached STS token of this process (tests, or after rotating an account key)."""
    _token_cache.clear()


def _refresh_time(token: str) -> float:
    """When to fetch a new token: 5 minutes before ``exp``, or at half-life for short-lived tokens."""
    now = time.time()
    expires_at = _jwt_expiry(token)
    if expires_at is None:
        expires_at = now + NON_JWT_TOKEN_LIFETIME
    lifetime = max(expires_at - now, 0.0)
    return expires_at - min(TOKEN_REFRESH_LEAD, lifetime / 2)


def _jwt_expiry(token: str) -> float | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    expiry = payload.get("exp") if isinstance(payload, dict) else None
    return float(expiry) if isinstance(expiry, int | float) and not isinstance(expiry, bool) else None


# --------------------------------------------------------------------------------------------------
# The async transport: one pooled client per event loop, shared by every hook on that loop.
# --------------------------------------------------------------------------------------------------

#: Requests in flight at once on one event loop's shared client (all hosts together); more wait in turn.
#: 20 carry 200 polls a second at 100 ms each: 1,000 sessions polled every 5 s. httpcore's pool scans
#: every connection on every request, so a bigger pool costs CPU on each poll (tests/benchmarks).
ASYNC_MAX_CONNECTIONS = 20
#: Idle connections the shared client keeps open: all of them (httpcore closes an idle connection
#: whenever the pool holds more connections than this, busy ones included).
ASYNC_MAX_KEEPALIVE = ASYNC_MAX_CONNECTIONS


class _SharedAsyncClient:
    """An ``httpx.AsyncClient`` for one event loop, and the slots that bound the requests in flight.

    httpcore's pool does work proportional to (queued requests x connections) on every request
    event; letting only as many requests into it as it has connections keeps that cost flat when
    thousands of triggers poll at once.
    """

    def __init__(self) -> None:
        import httpx

        self.client = httpx.AsyncClient(
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=ASYNC_MAX_CONNECTIONS, max_keepalive_connections=ASYNC_MAX_KEEPALIVE
            ),
        )
        self.slots = asyncio.Semaphore(ASYNC_MAX_CONNECTIONS)
        self.users = 0

    async def acquire_slot(self, timeout: float) -> None:
        """Wait for a free slot, at most ``timeout`` seconds (httpx's pool timeout), then take it."""
        if not self.slots.locked():
            await self.slots.acquire()
            return
        import httpx

        try:
            async with asyncio.timeout(timeout):
                await self.slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout(f"no free connection within {timeout:g} s") from None


class _AsyncClients:
    """One :class:`_SharedAsyncClient` per event loop, shared by the hooks on it, closed with its last user.

    A client costs an SSL context (about 1 MB and up to 0.1 s of CPU), and a triggerer may
    run thousands of triggers on one loop: sharing one client keeps that cost, and the number of open
    connections, independent of the number of waits. Timeouts are set per request.
    """

    def __init__(self) -> None:
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _SharedAsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def acquire(self, loop: asyncio.AbstractEventLoop) -> _SharedAsyncClient:
        shared = self._clients.get(loop)
        if shared is None:
            shared = self._clients[loop] = _SharedAsyncClient()
        shared.users += 1
        return shared

    async def release(self, loop: asyncio.AbstractEventLoop, shared: _SharedAsyncClient) -> None:
        shared.users -= 1
        if shared.users <= 0:
            if self._clients.get(loop) is shared:
                del self._clients[loop]
            await shared.client.aclose()


_async_clients = _AsyncClients()


# --------------------------------------------------------------------------------------------------
# One request, one answer, and the policy that maps answers and transport errors to outcomes.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    operation: str
    method: str
    url: str
    body: dict[str, Any] | None = None
    ok: frozenset[int] = frozenset({200})
    #: False where a blind retry could start a second billed session (create).
    retry_safe: bool = True
    #: The session id the client chose (a 2021-01-01 create).
    session_id: str | None = None


@dataclass(frozen=True)
class _Response:
    status: int
    headers: Mapping[str, str]
    text: str

    @property
    def ms_cv(self) -> str | None:
        return self.headers.get("ms-cv") or self.headers.get("MS-CV")

    def json(self, operation: str) -> Any:
        try:
            return json.loads(self.text) if self.text else None
        except ValueError:
            raise RemoteRenderingError(
                operation,
                http_status=self.status,
                service_message=f"answer is not JSON: {self.text[:200]!r}",
                ms_cv=self.ms_cv,
            ) from None


class _TransientError(RemoteRenderingError):
    """A failure worth retrying: throttling, a server error or a network error."""

    def __init__(self, operation: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(operation, **kwargs)


class _TokenRefused(Exception):
    """The session API answered 401: the token is stale or revoked."""


_RETRY_AFTER_MAX = 3600.0
_SESSION_MAY_EXIST = (
    "The service may have started the session anyway, so it was not retried (a second create could "
    "start a second billed VM): list the account's sessions and stop any you do not want."
)


#: How many times the account is listed, after a create whose answer was lost, to find the session.
_ADOPTION_LISTINGS = 3


def _nothing_appeared(error: RemoteRenderingError) -> RemoteRenderingError:
    return error.with_hint(
        f"No new session appeared in the account after {_ADOPTION_LISTINGS} listings, so the service "
        "most likely did not start one and a retry is safe; if one appears later, it is not this task's: "
        "stop it.",
        RemoteRenderingSessionMayExistError,
    )


def _cannot_check(error: RemoteRenderingError, list_error: RemoteRenderingError) -> RemoteRenderingError:
    return error.with_hint(
        f"{_SESSION_MAY_EXIST} Listing the sessions to find it failed too: {list_error}",
        RemoteRenderingSessionMayExistError,
    )


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Read ``Retry-After`` as seconds or as an HTTP date; ``None`` if absent or unreadable."""
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), _RETRY_AFTER_MAX)


def _service_message(text: str) -> str | None:
    """Pull the message out of whatever error body the service sent (JSON of either dialect, or text)."""
    if not text.strip():
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, str):
            return error
        if isinstance(error, dict):
            message = error.get("message") or error.get("Message")
            code = error.get("code")
            if message and code:
                return f"{code}: {message}"
            if message or code:
                return str(message or code)
    return text.strip()[:500]


def _check(request: _Request, response: _Response) -> _Response:
    """Map an answer to a result or to the right error; 401 is handled by the caller."""
    if response.status in request.ok:
        return response
    status = response.status
    error_args: dict[str, Any] = {
        "http_status": status,
        "service_message": _service_message(response.text),
        "ms_cv": response.ms_cv,
    }
    if status == 429 or status == 503:
        # The service did not act on the request: safe to retry, create included.
        raise _TransientError(request.operation, retry_after=_retry_after(response.headers), **error_args)
    if status >= 500 or status == 408:
        if not request.retry_safe:
            raise RemoteRenderingSessionMayExistError(
                request.operation, hint=_SESSION_MAY_EXIST, **error_args
            )
        raise _TransientError(request.operation, retry_after=_retry_after(response.headers), **error_args)
    if status == 404:
        raise RemoteRenderingSessionNotFoundError(request.operation, **error_args)
    hints = {
        401: "The service refused the access token; check the connection's account id and key.",
        403: "The token belongs to another account; check the connection's login (account id).",
        409: "On 2021-01-01 a session with this id already exists with other settings; on v1 the account "
        "may have too many sessions.",
        422: "The service only extends a lease: the new lease must be longer than the current one.",
    }
    raise RemoteRenderingError(request.operation, hint=hints.get(status), **error_args)


def _sent_nothing(error: BaseException) -> bool:
    """Whether a transport error happened before the request could reach the service."""
    import requests

    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx comes with Airflow 3
        httpx = None  # type: ignore[assignment]
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(error, requests.exceptions.ConnectionError):
        # urllib3 reports refused or unreachable hosts as NewConnectionError inside MaxRetryError.
        from urllib3.exceptions import NewConnectionError

        reason = getattr(error.args[0], "reason", None) if error.args else None
        return isinstance(reason, NewConnectionError)
    if httpx is not None:
        return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return False


def _transport_error(request: _Request, error: Exception) -> RemoteRenderingError:
    """Map a network error; for create, one that may have reached the service is not retried."""
    message = f"{type(error).__name__}: {error}"
    if not request.retry_safe and not _sent_nothing(error):
        return RemoteRenderingSessionMayExistError(
            request.operation, service_message=message, hint=_SESSION_MAY_EXIST
        )
    return _TransientError(request.operation, service_message=message)


def _give_up(retry_state: tenacity.RetryCallState) -> Any:
    """Re-raise the last error with a sentence on how long we tried."""
    error = retry_state.outcome.exception() if retry_state.outcome else None
    assert isinstance(error, RemoteRenderingError)
    hint = (
        f"Gave up after {retry_state.attempt_number} attempt(s) in {retry_state.seconds_since_start:.1f} s "
        "(connection extras retry_limit / retry_max_time set the budget)."
    )
    # A give-up is final: the public type, so an outer retry loop (a token fetch inside a call) stops too.
    final_type = RemoteRenderingError if type(error) is _TransientError else type(error)
    raise error.with_hint(hint, final_type) from error


class RemoteRenderingHook(BaseHook):
    """Talk to the Azure Remote Rendering session API: tokens, and create / get / list / update / stop.

    The connection's ``host`` is the service URL (or extra ``region``), ``login`` the account id,
    ``password`` the account key; extras: ``sts_url``, ``api_version``, ``connect_timeout``,
    ``read_timeout``, ``retry_limit``, ``retry_max_time``, ``retry_min_wait``, ``retry_max_wait``.

    :param arr_conn_id: the Airflow connection id.
    """

    conn_name_attr = "arr_conn_id"
    default_conn_name = "arr_default"
    conn_type = "azure_remote_rendering"
    hook_name = "Azure Remote Rendering"

    def __init__(self, arr_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arr_conn_id = arr_conn_id
        self._settings: ConnectionSettings | None = None
        self._http: requests.Session | None = None
        self._async_http: _SharedAsyncClient | None = None
        #: The account's active sessions just before this hook's latest v1 create was sent: what
        #: :meth:`create_session` (and a killed task's cleanup) compares with to find the new one.
        self.sessions_before_create: set[str] | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None

    # ---------------------------------------------------------------- connection and token

    @property
    def settings(self) -> ConnectionSettings:
        """The connection's validated settings (read once, synchronously)."""
        if self._settings is None:
            conn = self.get_connection(self.arr_conn_id)
            if conn.password:
                _mask(conn.password)
            _check_raw_extra(self.arr_conn_id, conn.extra)
            self._settings = self._load_settings(conn.host, conn.login, conn.password, conn.extra_dejson)
        return self._settings

    async def asettings(self) -> ConnectionSettings:
        """The connection's validated settings, read without blocking the event loop (triggerer)."""
        if self._settings is None:
            from airflow.providers.common.compat.connection import (
                get_async_connection,
                get_async_extra_dejson,
            )

            conn = await get_async_connection(self.arr_conn_id, self)
            _check_raw_extra(self.arr_conn_id, conn.extra)
            extra = await get_async_extra_dejson(conn)
            if conn.password:
                await _amask(conn.password)
            self._settings = self._load_settings(conn.host, conn.login, conn.password, extra)
        return self._settings

    def _load_settings(
        self, host: str | None, login: str | None, password: str | None, extra: Any
    ) -> ConnectionSettings:
        return ConnectionSettings.from_connection(self.arr_conn_id, host, login, password, extra or {})

    def get_token(self) -> str:
        """Return a valid STS access token, from the process-wide cache when it has one."""
        settings = self.settings
        key = settings.token_cache_key
        token = _token_cache.get(key)
        if token is None:
            with _token_cache.fetch_lock(key):
                token = _token_cache.get(key)
                if token is None:
                    response = self._call(self._token_request(settings), self._send_sync)
                    token = self._store_token(key, response)
                    _mask(token)
        return token

    async def aget_token(self) -> str:
        """Async :meth:`get_token`; concurrent waiters on one event loop share a single STS call."""
        settings = await self.asettings()
        key = settings.token_cache_key
        token = _token_cache.get(key)
        if token is None:
            async with _token_cache.async_fetch_lock(key):
                token = _token_cache.get(key)
                if token is None:
                    response = await self._acall(self._token_request(settings), self._send_async)
                    token = self._store_token(key, response)
                    await _amask(token)
        return token

    def _token_request(self, settings: ConnectionSettings) -> _Request:
        return _Request("get_token", "GET", f"{settings.sts_url}/accounts/{settings.account_id}/token")

    def _store_token(self, key: tuple[str, str, str], response: _Response) -> str:
        body = response.json("get_token")
        token = body.get("AccessToken") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RemoteRenderingError(
                "get_token",
                http_status=response.status,
                service_message="the answer has no 'AccessToken'",
                ms_cv=response.ms_cv,
            )
        _token_cache.put(key, token)
        return token

    # ---------------------------------------------------------------- the five session calls

    def create_session(
        self,
        max_lease_time: timedelta | str,
        size: str = "standard",
        models: Sequence[str] | None = (),
        session_id: str | None = None,
    ) -> str:
        """
        Start a new rendering session (billed until it stops) and return its id.

        On ``2021-01-01`` the client names the session: the same ``session_id`` sent again reconnects
        to the session it already started (the service answers 200), which makes retries safe.

        :param max_lease_time: the lease (``timedelta`` or ``"4:0:0"``); on ``v1`` the total time since
            start, on ``2021-01-01`` the time after Ready, in whole minutes.
        :param size: ``standard`` or ``premium``.
        :param models: asset-container URLs to preload (``v1`` only).
        :param session_id: ``2021-01-01`` only: the id to give the session; a random one by default.
        """
        settings = self.settings
        request = self._create_request(settings, max_lease_time, size, models, session_id)
        if request.retry_safe:  # 2021-01-01: the client named the session
            response = self._call(request, self._send_sync)
            return request.session_id or self._created_session_id(settings, response)
        before = self.sessions_before_create = {session.session_id for session in self.list_sessions()}
        try:
            return self._created_session_id(settings, self._call(request, self._send_sync))
        except RemoteRenderingSessionMayExistError as error:
            for attempt in range(_ADOPTION_LISTINGS):
                time.sleep(settings.retry_min_wait * attempt)
                adopted = self._adopt(request, before, error, self._listing_after(error, self.list_sessions))
                if adopted is not None:
                    return adopted
            raise _nothing_appeared(error) from error

    async def acreate_session(
        self,
        max_lease_time: timedelta | str,
        size: str = "standard",
        models: Sequence[str] | None = (),
        session_id: str | None = None,
    ) -> str:
        """Async :meth:`create_session`."""
        settings = await self.asettings()
        request = self._create_request(settings, max_lease_time, size, models, session_id)
        if request.retry_safe:  # 2021-01-01: the client named the session
            response = await self._acall(request, self._send_async)
            return request.session_id or self._created_session_id(settings, response)
        before = {session.session_id for session in await self.alist_sessions()}
        try:
            return self._created_session_id(settings, await self._acall(request, self._send_async))
        except RemoteRenderingSessionMayExistError as error:
            for attempt in range(_ADOPTION_LISTINGS):
                await asyncio.sleep(settings.retry_min_wait * attempt)
                try:
                    after = await self.alist_sessions()
                except RemoteRenderingError as list_error:
                    raise _cannot_check(error, list_error) from error
                adopted = self._adopt(request, before, error, after)
                if adopted is not None:
                    return adopted
            raise _nothing_appeared(error) from error

    def get_session(self, session_id: str) -> SessionProperties:
        """
        Return a session's properties (status, hostname, lease...).

        :param session_id: the session's id.
        """
        settings = self.settings
        request = self._get_request(settings, session_id)
        return _properties(self._call(request, self._send_sync), request.operation, settings.api_version)

    async def aget_session(self, session_id: str) -> SessionProperties:
        """Async :meth:`get_session`."""
        settings = await self.asettings()
        request = self._get_request(settings, session_id)
        return _properties(
            await self._acall(request, self._send_async), request.operation, settings.api_version
        )

    def list_sessions(self) -> list[SessionProperties]:
        """Return the account's active sessions (stopped ones are not listed), following every page."""
        settings = self.settings
        sessions: list[SessionProperties] = []
        request: _Request | None = self._list_request(settings)
        while request is not None:
            page, request = self._session_page(settings, self._call(request, self._send_sync))
            sessions.extend(page)
        return sessions

    async def alist_sessions(self) -> list[SessionProperties]:
        """Async :meth:`list_sessions`."""
        settings = await self.asettings()
        sessions: list[SessionProperties] = []
        request: _Request | None = self._list_request(settings)
        while request is not None:
            page, request = self._session_page(settings, await self._acall(request, self._send_async))
            sessions.extend(page)
        return sessions

    def update_session(self, session_id: str, max_lease_time: timedelta | str) -> None:
        """
        Set a session's lease to a new total; the service only extends.

        :param session_id: the session's id.
        :param max_lease_time: the new total lease.
        """
        try:
            self._call(self._update_request(self.settings, session_id, max_lease_time), self._send_sync)
        except RemoteRenderingError as error:
            if error.http_status not in (400, 422):
                raise
            self._already_extended(error, self.get_session(session_id), max_lease_time)

    async def aupdate_session(self, session_id: str, max_lease_time: timedelta | str) -> None:
        """Async :meth:`update_session`."""
        request = self._update_request(await self.asettings(), session_id, max_lease_time)
        try:
            await self._acall(request, self._send_async)
        except RemoteRenderingError as error:
            if error.http_status not in (400, 422):
                raise
            self._already_extended(error, await self.aget_session(session_id), max_lease_time)

    def stop_session(self, session_id: str) -> None:
        """
        Stop a session (billing ends); raises :class:`RemoteRenderingSessionNotFoundError` if unknown.

        :param session_id: the session's id.
        """
        self._call(self._stop_request(self.settings, session_id), self._send_sync)

    async def astop_session(self, session_id: str) -> None:
        """Async :meth:`stop_session`."""
        await self._acall(self._stop_request(await self.asettings(), session_id), self._send_async)

    def test_connection(self) -> tuple[bool, str]:
        """Fetch a token and list the sessions; used by Airflow's "Test connection" button."""
        try:
            self.get_token()
            sessions = self.list_sessions()
        except Exception as error:
            return False, str(error)
        return True, f"Connected: token fetched, {len(sessions)} active session(s) in the account."

    # ---------------------------------------------------------------- request builders (shared)
    # v1: POST .../sessions/create, GET .../{id}/properties, PATCH, DELETE; TimeSpan leases.
    # 2021-01-01: PUT .../sessions/{id}, GET, PATCH, POST .../{id}/:stop; leases in minutes; paged list.

    def _sessions_url(self, settings: ConnectionSettings, suffix: str = "") -> str:
        """The account's session collection (``suffix`` goes before the query string)."""
        if settings.api_version == API_2021:
            return (
                f"{settings.base_url}/accounts/{settings.account_id}/sessions{suffix}?api-version={API_2021}"
            )
        return f"{settings.base_url}/v1/accounts/{settings.account_id}/sessions{suffix}"

    def _session_url(self, settings: ConnectionSettings, session_id: Any, suffix: str = "") -> str:
        """One session's URL; the id is checked first, as it becomes part of the path."""
        session_id = validate_session_id(session_id, api_version=settings.api_version)
        return self._sessions_url(settings, f"/{session_id}{suffix}")

    def _create_request(
        self, settings: ConnectionSettings, max_lease_time: Any, size: Any, models: Any, session_id: Any
    ) -> _Request:
        lease, size, models = validate_lease(max_lease_time), validate_size(size), validate_models(models)
        if settings.api_version == API_V1:
            if session_id is not None:
                raise ArrInputError("session_id", "the v1 API chooses session ids itself; leave it unset")
            body: dict[str, Any] = {"maxLeaseTime": format_timespan(lease), "models": models, "size": size}
            url = self._sessions_url(settings, "/create")
            return _Request(
                "create_session", "POST", url, body, ok=frozenset({200, 201, 202}), retry_safe=False
            )
        if models:
            raise ArrInputError("models", "the 2021-01-01 API does not preload models; leave it empty")
        session_id = session_id if session_id is not None else f"arr-{uuid.uuid4()}"
        body = {"maxLeaseTimeMinutes": lease_minutes(lease), "size": size.capitalize()}
        # A PUT of the same id is idempotent (200 for an identical retry), so create may be retried.
        url = self._session_url(settings, session_id)
        return _Request("create_session", "PUT", url, body, ok=frozenset({200, 201}), session_id=session_id)

    def _get_request(self, settings: ConnectionSettings, session_id: str) -> _Request:
        suffix = "/properties" if settings.api_version == API_V1 else ""
        return _Request("get_session", "GET", self._session_url(settings, session_id, suffix))

    def _list_request(self, settings: ConnectionSettings, url: str | None = None) -> _Request:
        return _Request("list_sessions", "GET", url or self._sessions_url(settings))

    def _update_request(self, settings: ConnectionSettings, session_id: str, max_lease_time: Any) -> _Request:
        url = self._session_url(settings, session_id)
        lease = validate_lease(max_lease_time)
        if settings.api_version == API_V1:
            body: dict[str, Any] = {"maxLeaseTime": format_timespan(lease)}
        else:
            body = {"maxLeaseTimeMinutes": lease_minutes(lease)}
        return _Request("update_session", "PATCH", url, body, ok=frozenset({200, 204}))

    def _stop_request(self, settings: ConnectionSettings, session_id: str) -> _Request:
        if settings.api_version == API_V1:
            return _Request(
                "stop_session",
                "DELETE",
                self._session_url(settings, session_id),
                ok=frozenset({200, 202, 204}),
            )
        url = self._session_url(settings, session_id, "/:stop")
        return _Request("stop_session", "POST", url, ok=frozenset({200, 202, 204}))

    # ---------------------------------------------------------------- ambiguous v1 create (shared)
    # A v1 create whose answer was lost may still have started a VM. The hook lists the account's
    # sessions before the create and again after the failure, and adopts the one new session that
    # matches what was asked for. Zero new sessions: the service most likely did not act (the error
    # says so). Several: another client creates sessions in the same account at the same moment and
    # which one is ours cannot be told, so the error lists them rather than guessing.

    def _listing_after(
        self, error: RemoteRenderingError, list_sessions: Callable[[], list[SessionProperties]]
    ) -> list[SessionProperties]:
        try:
            return list_sessions()
        except RemoteRenderingError as list_error:
            raise _cannot_check(error, list_error) from error

    def _adopt(
        self,
        request: _Request,
        before: set[str],
        error: RemoteRenderingError,
        after: list[SessionProperties],
    ) -> str | None:
        """The one new session that matches the request; ``None`` if none appeared; raise if several."""
        body = request.body or {}
        new = [
            session
            for session in after
            if session.session_id not in before
            and session.status.is_active
            and format_timespan(session.max_lease_time) == body.get("maxLeaseTime")
            and (session.size is None or session.size.lower() == body.get("size"))
        ]
        if not new:
            return None
        if len(new) > 1:
            ids = ", ".join(session.session_id for session in new)
            raise error.with_hint(
                f"Its answer was lost and {len(new)} matching sessions appeared meanwhile ({ids}): "
                "another client is creating sessions in this account, so which one is this task's cannot be "
                "told. Stop the ones nobody uses; they are billed.",
                RemoteRenderingSessionMayExistError,
            )
        self.log.warning(
            "The create's answer was lost (%s); adopted session %s, the one new session in the account",
            error.service_message or f"HTTP {error.http_status}",
            new[0].session_id,
        )
        return new[0].session_id

    def _already_extended(
        self, error: RemoteRenderingError, current: SessionProperties, max_lease_time: Any
    ) -> None:
        """
        Accept a refused update if the session already has the lease asked for, else re-raise.

        An attempt whose answer was lost may have set it; the retry is then refused as "not longer".
        """
        if current.max_lease_time != validate_lease(max_lease_time):
            raise error
        self.log.info(
            "Session %s already has the lease %s (an earlier attempt set it; its answer was lost)",
            current.session_id,
            format_timespan(current.max_lease_time),
        )

    # ---------------------------------------------------------------- answers (shared)

    def _created_session_id(self, settings: ConnectionSettings, response: _Response) -> str:
        """The new session's id from the create answer (body, or the ``Location`` header on v1)."""
        try:
            body = response.json("create_session")
        except RemoteRenderingError:
            body = None
        key = "sessionId" if settings.api_version == API_V1 else "id"
        candidate = body.get(key) if isinstance(body, dict) else None
        if not candidate:
            location = response.headers.get("location") or response.headers.get("Location") or ""
            candidate = location.rstrip("/").rsplit("/", 1)[-1] if "/sessions/" in location else None
        try:
            return validate_session_id(candidate, key, settings.api_version)
        except ArrInputError:
            raise RemoteRenderingSessionMayExistError(
                "create_session",
                http_status=response.status,
                service_message=f"the service accepted the create but its answer has no valid {key}: "
                f"{response.text[:200]!r}",
                ms_cv=response.ms_cv,
                hint=_SESSION_MAY_EXIST,
            ) from None

    def _session_page(
        self, settings: ConnectionSettings, response: _Response
    ) -> tuple[list[SessionProperties], _Request | None]:
        """One page of the session list, and the request for the next page (``@nextLink``) if any."""
        body = response.json("list_sessions")
        sessions = body.get("sessions") if isinstance(body, dict) else None
        if not isinstance(sessions, list):
            raise RemoteRenderingError(
                "list_sessions",
                http_status=response.status,
                service_message="unexpected answer: field 'sessions' is missing or not a list",
                ms_cv=response.ms_cv,
            )
        try:
            page = [SessionProperties.from_api(item, settings.api_version) for item in sessions]
        except ArrResponseError as error:
            raise RemoteRenderingError(
                "list_sessions", http_status=response.status, service_message=str(error), ms_cv=response.ms_cv
            ) from None
        next_link = body.get("@nextLink") if isinstance(body, dict) else None
        if not next_link:
            return page, None
        return page, self._list_request(settings, _same_origin(settings.base_url, str(next_link)))

    # ---------------------------------------------------------------- retry policy (shared)

    def _retry_kwargs(self, settings: ConnectionSettings, request: _Request) -> dict[str, Any]:
        def wait(retry_state: tenacity.RetryCallState) -> float:
            error = retry_state.outcome.exception() if retry_state.outcome else None
            retry_after = getattr(error, "retry_after", None)
            if retry_after is not None:
                return float(retry_after)
            ceiling = min(
                settings.retry_max_wait, settings.retry_min_wait * 2 ** (retry_state.attempt_number - 1)
            )
            return random.uniform(ceiling / 2, ceiling)

        def before_sleep(retry_state: tenacity.RetryCallState) -> None:
            error = retry_state.outcome.exception() if retry_state.outcome else None
            sleep = retry_state.next_action.sleep if retry_state.next_action else 0.0
            self.log.warning(
                "%s failed (attempt %d): %s; retrying in %.1f s",
                request.operation,
                retry_state.attempt_number,
                error,
                sleep,
            )

        return {
            "stop": tenacity.stop_after_attempt(settings.retry_limit)
            | tenacity.stop_before_delay(settings.retry_max_time),
            "wait": wait,
            "retry": tenacity.retry_if_exception_type(_TransientError),
            "before_sleep": before_sleep,
            "retry_error_callback": _give_up,
            "reraise": True,
        }

    # ---------------------------------------------------------------- the two transports

    def _call(self, request: _Request, send: Callable[[_Request, str | None], _Response]) -> _Response:
        settings = self.settings
        retrying = tenacity.Retrying(**self._retry_kwargs(settings, request))
        return retrying(self._attempt, request, send)

    async def _acall(self, request: _Request, send: Callable[[_Request, str | None], Any]) -> _Response:
        settings = await self.asettings()
        retrying = tenacity.AsyncRetrying(**self._retry_kwargs(settings, request))
        return await retrying(self._aattempt, request, send)

    def _attempt(self, request: _Request, send: Callable[[_Request, str | None], _Response]) -> _Response:
        if request.operation == "get_token":
            return _check_token_answer(request, send(request, None))
        token = self.get_token()
        try:
            return _check_session_answer(request, send(request, token))
        except _TokenRefused:
            _token_cache.invalidate(self.settings.token_cache_key, token)
            return _check(request, send(request, self.get_token()))

    async def _aattempt(self, request: _Request, send: Callable[[_Request, str | None], Any]) -> _Response:
        if request.operation == "get_token":
            return _check_token_answer(request, await send(request, None))
        token = await self.aget_token()
        try:
            return _check_session_answer(request, await send(request, token))
        except _TokenRefused:
            settings = await self.asettings()
            _token_cache.invalidate(settings.token_cache_key, token)
            return _check(request, await send(request, await self.aget_token()))

    def _headers(self, request: _Request, token: str | None) -> dict[str, str]:
        settings = self._settings
        assert settings is not None
        credential = token if token is not None else f"{settings.account_id}:{settings.account_key}"
        headers = {"Authorization": f"Bearer {credential}", "Accept": "application/json"}
        if request.body is not None:
            headers["Content-Type"] = "application/json"
        return headers

    def _log_call(self, request: _Request, status: int | str, ms_cv: str | None, started: float) -> None:
        path = urlsplit(request.url).path
        self.log.debug(
            "ARR %s %s -> %s (MS-CV %s) in %.0f ms",
            request.method,
            path,
            status,
            ms_cv or "-",
            (time.perf_counter() - started) * 1000,
        )

    def _send_sync(self, request: _Request, token: str | None) -> _Response:
        import requests

        settings = self.settings
        if self._http is None:
            self._http = requests.Session()
        started = time.perf_counter()
        try:
            answer = self._http.request(
                request.method,
                request.url,
                json=request.body,
                headers=self._headers(request, token),
                timeout=(settings.connect_timeout, settings.read_timeout),
                allow_redirects=False,
            )
        except requests.RequestException as error:
            self._log_call(request, type(error).__name__, None, started)
            raise _transport_error(request, error) from None
        response = _Response(answer.status_code, answer.headers, answer.text)
        self._log_call(request, response.status, response.ms_cv, started)
        return response

    async def _send_async(self, request: _Request, token: str | None) -> _Response:
        import httpx

        settings = await self.asettings()
        loop = asyncio.get_running_loop()
        if self._async_http is None or self._async_loop is not loop:
            self._async_http, self._async_loop = _async_clients.acquire(loop), loop
        shared = self._async_http
        started = time.perf_counter()
        try:
            await shared.acquire_slot(settings.read_timeout)
            try:
                answer = await shared.client.request(
                    request.method,
                    request.url,
                    json=request.body,
                    headers=self._headers(request, token),
                    timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
                )
            finally:
                shared.slots.release()
        except httpx.HTTPError as error:
            self._log_call(request, type(error).__name__, None, started)
            raise _transport_error(request, error) from None
        response = _Response(answer.status_code, answer.headers, answer.text)
        self._log_call(request, response.status, response.ms_cv, started)
        return response

    # ---------------------------------------------------------------- lifetime of the clients

    def close(self) -> None:
        """Close the pooled sync HTTP session."""
        if self._http is not None:
            self._http.close()
            self._http = None

    async def aclose(self) -> None:
        """Release the shared async HTTP client (closed with its last user) and close the sync session."""
        if self._async_http is not None and self._async_loop is not None:
            shared, loop = self._async_http, self._async_loop
            self._async_http = self._async_loop = None
            await _async_clients.release(loop, shared)
        self.close()

    def __enter__(self) -> RemoteRenderingHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> RemoteRenderingHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _check_token_answer(request: _Request, response: _Response) -> _Response:
    if response.status == 401:
        raise RemoteRenderingError(
            request.operation,
            http_status=401,
            service_message=_service_message(response.text),
            ms_cv=response.ms_cv,
            hint="The token service refused the credentials: check your account id (login) and account key "
            "(password) in the connection.",
        )
    return _check(request, response)


def _check_session_answer(request: _Request, response: _Response) -> _Response:
    if response.status == 401:
        raise _TokenRefused()
    return _check(request, response)


def _properties(response: _Response, operation: str, api_version: str) -> SessionProperties:
    try:
        return SessionProperties.from_api(response.json(operation), api_version)
    except ArrResponseError as error:
        raise RemoteRenderingError(
            operation, http_status=response.status, service_message=str(error), ms_cv=response.ms_cv
        ) from None


def _same_origin(base_url: str, link: str) -> str:
    """Resolve a ``@nextLink``; one pointing at another host is refused (the token must not go there)."""
    url = urljoin(base_url + "/", link)
    if urlsplit(url)[:2] != urlsplit(base_url)[:2]:
        raise RemoteRenderingError(
            "list_sessions", service_message=f"the service sent a @nextLink to another origin: {link!r}"
        )
    return url


def _mask(secret: str) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret(secret)


async def _amask(secret: str) -> None:
    from airflow.sdk.log import amask_secret

    await amask_secret(secret)
