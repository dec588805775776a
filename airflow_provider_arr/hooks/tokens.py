"""The token cache: one per process, shared by every hook instance, sync and async.

Tokens come from the Mixed Reality token service (STS) and are JWTs with an ``exp`` claim
(``reference/arr-service.md``: one day by default). They are kept in memory only, never on disk.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from airflow_provider_arr.exceptions import RemoteRenderingError

#: Tokens are refreshed this long before their ``exp`` (or at half their lifetime, if that is sooner).
TOKEN_REFRESH_LEAD = 300.0
#: Lifetime assumed for a token that is not a JWT, so its expiry cannot be read.
NON_JWT_TOKEN_LIFETIME = 600.0
#: How long a failed token fetch is handed to the callers that come after it, in seconds, instead of
#: each of them starting its own retry sequence against a token service that is failing.
TOKEN_FAILURE_SHARE_TIME = 3.0


@dataclass(frozen=True)
class _CachedToken:
    value: str = field(repr=False)
    refresh_at: float


class _Flight:
    """One STS fetch for one key, shared by every caller that wants that token meanwhile.

    Threads wait on :attr:`done`; event-loop tasks (on any loop) on a future of their own loop that
    :meth:`finish` resolves thread-safely. After a failure the flight stays for
    :data:`TOKEN_FAILURE_SHARE_TIME` seconds and hands its error to the callers that come then.
    """

    def __init__(self) -> None:
        self.done = threading.Event()
        self.token: str | None = None
        self.error: BaseException | None = None
        self.abandoned = False
        self.finished_at = 0.0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._lock = threading.Lock()

    def finish(self, token: str | None, error: BaseException | None) -> None:
        """Hand the outcome to every waiter: a token, an error, or neither (the fetch was abandoned)."""
        with self._lock:
            self.token, self.error, self.abandoned = token, error, token is None and error is None
            self.finished_at = time.monotonic()
            self.done.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits there any more
                loop.call_soon_threadsafe(_resolve, future)

    def outcome(self) -> str | None:
        """The token; raises a copy of the shared error; ``None`` if the fetch was abandoned."""
        if self.error is not None:
            raise copy.copy(self.error).with_traceback(None)
        return self.token

    def wait(self, budget: float) -> str | None:
        """Wait for the outcome (threads), at most ``budget`` seconds; see :meth:`outcome`."""
        if not self.done.wait(budget):
            raise _not_within(budget)
        return self.outcome()

    async def await_outcome(self, budget: float) -> str | None:
        """Wait for the outcome (tasks on any event loop), at most ``budget`` seconds."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if not self.done.is_set():
                self._waiters.append((loop, future))
            else:
                future.set_result(None)
        try:
            async with asyncio.timeout(budget):
                await asyncio.shield(future)
        except TimeoutError:
            raise _not_within(budget) from None
        return self.outcome()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _not_within(budget: float) -> RemoteRenderingError:
    return RemoteRenderingError(
        "get_token",
        service_message=f"the token fetch this call waited for did not end within its budget ({budget:g} s)",
        hint="The token service answers slowly or not at all; the connection extra retry_max_time sets the "
        "budget.",
    )


class _TokenCache:
    """STS tokens keyed by (STS URL, account id, key hash), refreshed shortly before they expire.

    Single flight (rule 7 of issue 18): concurrent callers for one key, threads and event-loop tasks
    alike, share ONE fetch and its outcome. A failure is shared too, for
    :data:`TOKEN_FAILURE_SHARE_TIME` seconds, so N callers against a failing token service make one
    retry sequence, not N. Each caller waits at most its own budget; the one that fetches is bounded
    by its own retry policy.
    """

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], _CachedToken] = {}
        self._lock = threading.Lock()
        self._flights: dict[tuple[str, str, str], _Flight] = {}

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
            self._flights.clear()

    def fetch_once(self, key: tuple[str, str, str], fetch: Callable[[], str], budget: float) -> str:
        """The cached token, or the outcome of the one fetch in flight for ``key`` (started if none).

        :param key: the token's cache key.
        :param fetch: fetches, stores and returns a token (run by the caller that leads).
        :param budget: the longest this caller waits for another caller's fetch, in seconds.
        """
        while True:
            token = self.get(key)
            if token is not None:
                return token
            flight, lead = self._join(key)
            if not lead:
                token = flight.wait(budget)
                if token is not None:
                    return token
                continue  # abandoned: try again (and maybe lead)
            token, error = None, None
            try:
                token = fetch()
                return token
            except Exception as failure:
                error = failure
                raise
            finally:
                self._land(key, flight, token, error)

    async def afetch_once(
        self, key: tuple[str, str, str], fetch: Callable[[], Awaitable[str]], budget: float
    ) -> str:
        """Async :meth:`fetch_once`: the same flights, so threads and tasks share one fetch."""
        while True:
            token = self.get(key)
            if token is not None:
                return token
            flight, lead = self._join(key)
            if not lead:
                token = await flight.await_outcome(budget)
                if token is not None:
                    return token
                continue
            token, error = None, None
            try:
                token = await fetch()
                return token
            except Exception as failure:
                error = failure
                raise
            finally:  # a cancelled leader abandons the flight: its waiters try again
                self._land(key, flight, token, error)

    def _join(self, key: tuple[str, str, str]) -> tuple[_Flight, bool]:
        """The flight for ``key`` and whether this caller leads it (a failure is shared for a while)."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None and flight.done.is_set():
                fresh = time.monotonic() - flight.finished_at < TOKEN_FAILURE_SHARE_TIME
                if flight.error is None or not fresh:
                    flight = None
            if flight is not None:
                return flight, False
            flight = self._flights[key] = _Flight()
            return flight, True

    def _land(
        self, key: tuple[str, str, str], flight: _Flight, token: str | None, error: BaseException | None
    ) -> None:
        with self._lock:
            if error is None and self._flights.get(key) is flight:
                del self._flights[key]  # a token is in the cache; an error stays to be shared a while
        flight.finish(token, error)


token_cache = _TokenCache()


def clear_token_cache() -> None:
    """Forget every cached STS token of this process (tests, or after rotating an account key)."""
    token_cache.clear()


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
