"""The two API dialects of the session API, one object each: URLs, bodies, answers and id rules.

``v1`` (the seed's dialect): ``POST .../v1/accounts/{account}/sessions/create``, ``GET .../{id}/properties``,
``PATCH``, ``DELETE``; leases as .NET TimeSpans; the service picks session ids (GUIDs), so a create whose
answer was lost cannot simply be sent again.
``2021-01-01``: ``PUT .../accounts/{account}/sessions/{id}?api-version=2021-01-01``, ``GET``, ``PATCH``,
``POST .../{id}/:stop``; leases in whole minutes from Ready; a paged list (``@nextLink``); the client
names each session, so a create is idempotent and may be retried.

The dialect is chosen once from the connection's settings (:func:`dialect_for`). A new dialect is one
more class here; a new resource family adds its requests to these classes (the conversion calls are
mixed in from ``conversion_dialects.py``).
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from datetime import timedelta
from typing import Any, ClassVar

from airflow_provider_arr.exceptions import (
    RemoteRenderingError,
    RemoteRenderingSessionMayExistError,
    RemoteRenderingSessionNotFoundError,
)
from airflow_provider_arr.hooks.conversion_dialects import (
    Api2021Conversions,
    ConversionDialect,
    V1Conversions,
)
from airflow_provider_arr.hooks.paging import parse_page
from airflow_provider_arr.hooks.policy import ResourceKind, parse_answer
from airflow_provider_arr.hooks.settings import ConnectionSettings
from airflow_provider_arr.hooks.transport import Logger, Request, Response
from airflow_provider_arr.hooks.urls import same_origin_link
from airflow_provider_arr.hooks.wire import mask_secrets
from airflow_provider_arr.models import (
    API_2021,
    API_V1,
    ArrInputError,
    SessionProperties,
    format_timespan,
    lease_minutes,
    validate_lease,
    validate_models,
    validate_session_id,
    validate_size,
)

SESSION_MAY_EXIST = (
    "The service may have started the session anyway, so it was not retried (a second create could "
    "start a second billed VM): list the account's sessions and stop any you do not want."
)

#: Errors of the session calls.
SESSION = ResourceKind(
    noun="session",
    not_found=RemoteRenderingSessionNotFoundError,
    may_exist=RemoteRenderingSessionMayExistError,
    may_exist_hint=SESSION_MAY_EXIST,
    hints={
        409: "On 2021-01-01 a session with this id already exists with other settings; on v1 the account "
        "may have too many sessions.",
        422: "The service only extends a lease: the new lease must be longer than the current one.",
    },
)

_STOP_OK = frozenset({200, 202, 204})


class Dialect(ConversionDialect, ABC):
    """What differs between API versions; everything else (policy, transport, tokens) is shared.

    :param settings: the connection's settings.
    """

    #: The connection extra ``api_version`` that selects this dialect.
    api_version: ClassVar[str]
    #: Whether the client names sessions (and so a create may be retried and reconnected to).
    client_names_sessions: ClassVar[bool]

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings

    # ---------------------------------------------------------------- ids and inputs

    def check_session_id(self, value: Any, field: str = "session_id") -> str:
        """A session id by this dialect's rules; raise :class:`ArrInputError` naming ``field``."""
        return validate_session_id(value, field, self.api_version)

    def check_create(
        self, max_lease_time: Any, size: Any, models: Any, session_id: Any
    ) -> tuple[timedelta, str, list[str]]:
        """Check a create's inputs before any HTTP; return the lease, size and models."""
        return validate_lease(max_lease_time), validate_size(size), validate_models(models)

    # ---------------------------------------------------------------- requests

    @abstractmethod
    def sessions_url(self, suffix: str = "") -> str:
        """The account's session collection (``suffix`` goes before any query string)."""

    def session_url(self, session_id: Any, suffix: str = "") -> str:
        """One session's URL; the id is checked first, as it becomes part of the path."""
        return self.sessions_url(f"/{self.check_session_id(session_id)}{suffix}")

    @abstractmethod
    def create_request(self, max_lease_time: Any, size: Any, models: Any, session_id: Any) -> Request:
        """The create call."""

    @abstractmethod
    def get_request(self, session_id: str) -> Request:
        """The call that reads one session."""

    def list_request(self, url: str | None = None) -> Request:
        """The call that lists the account's active sessions (``url``: a next page)."""
        return Request("list_sessions", "GET", url or self.sessions_url(), resource=SESSION)

    @abstractmethod
    def update_request(self, session_id: str, max_lease_time: Any) -> Request:
        """The call that sets a session's lease."""

    @abstractmethod
    def stop_request(self, session_id: str) -> Request:
        """The call that stops a session."""

    # ---------------------------------------------------------------- answers

    @abstractmethod
    def parse_session(self, data: Any) -> SessionProperties:
        """A session object of this dialect; :class:`ArrResponseError` if malformed."""

    #: The field of the create answer that holds the new session's id.
    created_id_field: ClassVar[str]

    def created_session_id(self, request: Request, response: Response) -> str:
        """The new session's id: the one the client chose, else from the answer's body or ``Location``."""
        if request.resource_id is not None:
            return request.resource_id
        try:
            body = response.json(request.operation)
        except RemoteRenderingError:
            body = None
        key = self.created_id_field
        candidate = body.get(key) if isinstance(body, dict) else None
        if not candidate:
            location = response.headers.get("location") or response.headers.get("Location") or ""
            candidate = location.rstrip("/").rsplit("/", 1)[-1] if "/sessions/" in location else None
        try:
            return self.check_session_id(candidate, key)
        except ArrInputError:
            raise RemoteRenderingSessionMayExistError(
                request.operation,
                http_status=response.status,
                service_message=f"the service accepted the create but its answer has no valid {key}: "
                f"{mask_secrets(response.text[:200])!r}",
                ms_cv=response.ms_cv,
                hint=SESSION_MAY_EXIST,
            ) from None

    def properties(self, request: Request, response: Response) -> SessionProperties:
        """One session's properties from an answer; a malformed one is a :class:`RemoteRenderingError`."""
        return parse_answer(request.operation, response, self.parse_session)

    def session_page(
        self, response: Response, log: Logger | None = None
    ) -> tuple[list[SessionProperties], Request | None]:
        """One page of the session list (items it cannot read skipped), and the next page's request."""
        page, next_link = parse_page("list_sessions", response, "sessions", self.parse_session, log)
        return page, (self.list_request(self._same_origin(next_link)) if next_link else None)

    def _same_origin(self, link: str) -> str:
        """Resolve a ``@nextLink``; one pointing at another host is refused (the token must not go there)."""
        url = same_origin_link(self.settings.base_url, link)
        if url is None:
            raise RemoteRenderingError(
                "list_sessions", service_message=f"the service sent a @nextLink to another origin: {link!r}"
            )
        return url


