"""The token cache: one per process, shared by every hook instance, sync and async.

Tokens come from the Mixed Reality token service (STS) and are JWTs with an ``exp`` claim
(``reference/arr-service.md``: one day by default). They are kept in memory only, never on disk.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import threading
import time
import weakref
from dataclasses import dataclass, field

#: Tokens are refreshed this long before their ``exp`` (or at half their lifetime, if that is sooner).
TOKEN_REFRESH_LEAD = 300.0
#: Lifetime assumed for a token that is not a JWT, so its expiry cannot be read.
NON_JWT_TOKEN_LIFETIME = 600.0


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
