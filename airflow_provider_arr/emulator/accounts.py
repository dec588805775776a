"""The token service's side of the emulated state: accounts, their keys and the tokens issued.

The STS takes an account key or an Entra token (:mod:`~airflow_provider_arr.emulator.entra`, whose
directory of principals and roles is part of this class).

:class:`AccountsAndTokens` is a part of :class:`~airflow_provider_arr.emulator.state.EmulatorState`
(which creates ``_lock`` and calls :meth:`AccountsAndTokens._init_accounts`); it is not used alone.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable

from airflow_provider_arr.emulator.entra import EntraDirectory
from airflow_provider_arr.emulator.errors import AuthenticationError
from airflow_provider_arr.emulator.records import normalize_id
from airflow_provider_arr.emulator.tokens import TokenIssuer

__all__ = ["AccountsAndTokens"]


class AccountsAndTokens(EntraDirectory):
    """The accounts of the emulator state and the STS tokens it issued, behind the state's lock."""

    _lock: threading.RLock

    def _init_accounts(self, token_lifetime: float, wall_clock: Callable[[], float]) -> None:
        self._tokens = TokenIssuer(token_lifetime, wall_clock)
        self._accounts: dict[str, str] = {}
        self._issued_tokens: list[str] = []
        self._init_entra(wall_clock)

    def add_account(self, account_id: str | None = None, account_key: str | None = None) -> tuple[str, str]:
        """Create (or re-key) an account and return its ``(id, key)``.

        :param account_id: a GUID; a random one if omitted.
        :param account_key: the key; a random one if omitted.
        """
        account_id = normalize_id(account_id) if account_id else str(uuid.uuid4())
        account_key = account_key or secrets.token_urlsafe(32)
        with self._lock:
            self._accounts[account_id] = account_key
        return account_id, account_key

    def issue_token(self, account_id: str, account_key: str) -> str:
        """Return a new access token if the key belongs to the account (the STS call).

        :param account_id: the account asked for.
        :param account_key: the key the client presented.
        :raises AuthenticationError: if the account is unknown or the key is wrong.
        """
        with self._lock:
            expected = self._accounts.get(normalize_id(account_id))
            if expected is None or not secrets.compare_digest(expected.encode(), account_key.encode()):
                raise AuthenticationError("Unknown account or wrong account key.")
            token = self._tokens.issue(normalize_id(account_id))
            self._issued_tokens.append(token)
            return token

    def issue_token_for_entra(self, account_id: str, entra_token: str, sts_url: str | None = None) -> str:
        """Return a new access token for an Entra identity with a role on the account (the STS call).

        :param account_id: the account asked for.
        :param entra_token: the Entra token the client presented.
        :param sts_url: the STS's own base URL (an audience it accepts besides the Mixed Reality one).
        :raises EntraError: if the token is not valid or the identity has no role on the account.
        """
        client_id, role = self.entra_role(entra_token, account_id, sts_url)
        with self._lock:
            self.note_sts_sign_in("entra", client_id)
            token = self._tokens.issue(normalize_id(account_id), role)
            self._issued_tokens.append(token)
            return token

    def token_role(self, token: str) -> str | None:
        """The Remote Rendering role of a valid token (``None``: fetched with the account key).

        :param token: a token :meth:`verify_token` accepted.
        """
        with self._lock:
            return self._tokens.verify_with_role(token)[1]

    def verify_token(self, token: str) -> str:
        """Return the account a token is valid for.

        :param token: the JWT a session call carried.
        :raises InvalidTokenError: if it is malformed, forged, revoked or expired.
        """
        with self._lock:
            return self._tokens.verify(token)

    def revoke_tokens(self) -> None:
        """Make every token issued so far invalid (the next session call with one gets 401)."""
        with self._lock:
            self._tokens.rotate_secret()

    @property
    def token_lifetime(self) -> float:
        """Seconds an STS token is valid."""
        return self._tokens.lifetime

    def issued_tokens(self) -> list[str]:
        """Every access token the STS issued since the start (or the last :meth:`reset`), oldest first.

        For tests that scan logs and results for leaked secrets; never served over HTTP.
        """
        with self._lock:
            return list(self._issued_tokens)

    def _forget_tokens(self) -> None:
        """Forget the issued tokens and revoke them all; the caller holds the lock."""
        self._issued_tokens.clear()
        self._tokens.rotate_secret()
        self._forget_entra()
