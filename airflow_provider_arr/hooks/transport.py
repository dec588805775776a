"""The two transports: one pooled ``requests.Session`` per hook, one ``httpx.AsyncClient`` per event loop.

They only move a :class:`Request` to the wire and an answer back as a :class:`Response`. What an answer
or a failure means (retry, error, which error) is the answer policy's business (``policy.py``);
a failure to get an answer is reported as a :class:`TransportFailure` that says whether the request
could have reached the service.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_arr.exceptions import RemoteRenderingError
from airflow_provider_arr.hooks.async_clients import SharedAsyncClient, async_clients
from airflow_provider_arr.hooks.wire import decode_body, not_json_message, read_json

if TYPE_CHECKING:
    import requests  # imported where used: it would add ~40 ms to every DAG file that imports us

    from airflow_provider_arr.hooks.policy import ResourceKind
    from airflow_provider_arr.hooks.settings import ConnectionSettings


class Logger(Protocol):
    """What the hook package logs through: a stdlib logger or Airflow's structlog logger."""

    def debug(self, event: Any, *args: Any) -> Any: ...
    def info(self, event: Any, *args: Any) -> Any: ...
    def warning(self, event: Any, *args: Any) -> Any: ...


@dataclass(frozen=True)
class Request:
    """One call to the service, before credentials are added.

    :param operation: the hook operation, for errors and logs (``create_session``).
    :param method: the HTTP method.
    :param url: the full URL, query string included.
    :param body: the JSON body, if any.
    :param ok: the HTTP statuses that mean success.
    :param retry_safe: False where a blind retry could start a second billed resource (a v1 create).
    :param resource: what the call is about; chooses the not-found error, hints and "may exist" text.
    :param resource_id: the id the client chose (a 2021-01-01 create).
    :param sts: a token-service call: authorized with the account key instead of a token.
    """

    operation: str
    method: str
    url: str
    body: dict[str, Any] | None = None
    ok: frozenset[int] = frozenset({200})
    retry_safe: bool = True
    resource: ResourceKind | None = None
    resource_id: str | None = None
    sts: bool = False


@dataclass(frozen=True)
class Response:
    """One answer: status, headers (case-insensitive mapping) and body text."""

    status: int
    headers: Mapping[str, str]
    text: str

    @property
    def ms_cv(self) -> str | None:
        """The ``MS-CV`` correlation vector the service team needs to trace the call."""
        return self.headers.get("ms-cv") or self.headers.get("MS-CV")

    @classmethod
    def from_wire(cls, status: int, headers: Mapping[str, str], content: bytes) -> Response:
        """An answer as the HTTP library gave it; its text is decoded by :func:`wire.decode_body`."""
        return cls(status, headers, decode_body(content, headers.get("content-type")))

    def json(self, operation: str, secret: bool = False) -> Any:
        """The body as JSON (``None`` if empty); a non-JSON body is a :class:`RemoteRenderingError`.

        :param operation: the hook operation, for the error.
        :param secret: a token answer: the error must not quote any of the body.
        """
        try:
            return read_json(self.text)
        except (ValueError, RecursionError):
            raise RemoteRenderingError(
                operation,
                http_status=self.status,
                service_message=not_json_message(self.text, secret),
                ms_cv=self.ms_cv,
            ) from None


class TransportFailure(Exception):
    """No answer came: the network, TLS or the HTTP library failed.

    Its text is written here, from the error's class and the request's host, never from the library's
    own message: that may quote a header (the account key, a token), a URL's query (a SAS token) or a
    body. The library's exception stays available as :attr:`error` for debugging, not for display.

    :param error: the library's exception.
    :param request: the request that failed.
    :param sent_nothing: True when the request certainly did not reach the service (connect failures).
    :param local: True when the request could not even be built (an invalid header or URL value): no
        retry can fix that.
    """

    def __init__(self, error: Exception, request: Request, sent_nothing: bool, local: bool = False) -> None:
        self.error = error
        self.sent_nothing = sent_nothing
        self.local = local
        super().__init__(describe_failure(error, request, local))


def describe_failure(error: BaseException, request: Request, local: bool) -> str:
    """A safe one-line account of a transport failure: class names and what they mean, the host only."""
    from urllib.parse import urlsplit

    host = urlsplit(request.url).hostname or "the service"
    kind = type(error).__name__
    inner = [name for name in _cause_names(error) if name != kind]
    because = f" ({', '.join(dict.fromkeys(inner))})" if inner else ""
    names = {kind, *inner}
    if local:
        return f"{kind}: the request to {host} could not be built (a header or URL value is not valid)"
    if any("ConnectTimeout" in name for name in names):
        return f"{kind}: no connection to {host} within the connect timeout{because}"
    if any("Timeout" in name for name in names):
        return f"{kind}: {host} did not answer within the read timeout{because}"
    if any("SSL" in name for name in names):
        return f"{kind}: the TLS handshake with {host} failed (certificate or protocol){because}"
    if names & _NO_CONNECTION:
        return f"{kind}: could not connect to {host} (refused, unreachable or unknown host){because}"
    if names & _BROKEN:
        return f"{kind}: the connection to {host} broke before a complete answer came{because}"
    return f"{kind}: the exchange with {host} failed before a complete answer came{because}"


