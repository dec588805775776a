"""Connection settings: every field of an Airflow connection the hook uses, checked once.

Errors name the connection and the field (never the secret's value) and are raised before any HTTP.
"""

from __future__ import annotations

import hashlib
import json
import math
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_arr.hooks.urls import checked_url
from airflow_provider_arr.models import API_VERSIONS, ArrInputError, validate_session_id

DEFAULT_STS_URL = "https://sts.mixedreality.azure.com"
#: The Entra ID scope of the Mixed Reality token service (the double slash is deliberate: the resource is
#: ``https://sts.mixedreality.azure.com/``; the regional form is reported not to work outside East US 2).
DEFAULT_ENTRA_SCOPE = "https://sts.mixedreality.azure.com//.default"

#: How the connection signs in to the token service (chosen once, from which fields are set).
ACCOUNT_KEY = "account_key"
CLIENT_SECRET = "client_secret"
CERTIFICATE = "certificate"
DEFAULT_CREDENTIAL = "default_credential"
_ALLOWED_CHARACTERS = {
    "tenantId": set(string.ascii_letters + string.digits + ".-"),
    "entra_scope": set(string.ascii_letters + string.digits + "_-.:/"),
}
#: The Entra ID extras, each a string (``tenantId`` as Airflow's Azure provider spells it).
ENTRA_EXTRAS = (
    "tenantId",
    "client_id",
    "client_secret",
    "certificate_path",
    "managed_identity_client_id",
    "workload_identity_tenant_id",
    "authority_host",
    "entra_scope",
)
REGION_URL = "https://remoterendering.{region}.mixedreality.azure.com"

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
    :param account_key: the account key (secret); ``None`` when the connection signs in with Entra ID.
    :param api_version: the API dialect, ``v1`` or ``2021-01-01``.
    :param connect_timeout: seconds to wait for a TCP connection.
    :param read_timeout: seconds to wait for an answer.
    :param retry_limit: attempts per call.
    :param retry_max_time: seconds one call may spend retrying.
    :param retry_min_wait: the shortest wait between two attempts, in seconds.
    :param retry_max_wait: the longest wait between two attempts, in seconds.
    :param sign_in: how the token service is signed in to: :data:`ACCOUNT_KEY`, :data:`CLIENT_SECRET`,
        :data:`CERTIFICATE` or :data:`DEFAULT_CREDENTIAL` (the last three with Microsoft Entra ID).
    :param tenant_id: extra ``tenantId``: the Entra tenant of the service principal.
    :param client_id: extra ``client_id``: the service principal's application (client) id.
    :param client_secret: extra ``client_secret`` (secret).
    :param certificate_path: extra ``certificate_path``: a PEM file with the principal's certificate and key.
    :param managed_identity_client_id: extra ``managed_identity_client_id``: a user-assigned identity.
    :param workload_identity_tenant_id: extra ``workload_identity_tenant_id``.
    :param authority_host: extra ``authority_host``: ``https://host[:port]`` of Entra ID, ``None`` for
        the public cloud (or ``AZURE_AUTHORITY_HOST``).
    :param entra_scope: extra ``entra_scope``: the scope the Entra token is asked for.
    """

    base_url: str
    sts_url: str
    account_id: str
    account_key: str | None = field(repr=False)
    api_version: str = "v1"
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    retry_limit: int = 6
    retry_max_time: float = 120.0
    retry_min_wait: float = 1.0
    retry_max_wait: float = 30.0
    sign_in: str = ACCOUNT_KEY
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    certificate_path: str | None = None
    managed_identity_client_id: str | None = None
    workload_identity_tenant_id: str | None = None
    authority_host: str | None = None
    entra_scope: str = DEFAULT_ENTRA_SCOPE

    @property
    def uses_entra(self) -> bool:
        """Whether the token service is signed in to with Microsoft Entra ID (not the account key)."""
        return self.sign_in != ACCOUNT_KEY

    @property
    def account_key_credential(self) -> str | None:
        """What the token service takes with an account key, ``<account id>:<account key>``; else None."""
        if self.account_key is None:
            return None
        return f"{self.account_id}:{self.account_key}"

    @property
    def token_cache_key(self) -> tuple[str, str, str]:
        """
        Where this connection's token lives in the process-wide cache.

        The key's hash is part of it: a connection with a wrong key must not reuse a token fetched
        with the right one (Airflow's "Test connection" would say "Connected"). With Entra ID, the
        principal is: tenant, client or managed identity, scope, authority, and a hash of the secret or
        certificate path, for the same reason.
        """
        if self.account_key is not None:
            identity = self.account_key
        else:
            identity = "\0".join(
                str(part)
                for part in (
                    self.sign_in,
                    self.tenant_id,
                    self.client_id,
                    self.client_secret,
                    self.certificate_path,
                    self.managed_identity_client_id,
                    self.workload_identity_tenant_id,
                    self.authority_host,
                    self.entra_scope,
                )
            )
        return (self.sts_url, self.account_id, hashlib.sha256(identity.encode()).hexdigest())

    @classmethod
    def from_connection(
        cls,
        conn_id: str,
        host: str | None,
        login: str | None,
        password: str | None,
        extra: Mapping[str, Any],
    ) -> ConnectionSettings:
        """Validate a connection's fields; errors name the connection and the field.

        :param conn_id: the connection id, for error messages.
        :param host: the connection's host: the service base URL.
        :param login: the account id.
        :param password: the account key; without it, the Entra ID extras say how to sign in.
        :param extra: the connection's extras.
            of a connection, give it percent-encoded: ``azure-remote-rendering://<id>:<key>@https%3A%2F%2F...``).
        :raises ArrInputError: naming the field, never a secret's value, before any HTTP.
        """

        def where(name: str) -> str:
            return f"connection {conn_id!r} {name}"

        if not isinstance(extra, Mapping):
            raise ArrInputError(where("extra"), "must be a JSON object")
        extra = {name: _unset_to_none(value) for name, value in extra.items()}
        host = _unset_to_none(host)
        region = extra.get("region")
        if host is not None:
            base_url = str(host)
        elif region is not None:
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
        account_id = check_credential(login, where("login (account id)"))
        try:
            validate_session_id(account_id, where("login (account id)"))
        except ArrInputError:
            raise ArrInputError(
                where("login (account id)"), f"must be the account's GUID, got {account_id!r}"
            ) from None
        account_key = None
        if _unset_to_none(password) is not None:  # a form's cleared field is "", not a key
            account_key = check_credential(password, where("password (account key)"))
        entra = _entra_fields(extra, account_key is not None, where)
        api_version = extra.get("api_version") or "v1"
        if not isinstance(api_version, str) or api_version.lower() not in API_VERSIONS:
            raise ArrInputError(
                where("extra 'api_version'"), f"must be one of {API_VERSIONS}, got {api_version!r}"
            )
        numbers: dict[str, Any] = {}
        for name, (kind, default) in _CONNECTION_EXTRAS.items():
            numbers[name] = _number(extra.get(name), kind, default, where(f"extra {name!r}"))
            if numbers[name] <= 0 and name != "retry_min_wait":
                raise ArrInputError(
                    where(f"extra {name!r}"), f"must be greater than zero, got {extra.get(name)!r}"
                )
        return cls(
            base_url=checked_url(base_url, where("host")),
            sts_url=checked_url(sts_url, where("extra 'sts_url'")),
            account_id=account_id.lower(),
            account_key=account_key,
            api_version=api_version.lower(),
            **numbers,
            **entra,
        )


def _entra_fields(extra: Mapping[str, Any], has_key: bool, where: Callable[[str], str]) -> dict[str, Any]:
    """The Entra ID extras, checked, and the sign-in they choose.

    In this order: the account key if the password is set; a client secret; a certificate (both need
    ``client_id`` and ``tenantId``); else DefaultAzureCredential if any Entra extra is set. Neither a key
    nor an Entra extra is refused, naming the password: a forgotten key is no wish to probe for an identity.

    :param extra: the connection's extras (blank values already ``None``).
    :param has_key: whether the connection has an account key (password).
    :param where: names a field for an error (``where("extra 'client_id'")``).
    :raises ArrInputError: a missing or malformed field, named; a secret's value never appears.
    """
    fields: dict[str, Any] = {}
    for name in ENTRA_EXTRAS:
        value = extra.get(name)
        if value is not None and not isinstance(value, str):
            raise ArrInputError(where(f"extra {name!r}"), f"must be a string, got {type(value).__name__}")
        if value is not None:
            fields[name] = check_credential(value, where(f"extra {name!r}"))
    for name, allowed in _ALLOWED_CHARACTERS.items():  # azure-identity's own rules, checked early
        if not set(fields.get(name, "")) <= allowed:
            raise ArrInputError(where(f"extra {name!r}"), f"has characters it cannot have: {fields[name]!r}")
    scope = fields.pop("entra_scope", DEFAULT_ENTRA_SCOPE)
    authority = fields.pop("authority_host", None)
    if authority is not None:
        authority = _authority(authority, where("extra 'authority_host'"))
    checked = {
        "tenant_id": fields.get("tenantId"),
        "client_id": fields.get("client_id"),
        "client_secret": fields.get("client_secret"),
        "certificate_path": fields.get("certificate_path"),
        "managed_identity_client_id": fields.get("managed_identity_client_id"),
        "workload_identity_tenant_id": fields.get("workload_identity_tenant_id"),
        "authority_host": authority,
        "entra_scope": scope,
    }
    if has_key:
        return {"sign_in": ACCOUNT_KEY, **checked}
    secret, certificate = checked["client_secret"], checked["certificate_path"]
    if secret is not None and certificate is not None:
        raise ArrInputError(
            where("extras 'client_secret' and 'certificate_path'"),
            "are both set; a service principal signs in with one of them: clear the other",
        )
    if not fields and authority is None and scope == DEFAULT_ENTRA_SCOPE:
        raise ArrInputError(
            where("password (account key)"),
            "is empty; set the account key, or sign in with Microsoft Entra ID: extras 'client_id' with "
            "'client_secret' or 'certificate_path', and 'tenantId' (a service principal); "
            "'managed_identity_client_id' (a user-assigned managed identity); or 'tenantId' alone "
            "(DefaultAzureCredential: a system-assigned managed identity, AKS workload identity)",
        )
    if secret is None and certificate is None:
        if checked["client_id"] is not None:
            raise ArrInputError(
                where("extra 'client_id'"),
                "is set without 'client_secret' or 'certificate_path': set one of them for a service "
                "principal (or use 'managed_identity_client_id' for a user-assigned managed identity, "
                "or set the password (account key))",
            )
        return {"sign_in": DEFAULT_CREDENTIAL, **checked}
    given = "client_secret" if secret is not None else "certificate_path"
    for name, key in (("client_id", "client_id"), ("tenantId", "tenant_id")):
        if checked[key] is None:
            raise ArrInputError(
                where(f"extra {name!r}"), f"is empty; a service principal with a '{given}' needs it"
            )
    return {"sign_in": CLIENT_SECRET if secret is not None else CERTIFICATE, **checked}


def _authority(value: str, where: str) -> str:
    """``authority_host`` as ``https://host[:port]``: Entra ID is only ever spoken to over https."""
    url = value if "://" in value else f"https://{value}"
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        raise ArrInputError(where, f"is not a valid host or URL: {value!r}") from None
    if parts.scheme != "https" or not parts.hostname or parts.path.strip("/") or parts.query:
        raise ArrInputError(
            where, f"must be an https host like https://login.microsoftonline.us, got {value!r}"
        )
    return f"https://{parts.netloc}"


def _unset_to_none(value: Any) -> Any:
    """An empty field (``None``, ``""``, blanks) means "unset"; other strings are trimmed.

    The UI form writes ``null`` or ``""`` for a cleared field; a JSON environment variable may give numbers
    as numbers or strings; a URI gives every extra as a string. All land here.
    """
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _number(value: Any, kind: type, default: float, where: str) -> Any:
    """An extra as a finite number of ``kind`` (``int`` or ``float``); unset means ``default``.

    ``"3.0"`` or ``3.0`` is a whole number for an ``int`` field; ``3.5`` is not; ``true`` is no number.
    """
    if value is None:
        return kind(default)
    if isinstance(value, bool):
        raise ArrInputError(where, f"must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ArrInputError(where, f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ArrInputError(where, f"must be a finite number, got {value!r}")
    if kind is int:
        if not number.is_integer():
            raise ArrInputError(where, f"must be a whole number, got {value!r}")
        return int(number)
    return number


def check_credential(value: Any, where: str) -> str:
    """A login or key as given, refused if empty or if it has surrounding blanks or control characters.

    The error names the field and never the value: a key pasted with a trailing newline would otherwise
    reach an HTTP header, whose library error quotes it.
    """
    if not isinstance(value, str) or not value:
        raise ArrInputError(where, "is empty")
    if value != value.strip():
        raise ArrInputError(
            where, "has blanks or a line break around it (the value is not shown); remove them"
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ArrInputError(where, "contains a control character (the value is not shown); paste it again")
    return value


def check_raw_extra(conn_id: str, extra: str | None) -> None:
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
