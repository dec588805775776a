"""The emulated Microsoft Entra ID: principals, their Remote Rendering roles, and the tokens it issues.

Users test an Entra connection without Azure: a service principal (client secret or certificate) or a
managed identity gets an Entra access token here, and the emulated STS exchanges it for an STS token
only if the identity has a role on the account (``Administrator``: conversions and sessions;
``Client``: sessions only). Entra tokens are HS256 JWTs signed with a secret of this emulator, with the
claims an app-only Entra token has (``aud``, ``tid``, ``appid``, ``oid``, ``exp``).

:class:`EntraDirectory` is a part of :class:`~airflow_provider_arr.emulator.state.EmulatorState`
(through :class:`~airflow_provider_arr.emulator.accounts.AccountsAndTokens`); it is not used alone.
"""

from __future__ import annotations

import math
import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography import x509

from airflow_provider_arr.emulator.records import normalize_id

__all__ = [
    "ADMINISTRATOR",
    "CLIENT",
    "DEFAULT_TENANT_ID",
    "MIXED_REALITY_STS_RESOURCE",
    "ROLES",
    "EntraDirectory",
    "EntraError",
    "Principal",
]

ADMINISTRATOR = "Administrator"
CLIENT = "Client"
#: The data-plane roles of an ARR account: Remote Rendering Administrator and Remote Rendering Client.
ROLES = (ADMINISTRATOR, CLIENT)
#: The tenant principals belong to unless told otherwise.
DEFAULT_TENANT_ID = "5f0c2b7e-9a41-4c8e-b3d6-1e2a7c9d4f60"
#: The resource an Entra token for the Mixed Reality STS is for (scope ``...com//.default``).
MIXED_REALITY_STS_RESOURCE = "https://sts.mixedreality.azure.com/"
_AUDIENCES = (MIXED_REALITY_STS_RESOURCE, MIXED_REALITY_STS_RESOURCE.rstrip("/"))
#: The value of ``IDENTITY_HEADER`` the App Service managed-identity endpoint expects.
DEFAULT_IDENTITY_HEADER = "arr-emulator-identity-header"
ENTRA_TOKEN_LIFETIME = 3599
_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class EntraError(Exception):
    """A token request Entra ID refuses: an OAuth error answer.

    :param status: 400 or 401.
    :param error: the OAuth error code, e.g. ``invalid_client``.
    :param description: ``AADSTSnnnn: ...``, never quoting a secret.
    """

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, Any]:
        """The answer's JSON body, in Entra ID's shape."""
        code = int(self.description[6 : self.description.index(":")])
        return {"error": self.error, "error_description": self.description, "error_codes": [code]}