#: Exception classes (by name) that mean no connection was made.
_NO_CONNECTION = frozenset(
    {"NewConnectionError", "NameResolutionError", "ConnectionRefusedError", "gaierror", "ConnectError"}
)
#: Exception classes (by name) that mean a connection broke mid-exchange.
_BROKEN = frozenset(
    {
        "RemoteDisconnected",
        "ConnectionResetError",
        "ConnectionAbortedError",
        "BrokenPipeError",
        "ProtocolError",
        "RemoteProtocolError",
        "ReadError",
        "IncompleteRead",
        "ChunkedEncodingError",
    }
)


def _cause_names(error: BaseException, depth: int = 6) -> list[str]:
    """The class names of the exceptions behind ``error`` (causes, ``reason``s, exceptions in ``args``)."""
    names: list[str] = []
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending and len(seen) < depth * 3:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        names.append(type(current).__name__)
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return names


def _is_local(error: BaseException) -> bool:
    """Whether the HTTP library refused to build the request (bad header or URL value)."""
    import h11
    import requests

    local = (
        requests.exceptions.InvalidHeader,
        requests.exceptions.InvalidURL,
        requests.exceptions.InvalidSchema,
        requests.exceptions.MissingSchema,
        h11.LocalProtocolError,
        UnicodeError,
    )
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, local):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _headers(request: Request, credential: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {credential}", "Accept": "application/json"}
    if request.body is not None:
        headers["Content-Type"] = "application/json"
    return headers


def _log_call(log: Logger, request: Request, status: int | str, ms_cv: str | None, started: float) -> None:
    from urllib.parse import urlsplit

    log.debug(
        "ARR %s %s -> %s (MS-CV %s) in %.0f ms",
        request.method,
        urlsplit(request.url).path,
        status,
        ms_cv or "-",
        (time.perf_counter() - started) * 1000,
    )


def _sent_nothing(error: BaseException) -> bool:
    """Whether a transport error happened before the request could reach the service."""
    import requests

    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(error, requests.exceptions.ConnectionError):
        # urllib3 reports refused or unreachable hosts as NewConnectionError inside MaxRetryError.
        from urllib3.exceptions import NewConnectionError

        reason = getattr(error.args[0], "reason", None) if error.args else None
        return isinstance(reason, NewConnectionError)
    import httpx

    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


class SyncTransport:
    """A pooled ``requests.Session``, created on first use."""

    def __init__(self, log: Logger) -> None:
        self._log = log
        self._http: requests.Session | None = None

    def send(self, request: Request, credential: str, settings: ConnectionSettings) -> Response:
        """Send one request; raise :class:`TransportFailure` if no answer came."""
        import requests

        if self._http is None:
            self._http = requests.Session()
        started = time.perf_counter()
        try:
            answer = self._http.request(
                request.method,
                request.url,
                json=request.body,
                headers=_headers(request, credential),
                timeout=(settings.connect_timeout, settings.read_timeout),
                allow_redirects=False,
            )
        except (requests.RequestException, ValueError) as error:  # ValueError: a header the library refuses
            _log_call(self._log, request, type(error).__name__, None, started)
            raise TransportFailure(error, request, _sent_nothing(error), _is_local(error)) from None
        response = Response.from_wire(answer.status_code, answer.headers, answer.content)
        _log_call(self._log, request, response.status, response.ms_cv, started)
        return response

    def close(self) -> None:
        """Close the pooled session (a later call opens a new one)."""
        if self._http is not None:
            self._http.close()
            self._http = None


class AsyncTransport:
    """The event loop's :class:`SharedAsyncClient`, taken on first use and released by :meth:`close`.

    Released also when the hook moves to another event loop, and when it is garbage-collected without
    :meth:`close` (a finalizer): the client then ends with its loop (``async_clients.py``).
    """

    def __init__(self, log: Logger) -> None:
        self._log = log
        self._shared: SharedAsyncClient | None = None
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    async def _client(self) -> SharedAsyncClient:
        loop = asyncio.get_running_loop()
        shared = self._shared
        if shared is None or shared.closed or self._loop is None or self._loop() is not loop:
            if self._finalizer is not None:
                self._finalizer()  # release the client of the loop this hook used before
            shared = self._shared = await async_clients.acquire(loop)
            self._loop = weakref.ref(loop)
            self._finalizer = weakref.finalize(self, async_clients.release_soon, loop, shared)
        return shared

    async def send(self, request: Request, credential: str, settings: ConnectionSettings) -> Response:
        """Send one request; raise :class:`TransportFailure` if no answer came."""
        import httpx

        shared = await self._client()
        started = time.perf_counter()
        try:
            await shared.acquire_slot(settings.read_timeout)
            try:
                answer = await shared.client.request(
                    request.method,
                    request.url,
                    json=request.body,
                    headers=_headers(request, credential),
                    timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
                )
            finally:
                shared.slots.release()
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as error:
            _log_call(self._log, request, type(error).__name__, None, started)
            raise TransportFailure(error, request, _sent_nothing(error), _is_local(error)) from None
        response = Response.from_wire(answer.status_code, answer.headers, answer.content)
        _log_call(self._log, request, response.status, response.ms_cv, started)
        return response

    async def close(self) -> None:
        """Release the shared client (it is closed with its last user)."""
        shared, loop = self._shared, self._loop() if self._loop is not None else None
        if self._finalizer is not None:
            self._finalizer.detach()
        self._shared = self._loop = self._finalizer = None
        if shared is not None and loop is not None:
            await async_clients.release(loop, shared)