class V1Dialect(V1Conversions, Dialect):
    """The ``v1`` session API (the seed's dialect)."""

    api_version = API_V1
    client_names_sessions = False
    created_id_field = "sessionId"

    def sessions_url(self, suffix: str = "") -> str:
        """``{base}/v1/accounts/{account}/sessions{suffix}``."""
        return f"{self.settings.base_url}/v1/accounts/{self.settings.account_id}/sessions{suffix}"

    def check_create(
        self, max_lease_time: Any, size: Any, models: Any, session_id: Any
    ) -> tuple[timedelta, str, list[str]]:
        """v1 picks session ids itself: a ``session_id`` is refused."""
        checked = super().check_create(max_lease_time, size, models, session_id)
        if session_id is not None:
            raise ArrInputError("session_id", "the v1 API chooses session ids itself; leave it unset")
        return checked

    def create_request(self, max_lease_time: Any, size: Any, models: Any, session_id: Any) -> Request:
        """``POST .../sessions/create``; not retry-safe (a blind retry could start a second VM)."""
        lease, size, models = self.check_create(max_lease_time, size, models, session_id)
        body: dict[str, Any] = {"maxLeaseTime": format_timespan(lease), "models": models, "size": size}
        return Request(
            "create_session",
            "POST",
            self.sessions_url("/create"),
            body,
            ok=frozenset({200, 201, 202}),
            retry_safe=False,
            resource=SESSION,
        )

    def get_request(self, session_id: str) -> Request:
        """``GET .../sessions/{id}/properties``."""
        return Request("get_session", "GET", self.session_url(session_id, "/properties"), resource=SESSION)

    def update_request(self, session_id: str, max_lease_time: Any) -> Request:
        """``PATCH .../sessions/{id}`` with a TimeSpan lease."""
        url = self.session_url(session_id)
        body = {"maxLeaseTime": format_timespan(validate_lease(max_lease_time))}
        return Request("update_session", "PATCH", url, body, ok=frozenset({200, 204}), resource=SESSION)

    def stop_request(self, session_id: str) -> Request:
        """``DELETE .../sessions/{id}``."""
        return Request("stop_session", "DELETE", self.session_url(session_id), ok=_STOP_OK, resource=SESSION)

    def parse_session(self, data: Any) -> SessionProperties:
        """A v1 ``properties`` object."""
        return SessionProperties.from_v1(data)


