"""Paged list answers: one page read item by item, and the bound of every walk over ``@nextLink``.

Rules 3 and 4 of issue 18 live here: a list is read item by item (one item this client cannot read is
skipped with a warning, never fatal), and a walk never reads a page twice nor more than
:data:`MAX_LIST_PAGES` pages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from airflow_provider_arr.exceptions import RemoteRenderingError
from airflow_provider_arr.models import ArrResponseError

if TYPE_CHECKING:
    from airflow_provider_arr.hooks.transport import Logger, Response

_T = TypeVar("_T")


def parse_page(
    operation: str, response: Response, field: str, parse: Callable[[Any], _T], log: Logger | None = None
) -> tuple[list[_T], str | None]:
    """One page of a list answer (its items under ``field``), and its ``@nextLink`` if any.

    **Item by item (issue 18, rule 4).** A list holds other tools' items too, possibly written by a newer
    service: each item is parsed on its own, and one this client cannot read (not an object, no id, a
    field of the wrong type) is skipped, with one warning per page naming what was wrong, instead of
    failing the list (and with it every wait of the account, and on v1 every create). Statuses this
    client does not know and extra fields are read, not skipped (see ``SessionStatus``). A wait whose
    own item was skipped reads it on its own and gets that read's error.

    :param operation: the hook operation, for errors and the warning.
    :param response: the answer.
    :param field: the field that holds the items (``sessions``, ``conversions``).
    :param parse: reads one item; raises :class:`ArrResponseError` for one it cannot read.
    :param log: where the warning about skipped items goes.
    """
    body = response.json(operation)
    items = body.get(field) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise RemoteRenderingError(
            operation,
            http_status=response.status,
            service_message=f"unexpected answer: field {field!r} is missing or not a list",
            ms_cv=response.ms_cv,
        )
    page: list[_T] = []
    skipped: list[str] = []
    for item in items:
        try:
            page.append(parse(item))
        except ArrResponseError as error:
            item_id = item.get("id") or item.get("sessionId") if isinstance(item, dict) else None
            skipped.append(f"{item_id or 'an item without an id'}: {error.field!r} {error.problem}")
    if skipped and log is not None:
        log.warning(
            "%s: skipped %d listed item(s) this client cannot read (not this wait's; %s)",
            operation,
            len(skipped),
            "; ".join(skipped[:3]) + ("; ..." if len(skipped) > 3 else ""),
        )
    next_link = body.get("@nextLink") if isinstance(body, dict) else None
    return page, (str(next_link) if next_link else None)


#: The most pages one list call reads; a longer walk is a fault of the service's answers, not a list.
MAX_LIST_PAGES = 1000


def page_key(url: str) -> tuple[Any, ...]:
    """What tells two page URLs apart (a page already read is the same key).

    Scheme, host (no trailing dot) and path compare case-blind, the default port is made explicit, query
    names compare case-blind and in any order; query values as written (a continuation token is case
    sensitive).
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    host = (parts.hostname or "").rstrip(".").lower()
    path = unquote(parts.path).rstrip("/").lower()
    query = sorted((name.lower(), value) for name, value in parse_qsl(parts.query, keep_blank_values=True))
    return scheme, host, port or _DEFAULT_PORTS.get(scheme), path, tuple(query)


_DEFAULT_PORTS = {"http": 80, "https": 443}


class PageWalk:
    """The bound of every paged list call (issue 18, rule 3): by count, and by never reading a page twice.

    A list call follows ``@nextLink`` until an answer has none. A link that leads to a page already read
    (the page itself, a cycle of any length; compared by :func:`page_key`, so a link spelled with
    another host case, an explicit default port, a trailing dot or relative comes out the same), and a
    walk longer than :data:`MAX_LIST_PAGES` pages, end the call with a clear error instead: a real
    service's list never does either. Time is bounded by the caller: a wait abandons a walk in flight
    at its deadline (``base.py``, ``triggers/_poller.py``).

    :param operation: the list operation, for the error.
    :param first_url: the URL of the first page.
    """

    def __init__(self, operation: str, first_url: str) -> None:
        self.operation = operation
        self.pages = 0
        self._seen = {page_key(first_url)}

    def follow(self, link: str, response: Response) -> None:
        """Note one more page read; raise if ``link`` (its ``@nextLink``, resolved) ends no list.

        :param link: the absolute URL of the next page.
        :param response: the answer that carried it (its ``MS-CV`` goes into the error).
        """
        self.pages += 1
        key = page_key(link)
        if key in self._seen:
            problem = f"its @nextLink leads back to a page already read (after {self.pages} page(s))"
        elif self.pages >= MAX_LIST_PAGES:
            problem = f"the list did not end within {MAX_LIST_PAGES} pages"
        else:
            self._seen.add(key)
            return
        raise RemoteRenderingError(
            self.operation,
            http_status=response.status,
            service_message=f"{problem}, so it would never end; the walk was stopped",
            ms_cv=response.ms_cv,
            hint="The service's answer is at fault: retry later, or report the MS-CV to the service team.",
        )