@dataclass
class Principal:
    """A service principal or a managed identity, and its roles by account.

    :param client_id: the application (client) id.
    :param tenant_id: its tenant.
    :param secret: its client secret, if it signs in with one.
    :param certificate_key: the public key of its certificate, if it signs in with an assertion.
    :param managed: a managed identity (signs in through the managed-identity endpoint only).
    :param system_assigned: the system-assigned managed identity (asked for without a client id).
    :param roles: the Remote Rendering role per account id.
    """

    client_id: str
    tenant_id: str = DEFAULT_TENANT_ID
    secret: str | None = field(default=None, repr=False)
    certificate_key: Any = field(default=None, repr=False)
    managed: bool = False
    system_assigned: bool = False
    roles: dict[str, str] = field(default_factory=dict)

    @property
    def object_id(self) -> str:
        """A stable object id of the principal (the ``oid`` claim)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.tenant_id}/{self.client_id}"))


class EntraDirectory:
    """Principals, roles and Entra tokens of the emulator state, behind the state's lock."""

    _lock: threading.RLock
    _counts: Counter[str]
    account_id: str
    #: What ``IDENTITY_HEADER`` must be for the managed-identity endpoint (a test may change it).
    identity_header: str = DEFAULT_IDENTITY_HEADER

    def _init_entra(self, wall_clock: Callable[[], float]) -> None:
        self._entra_clock = wall_clock
        self._entra_secret = secrets.token_bytes(32)
        self._principals: dict[tuple[str, str], Principal] = {}
        self._entra_tokens: list[str] = []
        self._sts_sign_ins: list[tuple[str, str]] = []
        self.identity_header = DEFAULT_IDENTITY_HEADER

    def add_principal(
        self,
        client_id: str | None = None,
        secret: str | None = None,
        role: str | None = ADMINISTRATOR,
        *,
        account_id: str | None = None,
        tenant_id: str = DEFAULT_TENANT_ID,
        certificate: bytes | str | None = None,
    ) -> Principal:
        """Register a service principal (or replace it) and give it a role on an account.

        :param client_id: its application id; a random GUID if omitted.
        :param secret: its client secret; a random one if neither it nor ``certificate`` is given.
        :param role: ``Administrator``, ``Client``, or ``None`` for no role on the account.
        :param account_id: the account of the role; the emulator's first account if omitted.
        :param tenant_id: its tenant.
        :param certificate: its certificate (PEM) for client assertions; the key must be RSA.
        :return: the principal (its ``secret`` tells a random one).
        """
        if secret is None and certificate is None:
            secret = secrets.token_urlsafe(24)
        key = None
        if certificate is not None:
            pem = certificate.encode() if isinstance(certificate, str) else certificate
            key = x509.load_pem_x509_certificate(pem).public_key()
        principal = Principal(client_id or str(uuid.uuid4()), tenant_id.lower(), secret, key)
        return self._register(principal, role, account_id)

    def add_managed_identity(
        self, client_id: str | None = None, role: str | None = ADMINISTRATOR, *, account_id: str | None = None
    ) -> Principal:
        """Register a managed identity, served by the App Service endpoint (``/msi/token``).

        :param client_id: a user-assigned identity's client id; ``None`` for the system-assigned one.
        :param role: ``Administrator``, ``Client``, or ``None``.
        :param account_id: the account of the role; the emulator's first account if omitted.
        """
        principal = Principal(client_id or str(uuid.uuid4()), managed=True, system_assigned=client_id is None)
        return self._register(principal, role, account_id)

    def assign_role(self, client_id: str, role: str | None, account_id: str | None = None) -> None:
        """Give a principal a role on an account, or take it away (``role=None``).

        :param client_id: the principal's client id (in any tenant).
        :param role: ``Administrator``, ``Client`` or ``None``.
        :param account_id: the account; the emulator's first account if omitted.
        """
        with self._lock:
            matches = [p for p in self._principals.values() if p.client_id == client_id.lower()]
            if not matches:
                raise KeyError(f"no principal with client id {client_id}")
            for principal in matches:
                self._set_role(principal, role, account_id)

    def _register(self, principal: Principal, role: str | None, account_id: str | None) -> Principal:
        principal.client_id = principal.client_id.lower()
        with self._lock:
            self._set_role(principal, role, account_id)
            self._principals[(principal.tenant_id, principal.client_id)] = principal
        return principal

    def _set_role(self, principal: Principal, role: str | None, account_id: str | None) -> None:
        account = normalize_id(account_id or self.account_id)
        if role is None:
            principal.roles.pop(account, None)
        elif role not in ROLES:
            raise ValueError(f"role must be one of {ROLES} or None, got {role!r}")
        else:
            principal.roles[account] = role

    def principals(self) -> list[Principal]:
        """Every principal and managed identity, in the order they were added."""
        with self._lock:
            return list(self._principals.values())

    def count_entra_call(self, operation: str) -> None:
        """Count a call of an Entra route in ``request_counts``, beside the ARR operations.

        :param operation: ``entra_discovery``, ``entra_token`` or ``managed_identity``.
        """
        with self._lock:
            self._counts[operation] += 1

    def knows_tenant(self, tenant_id: str) -> bool:
        """Whether some principal belongs to the tenant (OpenID discovery answers only for those)."""
        with self._lock:
            return any(tenant == tenant_id.lower() for tenant, _ in self._principals)

    def client_credentials_token(self, tenant_id: str, form: Mapping[str, str], token_url: str) -> str:
        """Answer an OAuth client-credentials request (secret or client assertion) with an Entra token.

        :param tenant_id: the tenant in the path.
        :param form: the request's form fields.
        :param token_url: the URL the request was sent to (a client assertion's audience).
        :raises EntraError: as Entra ID refuses it; the description never quotes a secret.
        """
        if form.get("grant_type") != "client_credentials":
            raise EntraError(400, "unsupported_grant_type", "AADSTS70003: The grant type is not supported.")
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            raise EntraError(400, "invalid_scope", f"AADSTS70011: The scope '{scope}' is not valid.")
        client_id, tenant = form.get("client_id", "").lower(), tenant_id.lower()
        with self._lock:
            principal = self._principals.get((tenant, client_id))
        if principal is None or principal.managed:
            raise EntraError(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{client_id}' was not found in the "
                f"directory '{tenant_id}'.",
            )
        if "client_secret" in form:
            given = form["client_secret"].encode()
            if principal.secret is None or not secrets.compare_digest(principal.secret.encode(), given):
                raise EntraError(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        elif form.get("client_assertion_type") == _ASSERTION_TYPE and "client_assertion" in form:
            self._check_assertion(principal, form["client_assertion"], token_url)
        else:
            raise EntraError(
                401,
                "invalid_client",
                "AADSTS7000218: The request body must contain 'client_secret' or 'client_assertion'.",
            )
        return self._issue_entra_token(principal, scope.removesuffix("/.default"))

    def managed_identity_token(self, header: str, resource: str, client_id: str | None) -> str:
        """Answer the App Service managed-identity endpoint.

        :param header: the ``X-IDENTITY-HEADER`` the client sent.
        :param resource: the resource asked for (``https://sts.mixedreality.azure.com/``).
        :param client_id: a user-assigned identity's client id; ``None`` for the system-assigned one.
        :raises EntraError: a wrong header, or no such identity.
        """
        if not secrets.compare_digest(header.encode(), self.identity_header.encode()):
            raise EntraError(401, "invalid_request", "AADSTS50000: The X-IDENTITY-HEADER is not valid.")
        with self._lock:
            for principal in self._principals.values():
                wanted = (
                    principal.system_assigned
                    if client_id is None
                    else principal.client_id == client_id.lower()
                )
                if principal.managed and wanted:
                    return self._issue_entra_token(principal, resource)
        raise EntraError(400, "invalid_request", "AADSTS50000: No managed identity matches the request.")

    def _check_assertion(self, principal: Principal, assertion: str, token_url: str) -> None:
        refused = EntraError(401, "invalid_client", "AADSTS700027: Client assertion failed validation.")
        if principal.certificate_key is None:
            raise refused
        try:
            claims = jwt.decode(
                assertion,
                principal.certificate_key,
                algorithms=["RS256", "PS256"],
                audience=token_url,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.InvalidTokenError:
            raise refused from None
        if claims["iss"].lower() != principal.client_id or claims["sub"].lower() != principal.client_id:
            raise refused

    def _issue_entra_token(self, principal: Principal, resource: str) -> str:
        now = math.floor(self._entra_clock())
        claims = {
            "iss": f"https://sts.windows.net/{principal.tenant_id}/",
            "aud": resource,
            "tid": principal.tenant_id,
            "appid": principal.client_id,
            "azp": principal.client_id,
            "oid": principal.object_id,
            "sub": principal.object_id,
            "idtyp": "app",
            "iat": now,
            "nbf": now,
            "exp": now + ENTRA_TOKEN_LIFETIME,
            "jti": str(uuid.uuid4()),
        }
        token = jwt.encode(claims, self._entra_secret, algorithm="HS256")
        with self._lock:
            self._entra_tokens.append(token)
        return token

    def entra_role(self, entra_token: str, account_id: str, sts_url: str | None = None) -> tuple[str, str]:
        """Check an Entra token the STS was given and return ``(client id, role on the account)``.

        The token must be for the Mixed Reality STS resource, or for ``sts_url`` itself: the official
        SDK asks Entra for ``{its STS URL}/.default``, as for a regional ``https://sts.<domain>``.

        :param entra_token: the bearer of the STS call.
        :param account_id: the account in the path.
        :param sts_url: this STS's own base URL, as a client reaches it.
        :raises EntraError: not our token, expired, for another resource, or no role on the account.
        """
        try:
            claims = jwt.decode(
                entra_token,
                self._entra_secret,
                algorithms=["HS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.InvalidTokenError:
            raise EntraError(401, "invalid_token", "AADSTS50000: The token is not valid.") from None
        if not isinstance(claims.get("exp"), int) or self._entra_clock() >= claims["exp"]:
            raise EntraError(401, "invalid_token", "AADSTS50000: The token has expired.")
        own = (sts_url.rstrip("/") + "/", sts_url.rstrip("/")) if sts_url else ()
        if claims.get("aud") not in (*_AUDIENCES, *own):
            raise EntraError(
                401, "invalid_token", f"AADSTS50000: The token is for {claims.get('aud')!r}, not the STS."
            )
        with self._lock:
            principal = self._principals.get((str(claims.get("tid")), str(claims.get("appid"))))
            role = principal.roles.get(normalize_id(account_id)) if principal is not None else None
        if principal is None or role is None:
            raise EntraError(
                401, "invalid_token", "AADSTS50000: The identity has no Remote Rendering role on the account."
            )
        return principal.client_id, role

    def note_sts_sign_in(self, kind: str, who: str) -> None:
        """Remember an STS sign-in: ``("account key", account id)`` or ``("entra", client id)``."""
        with self._lock:
            self._sts_sign_ins.append((kind, who))

    def sts_sign_ins(self) -> list[tuple[str, str]]:
        """Every sign-in the STS accepted or refused, oldest first: ``(kind, account or client id)``.

        Tests assert from the emulator's side that an Entra connection never sent ``<id>:<key>``.
        """
        with self._lock:
            return list(self._sts_sign_ins)

    def issued_entra_tokens(self) -> list[str]:
        """Every Entra access token issued (for tests that scan logs for leaks); never served over HTTP."""
        with self._lock:
            return list(self._entra_tokens)

    def _forget_entra(self) -> None:
        """Forget the Entra tokens issued and the STS sign-ins; the caller holds the lock."""
        self._entra_tokens.clear()
        self._sts_sign_ins.clear()
