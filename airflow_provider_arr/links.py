"""Extra links on the task pages: the session's ARR Inspector and the converted asset.

Airflow 3 asks each link for its URL when the task instance finishes, in the task's own process, and
keeps the answer as an XCom (key ``_link_<class name>``) that the UI reads. The operators note the URL
on themselves once they know it (``note_link``); a task that never learnt it gets no link (an empty
URL, which the UI shows as unavailable).

Not here: a link to the account in the Azure portal. A portal URL needs the account's subscription and
resource group, which an ARR connection does not hold (the service is addressed by account id and
domain only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

__all__ = ["RemoteRenderingConvertedAssetLink", "RemoteRenderingInspectorLink", "note_link"]

#: Where an operator keeps the URLs it learnt, by link name.
_ATTRIBUTE = "_arr_extra_links"


def note_link(operator: Any, link: type[_NotedLink], url: str | None) -> None:
    """Remember ``url`` for ``link`` on ``operator`` (nothing when ``url`` is empty)."""
    if url:
        links = operator.__dict__.setdefault(_ATTRIBUTE, {})
        links[link.name] = url


class _NotedLink(BaseOperatorLink):
    """A link whose URL the operator noted while it ran (see :func:`note_link`)."""

    name: ClassVar[str] = ""

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return str(operator.__dict__.get(_ATTRIBUTE, {}).get(self.name, ""))


class RemoteRenderingInspectorLink(_NotedLink):
    """``https://<hostname>:<arrInspectorPort>``: the ARR Inspector of the session, once it is Ready.

    The service gives the port on ``2021-01-01``; a v1 ``properties`` answer has none, so v1 tasks
    get no link.
    """

    name: ClassVar[str] = "ARR Inspector"


class RemoteRenderingConvertedAssetLink(_NotedLink):
    """The blob URL of the ``.arrAsset`` a conversion wrote (opening it needs read access to the blob)."""

    name: ClassVar[str] = "Converted asset"
