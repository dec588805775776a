"""Connection settings: every field of an Airflow connection the hook uses, checked once.

Errors name the connection and the field (never the secret's value) and are raised before any HTTP.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from airflow_provider_arr.models import API_VERSIONS, ArrInputError, validate_session_id

DEFAULT_STS_URL = "https://sts.mixedreality.azure.com"
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
        :param password: the account key.
        :param extra: the connection's extras.
            of a connection, give it percent-encoded: ``azure-remote-rendering://<id>:<key>@https%3A%2F%2F...``).
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
        account_key = check_credential(password, where("password (account key)"))
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
        )


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


def checked_url(url: str, where: str) -> str:
    """Refuse URLs without a scheme, and plain http to anything but loopback (it would expose secrets)."""
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError as error:
        raise ArrInputError(where, f"is not a valid URL ({error}): {url!r}") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ArrInputError(where, f"must be a full http(s) URL like https://host, got {url!r}")
    if parts.scheme.lower() == "http" and not _is_loopback(origin(url)[1]):
        raise ArrInputError(
            where,
            f"uses plain http:// to {parts.hostname!r}; the account key and tokens are only sent over https "
            "(plain http is allowed for loopback addresses, e.g. the emulator)",
        )
    return normalized_url(url).rstrip("/")


#: The port a scheme implies when a URL names none.
DEFAULT_PORTS = {"http": 80, "https": 443}


def normalized_url(url: str) -> str:
    """``url`` spelt the one way, so that equal URLs compare equal (rule 9 of issue 18).

    The scheme and host are lower case, a host's trailing dot (the DNS root) and an IDN's Unicode form
    (to punycode) are normalised, and the scheme's default port (80, 443) is dropped. The path, query
    and user info are kept as they are. Every URL the hook compares goes through this or :func:`origin`:
    the connection's ``host`` and ``sts_url`` (so the token cache and the trigger's shared poller see
    one account however it is spelt), and the ``@nextLink`` of every list.

    :param url: an absolute http(s) URL.
    """
    parts = urlsplit(url.strip())
    scheme, host, port = origin(url)
    netloc = f"[{host}]" if ":" in host else host
    if port != DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    userinfo, at, _ = parts.netloc.rpartition("@")
    return urlunsplit((scheme, f"{userinfo}{at}{netloc}", parts.path, parts.query, parts.fragment))


def origin(url: str) -> tuple[str, str, int | None]:
    """A URL's origin as ``(scheme, host, port)``, normalised as :func:`normalized_url` says.

    The port is the scheme's default when the URL names none. Raises ``ValueError`` for a port that is
    not a number.

    :param url: an absolute URL.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    with contextlib.suppress(UnicodeError):  # not a valid IDN: compared as it is, lower case
        host = host.encode("idna").decode("ascii").lower()
    return scheme, host, parts.port if parts.port is not None else DEFAULT_PORTS.get(scheme)


def same_origin_link(base_url: str, link: str) -> str | None:
    """Resolve a service's link (``@nextLink``) against ``base_url``; ``None`` if it leaves its origin.

    The link is followed on the connection's own spelling of the origin (only its path and query are
    taken), so the token never goes to a host the connection does not name.

    :param base_url: the connection's base URL.
    :param link: the link as the service sent it (absolute, or relative to the base URL).
    """
    url = urljoin(base_url + "/", link.strip())
    try:
        if origin(url) != origin(base_url):
            return None
    except ValueError:
        return None
    base, target = urlsplit(base_url), urlsplit(url)
    return urlunsplit((base.scheme, base.netloc, target.path, target.query, ""))


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False
