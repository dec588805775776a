"""Who may see and do what in the operations view: Airflow's auth manager decides, per request.

A mounted plugin app gets no authentication from Airflow: every route takes the user through
``GetUserDep`` (bearer token, or the UI's ``_token`` cookie) and asks the auth manager. The global
``get_auth_manager()`` is used, never ``request.app.state`` (a mounted sub-app has no auth manager in
its state). The rules:

- *see* a session: read rights on its connection (every session of the account), or read rights on the
  runs of the DAG that owns it;
- *stop or extend* a session: edit rights on the owning DAG's runs (``PUT``, ``DagAccessEntity.RUN``) for
  an owned session; edit rights on the connection for a session no task owns. Under the simple auth
  manager, a viewer has neither; custom-view rights are never used (that manager ignores their method).
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal
from urllib.parse import urlsplit

from airflow_provider_arr.ownership.assess import Attribution

#: An auth manager's ``ResourceMethod``.
Method = Literal["GET", "POST", "PUT", "DELETE"]


class Access:
    """One user's rights, each asked of the auth manager once per request.

    :param user: Airflow's user object (``BaseUser``).
    """

    def __init__(self, user: Any) -> None:
        from airflow.api_fastapi.app import get_auth_manager

        self.user = user
        self._manager = get_auth_manager()
        self._asked: dict[tuple[str, Method, str], bool] = {}

    @property
    def name(self) -> str:
        """The user's name, as the audit log records it."""
        return str(self.user.get_name())

    def _ask(self, kind: str, method: Method, name: str) -> bool:
        key = (kind, method, name)
        if key not in self._asked:
            self._asked[key] = self._decide(kind, method, name)
        return self._asked[key]

    def _decide(self, kind: str, method: Method, name: str) -> bool:
        from airflow.api_fastapi.auth.managers.models.resource_details import (
            ConnectionDetails,
            DagAccessEntity,
            DagDetails,
        )

        if kind == "connection":
            return bool(
                self._manager.is_authorized_connection(
                    method=method, details=ConnectionDetails(conn_id=name), user=self.user
                )
            )
        return bool(
            self._manager.is_authorized_dag(
                method=method, access_entity=DagAccessEntity.RUN, details=DagDetails(id=name), user=self.user
            )
        )

    def read_connection(self, conn_id: str) -> bool:
        """Whether the user may read the connection (and so see all of its account's sessions)."""
        return self._ask("connection", "GET", conn_id)

    def read_runs(self, dag_id: str) -> bool:
        """Whether the user may read the DAG's runs."""
        return self._ask("dag", "GET", dag_id)

    def may_test(self, conn_id: str) -> bool:
        """Whether the user may test the connection: what Airflow's own test route asks (``POST``)."""
        return self._ask("connection", "POST", conn_id)

    def may_act(self, found: Attribution, conn_id: str) -> bool:
        """Whether the user may stop or extend this session (see the module's docstring)."""
        owner = found.owner
        if owner is not None:
            return self._ask("dag", "PUT", owner.dag_id)
        return self._ask("connection", "PUT", conn_id)


def same_site(headers: Any) -> bool:
    """Whether a POST comes from a page of this site (a cross-site form post is refused).

    The ``_token`` cookie is SameSite=Lax, so a cross-site POST carries none anyway; this is the second
    lock. ``Origin`` must name the host the request was sent to; browsers that send ``Sec-Fetch-Site``
    must not say ``cross-site``. A client that sends neither (curl, a test) is judged by its credentials.
    """
    if headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == headers.get("host")


@cache
def current_user() -> Any:
    """Airflow's ``get_user`` (what ``GetUserDep`` depends on): the request's user, or 401/403."""
    from airflow.api_fastapi.core_api.security import get_user

    return get_user
