"""Answers a newer or buggier service could give: foreign list items, odd statuses, next links that loop.

A client must read a list item by item and bound its paging (the provider's rules 3 and 4). To test
that, the emulated service can, on both dialects and for sessions and conversions alike:

- put **foreign items** into every list answer (:meth:`AnswerOddities.add_foreign_items`): items of no
  client, of a kind from :data:`FOREIGN_KINDS` (a status no client knows, only the required fields,
  extra fields, or shapes no client can read: not an object, no id, no status, fields of the wrong type);
- make one real session or conversion **report a status text** of the test's choice on every read and
  list (:meth:`AnswerOddities.report_status`), while its life cycle goes on unchanged underneath;
- make the list's **@nextLink loop** (:meth:`AnswerOddities.loop_next_link`): to the page itself, around
  a cycle of pages, or to a new page forever, spelled as sent, relative, or with the host upper-cased.

The routes call :func:`shown` on every item they answer with and :func:`list_body` on every list
answer. :class:`AnswerOddities` is a part of :class:`~airflow_provider_arr.emulator.state.EmulatorState`
(which creates ``_lock`` and calls :meth:`AnswerOddities._init_oddities`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import URL

__all__ = [
    "FOREIGN_KINDS",
    "LINK_LOOPS",
    "LINK_SPELLINGS",
    "LIST_RESOURCES",
    "AnswerOddities",
    "list_body",
    "shown",
]

#: What a foreign item can be (see :meth:`AnswerOddities.add_foreign_items`).
FOREIGN_KINDS = (
    "unknown_status",
    "missing_fields",
    "extra_fields",
    "not_an_object",
    "no_id",
    "no_status",
    "bad_types",
)
#: How a list's ``@nextLink`` can loop (see :meth:`AnswerOddities.loop_next_link`).
LINK_LOOPS = ("self", "cycle", "endless")
#: How a looping ``@nextLink`` is written.
LINK_SPELLINGS = ("exact", "relative", "upper_host")
#: The list answers these apply to.
LIST_RESOURCES = ("sessions", "conversions")
#: The query parameter that numbers the pages of a looping list.
LOOP_PARAMETER = "loopPage"
#: The status a foreign item of kind ``unknown_status`` reports unless told otherwise.
DEFAULT_UNKNOWN_STATUS = "Hibernating"


@dataclass(frozen=True)
class ForeignItem:
    """One foreign item of a list: its kind, id and status text."""

    kind: str
    item_id: str
    status: str


@dataclass(frozen=True)
class LinkLoop:
    """How the ``@nextLink`` of one resource's list loops."""

    mode: str
    pages: int
    spelling: str


class AnswerOddities:
    """Foreign list items, reported status texts and looping next links, behind the state's lock."""

    _lock: Any

    def _init_oddities(self) -> None:
        self._foreign: dict[str, list[ForeignItem]] = {resource: [] for resource in LIST_RESOURCES}
        self._loops: dict[str, LinkLoop] = {}
        self._reported: dict[str, str] = {}

    def add_foreign_items(
        self,
        kind: str = "unknown_status",
        count: int = 1,
        *,
        resource: str = "sessions",
        status: str = DEFAULT_UNKNOWN_STATUS,
    ) -> list[str]:
        """Put ``count`` items that belong to no client at the start of every list answer of ``resource``.

        They appear on both dialects (v1 lists sessions only), on the first page, until :meth:`reset`
        or :meth:`clear_oddities`; a read of one by id answers 404. Kinds (:data:`FOREIGN_KINDS`):
        ``unknown_status`` (a full item whose status is ``status``), ``missing_fields`` (the id and a
        known status only), ``extra_fields`` (a full item with fields no contract names), and shapes
        no client can read: ``not_an_object``, ``no_id``, ``no_status``, ``bad_types`` (lease or
        settings of the wrong JSON type).

        :param kind: one of :data:`FOREIGN_KINDS`.
        :param count: how many such items.
        :param resource: ``sessions`` or ``conversions``.
        :param status: the status text of an ``unknown_status`` item.
        :return: the items' ids (``not_an_object`` and ``no_id`` items carry none on the wire).
        """
        if kind not in FOREIGN_KINDS:
            raise ValueError(f"kind must be one of {list(FOREIGN_KINDS)}, got {kind!r}")
        if resource not in LIST_RESOURCES or count < 1:
            raise ValueError(f"resource must be one of {list(LIST_RESOURCES)} and count at least 1")
        known = "Running" if resource == "conversions" else "Ready"
        items = [
            ForeignItem(kind, str(uuid.uuid4()), status if kind == "unknown_status" else known)
            for _ in range(count)
        ]
        with self._lock:
            self._foreign[resource].extend(items)
        return [item.item_id for item in items]

    def report_status(self, item_id: str, text: str | None) -> None:
        """Make a session or conversion report ``text`` as its status on every read and list answer.

        Its life cycle goes on unchanged underneath (it still becomes Ready, expires, stops).

        :param item_id: the session's or conversion's id, as the routes answer it.
        :param text: the status text, e.g. ``"Hibernating"``; ``None`` reports the real status again.
        """
        with self._lock:
            if text is None:
                self._reported.pop(item_id, None)
            else:
                self._reported[item_id] = text

    def loop_next_link(
        self,
        mode: str = "self",
        *,
        resource: str = "sessions",
        pages: int = 2,
        spelling: str = "exact",
    ) -> None:
        """Make every list answer of ``resource`` carry an ``@nextLink`` that never ends the list.

        ``self``: the link is the page's own URL; ``cycle``: ``pages`` pages link in a ring back to the
        first URL; ``endless``: every page links to a new one. ``spelling`` writes the link as the
        client sent it (``exact``), as path and query only (``relative``), or with the scheme and host
        upper-cased (``upper_host``). Applies to both dialects (v1 lists carry no link otherwise).

        :param mode: one of :data:`LINK_LOOPS`; ``None`` is not accepted (use :meth:`clear_oddities`).
        :param resource: ``sessions`` or ``conversions``.
        :param pages: the length of a ``cycle`` (at least 2).
        :param spelling: one of :data:`LINK_SPELLINGS`.
        """
        if mode not in LINK_LOOPS or spelling not in LINK_SPELLINGS or resource not in LIST_RESOURCES:
            raise ValueError(
                f"mode must be one of {list(LINK_LOOPS)}, spelling one of {list(LINK_SPELLINGS)}, "
                f"resource one of {list(LIST_RESOURCES)}"
            )
        if mode == "cycle" and pages < 2:
            raise ValueError("a cycle has at least 2 pages")
        with self._lock:
            self._loops[resource] = LinkLoop(mode, pages, spelling)

    def clear_oddities(self) -> None:
        """Forget foreign items, reported status texts and looping links."""
        with self._lock:
            self._init_oddities()

    def _oddities(self, resource: str) -> tuple[list[ForeignItem], LinkLoop | None]:
        with self._lock:
            return list(self._foreign[resource]), self._loops.get(resource)

    def _reported_status(self, item_id: Any) -> str | None:
        with self._lock:
            return self._reported.get(item_id) if isinstance(item_id, str) else None


