"""Access tokens of the emulated Mixed Reality STS: HS256 JWTs signed with a per-emulator secret."""

from __future__ import annotations

import math
import secrets
import uuid
from collections.abc import Callable

import jwt

TOKEN_ISSUER = "arr-emulator"
ACCOUNT_CLAIM = "accountId"
#: The Remote Rendering role of a token fetched with Entra ID (none: the account key, full access).
ROLE_CLAIM = "role"
#: Valid tokens whose decoded claims are kept (the cache starts over when full).
_VERIFIED_CACHE_SIZE = 1024


class InvalidTokenError(Exception):
    """A session call carried no token, a malformed one, a forged one or an expired one."""


class TokenIssuer:
    """Issues and verifies the JWTs that session calls carry.

    :param lifetime: seconds from issue until a token expires.
    :param wall_clock: returns the current Unix time; ``exp``, ``iat`` and ``nbf`` are read against it.
    """

    def __init__(self, lifetime: float, wall_clock: Callable[[], float]) -> None:
        if lifetime <= 0:
            raise ValueError("token_lifetime must be positive")
        self.lifetime = lifetime
        self._wall_clock = wall_clock
        self._secret = secrets.token_bytes(32)
        # token -> its checked claims; decoding costs more than the rest of a call (see verify).
        self._verified: dict[str, dict[str, object]] = {}

    def rotate_secret(self) -> None:
        """Sign with a fresh secret from now on, so that every token issued so far is rejected."""
        self._secret = secrets.token_bytes(32)
        self._verified.clear()

    def issue(self, account_id: str, role: str | None = None) -> str:
        """Return a signed token for an account.

        :param account_id: the account the token is valid for (the ``accountId`` claim).
        :param role: the Remote Rendering role of an Entra identity (the ``role`` claim), if any.
        """
        now = self._wall_clock()
        claims = {
            "iss": TOKEN_ISSUER,
            ACCOUNT_CLAIM: account_id,
            "iat": math.floor(now),
            "nbf": math.floor(now),
            "exp": math.floor(now + self.lifetime),
            "jti": str(uuid.uuid4()),
        }
        if role is not None:
            claims[ROLE_CLAIM] = role
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> str:
        """Check a token's signature, issuer and times, and return the account it is valid for.

        :param token: the JWT from the ``Authorization`` header.
        :raises InvalidTokenError: with a reason the client may see.
        """
        return self.verify_with_role(token)[0]

    def verify_with_role(self, token: str) -> tuple[str, str | None]:
        """:meth:`verify`, and the token's Remote Rendering role (``None``: fetched with the account key).

        :param token: the JWT from the ``Authorization`` header.
        :raises InvalidTokenError: with a reason the client may see.
        """
        claims = self._verified.get(token)
        if claims is None:
            claims = self._decode(token)
            if len(self._verified) >= _VERIFIED_CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = claims
        now = self._wall_clock()
        if not isinstance(claims["exp"], int) or now >= claims["exp"]:
            raise InvalidTokenError("The access token has expired.")
        if not isinstance(claims["nbf"], int) or now < claims["nbf"]:
            raise InvalidTokenError("The access token is not valid yet.")
        account_id = claims[ACCOUNT_CLAIM]
        if not isinstance(account_id, str):
            raise InvalidTokenError("The access token names no account.")
        role = claims.get(ROLE_CLAIM)
        return account_id, role if isinstance(role, str) else None

    def _decode(self, token: str) -> dict[str, object]:
        """Check a token's signature and issuer and return its claims (the same for the same token).

        PyJWT's decode takes longer than the rest of a session call together, so :meth:`verify`
        keeps its result per token (until the secret rotates); the times are checked on every call.
        """
        try:
            return jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=TOKEN_ISSUER,
                # Times are checked by verify, against the injectable wall clock, not time.time().
                options={
                    "require": ["exp", "iat", "nbf", "iss", ACCOUNT_CLAIM],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as error:
            raise InvalidTokenError(f"The access token is not valid: {error}") from None