class Api2021Dialect(Api2021Conversions, Dialect):
    """The ``2021-01-01`` session API."""

    api_version = API_2021
    client_names_sessions = True
    created_id_field = "id"

    def sessions_url(self, suffix: str = "") -> str:
        """``{base}/accounts/{account}/sessions{suffix}?api-version=2021-01-01``."""
        settings = self.settings
        return f"{settings.base_url}/accounts/{settings.account_id}/sessions{suffix}?api-version={API_2021}"

    def check_create(
        self, max_lease_time: Any, size: Any, models: Any, session_id: Any
    ) -> tuple[timedelta, str, list[str]]:
        """Whole-minute leases, no models, a valid client id if one is given."""
        lease, size, models = super().check_create(max_lease_time, size, models, session_id)
        lease_minutes(lease)
        if models:
            raise ArrInputError("models", "the 2021-01-01 API does not preload models; leave it empty")
        if session_id is not None:
            self.check_session_id(session_id)
        return lease, size, models

    def create_request(self, max_lease_time: Any, size: Any, models: Any, session_id: Any) -> Request:
        """``PUT .../sessions/{id}``: idempotent for the same id and settings, so it may be retried."""
        lease, size, models = self.check_create(max_lease_time, size, models, session_id)
        session_id = session_id if session_id is not None else f"arr-{uuid.uuid4()}"
        body = {"maxLeaseTimeMinutes": lease_minutes(lease), "size": size.capitalize()}
        url = self.session_url(session_id)
        return Request(
            "create_session",
            "PUT",
            url,
            body,
            ok=frozenset({200, 201}),
            resource=SESSION,
            resource_id=session_id,
        )

    def get_request(self, session_id: str) -> Request:
        """``GET .../sessions/{id}``."""
        return Request("get_session", "GET", self.session_url(session_id), resource=SESSION)

    def update_request(self, session_id: str, max_lease_time: Any) -> Request:
        """``PATCH .../sessions/{id}`` with whole minutes."""
        url = self.session_url(session_id)
        body = {"maxLeaseTimeMinutes": lease_minutes(validate_lease(max_lease_time))}
        return Request("update_session", "PATCH", url, body, ok=frozenset({200, 204}), resource=SESSION)

    def stop_request(self, session_id: str) -> Request:
        """``POST .../sessions/{id}/:stop``."""
        url = self.session_url(session_id, "/:stop")
        return Request("stop_session", "POST", url, ok=_STOP_OK, resource=SESSION)

    def parse_session(self, data: Any) -> SessionProperties:
        """A 2021-01-01 session object."""
        return SessionProperties.from_2021(data)


_DIALECTS: dict[str, type[Dialect]] = {cls.api_version: cls for cls in (V1Dialect, Api2021Dialect)}


def dialect_for(settings: ConnectionSettings) -> Dialect:
    """The dialect object for a connection (``settings.api_version`` was checked with the settings)."""
    return _DIALECTS[settings.api_version](settings)