def shown(state: AnswerOddities, body: dict[str, Any]) -> dict[str, Any]:
    """An item as answered: with the status text :meth:`AnswerOddities.report_status` set for it, if any.

    :param state: the emulator state.
    :param body: a session (either dialect) or conversion object.
    """
    item_id = body.get("sessionId") or body.get("conversionId") or body.get("id")
    text = state._reported_status(item_id)
    if text is not None:
        body["sessionStatus" if "sessionStatus" in body else "status"] = text
    return body


def list_body(
    state: AnswerOddities, request_url: URL, body: dict[str, Any], resource: str, dialect: str
) -> dict[str, Any]:
    """A list answer with the foreign items and the looping ``@nextLink`` the state asks for.

    :param state: the emulator state.
    :param request_url: the URL of the list call.
    :param body: the answer as the route made it (its items under ``resource``).
    :param resource: ``sessions`` or ``conversions``.
    :param dialect: ``v1`` or ``2021-01-01``.
    """
    foreign, loop = state._oddities(resource)
    items = [shown(state, item) if isinstance(item, dict) else item for item in body[resource]]
    first_page = not {LOOP_PARAMETER, "continuationToken"} & set(dict(parse_qsl(request_url.query)))
    if foreign and first_page:
        items = [_foreign_item(item, resource, dialect) for item in foreign] + items
    body[resource] = items
    if loop is not None:
        body["@nextLink"] = _looping_link(request_url, loop)
    return body


def _looping_link(url: URL, loop: LinkLoop) -> str:
    page = int(dict(parse_qsl(url.query)).get(LOOP_PARAMETER, "0") or 0)
    if loop.mode == "self":
        link = url
    elif loop.mode == "cycle" and (page + 1) % loop.pages == 0:
        link = url.remove_query_params(LOOP_PARAMETER)
    else:
        link = url.include_query_params(**{LOOP_PARAMETER: page + 1})
    if loop.spelling == "relative":
        return link.path + (f"?{link.query}" if link.query else "")
    if loop.spelling == "upper_host":
        return str(link.replace(scheme=link.scheme.upper(), hostname=(link.hostname or "").upper()))
    return str(link)


def _foreign_item(item: ForeignItem, resource: str, dialect: str) -> Any:
    """A foreign item in the shape of ``resource`` on ``dialect``, broken as its kind says."""
    if item.kind == "not_an_object":
        return f"foreign {resource[:-1]} {item.item_id}"
    if resource == "conversions":
        id_key, status_key = "id", "status"
        body: dict[str, Any] = {
            "id": item.item_id,
            "settings": {"inputLocation": {"storageContainerUri": "https://other.blob.core.windows.net/in"}},
            "status": item.status,
            "creationTime": "2021-01-01T00:00:00.0000000+00:00",
        }
        bad = {"output": "not an object", "creationTime": 20210101}
    elif dialect == "v1":
        id_key, status_key = "sessionId", "sessionStatus"
        body = {
            "message": None,
            "sessionElapsedTime": "00:10:00",
            "sessionHostname": f"{item.item_id}.remoterenderingvm.westus2.mixedreality.azure.com",
            "sessionId": item.item_id,
            "sessionMaxLeaseTime": "04:00:00",
            "sessionSize": "Standard",
            "sessionStatus": item.status,
        }
        bad = {"sessionMaxLeaseTime": 240, "sessionSize": ["Standard"]}
    else:
        id_key, status_key = "id", "status"
        body = {
            "id": item.item_id,
            "creationTime": "2021-01-01T00:00:00.0000000+00:00",
            "elapsedTimeMinutes": 10,
            "maxLeaseTimeMinutes": 240,
            "size": "Standard",
            "status": item.status,
        }
        bad = {"maxLeaseTimeMinutes": "four hours", "hostname": 42}
    if item.kind == "missing_fields":
        return {id_key: item.item_id, status_key: item.status}
    if item.kind == "extra_fields":
        return body | {"futureField": {"nested": [1, 2, None]}, "tags": {"owner": "another tool"}}
    if item.kind == "no_id":
        return {key: value for key, value in body.items() if key != id_key}
    if item.kind == "no_status":
        return {key: value for key, value in body.items() if key != status_key}
    if item.kind == "bad_types":
        return body | bad
    return body
