"""URLs spelt one way and compared as origins (rule 9 of issue 18), and the https rule for secrets."""

from __future__ import annotations

import contextlib
import ipaddress
from urllib.parse import urljoin, urlsplit, urlunsplit

from airflow_provider_arr.models import ArrInputError


def checked_url(url: str, where: str) -> str:
    """Refuse URLs without a scheme, and plain http to anything but loopback (it would expose secrets)."""
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError as error:
        raise ArrInputError(where, f"is not a valid URL ({error}): {url!r}") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ArrInputError(where, f"must be a full http(s) URL like https://host, got {url!r}")
    if parts.scheme.lower() == "http" and not is_loopback(origin(url)[1]):
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


def is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False
