"""The base of the hook: connection settings, dialect, tokens, the two drivers and the transports.

A call that takes several requests is written once, as a generator of steps (:data:`Steps`): it yields a
:class:`~airflow_provider_arr.hooks.transport.Request` (and receives its answer, or has the call's error
thrown in) or a :class:`Pause`. :meth:`RemoteRenderingBaseHook._run` drives it with the sync transport,
:meth:`RemoteRenderingBaseHook._arun` with the async one; retries, tokens and error mapping are the same.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseHook

from airflow_provider_arr._compat import amask_secret, mask_secret
from airflow_provider_arr.exceptions import (
    RemoteRenderingError,
    RemoteRenderingWaitCancelledError,
)

# What runs a call (the policy, the dialects, the transports, the token cache, Entra ID) is imported
# when a hook first works, not with this module: a DAG file that imports an operator, or this hook,
# pays nothing for it (tests/unit/test_parse_cost.py keeps it so).
if TYPE_CHECKING:
    from airflow_provider_arr.hooks.dialects import Dialect
    from airflow_provider_arr.hooks.settings import ConnectionSettings
    from airflow_provider_arr.hooks.steps import Outcome, Steps
    from airflow_provider_arr.hooks.transport import Request, Response

T = TypeVar("T")


class RemoteRenderingBaseHook(BaseHook):
    """Settings, dialect, token and transport for one Airflow connection; the public calls build on it.

    :param arr_conn_id: the Airflow connection id.
    """

    conn_name_attr = "arr_conn_id"
    default_conn_name = "arr_default"
    conn_type = "azure_remote_rendering"
    hook_name = "Azure Remote Rendering"

    def __init__(self, arr_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        from airflow_provider_arr.hooks.transport import AsyncTransport, SyncTransport

        super().__init__(**kwargs)
        self.arr_conn_id = arr_conn_id
        self._settings: ConnectionSettings | None = None
        self._dialect: Dialect | None = None
        self._sync = SyncTransport(self.log)
        self._async = AsyncTransport(self.log)

    # ---------------------------------------------------------------- connection and token

    @property
    def settings(self) -> ConnectionSettings:
        """The connection's validated settings (read once, synchronously)."""
        if self._settings is None:
            from airflow_provider_arr.hooks.settings import check_raw_extra

            conn = self.get_connection(self.arr_conn_id)
            if conn.password:
                mask_secret(conn.password)
            check_raw_extra(self.arr_conn_id, conn.extra)
            settings = self._load_settings(conn.host, conn.login, conn.password, conn.extra_dejson)
            if settings.client_secret:
                mask_secret(settings.client_secret)
            self._settings = settings
        return self._settings

    async def asettings(self) -> ConnectionSettings:
        """The connection's validated settings, read without blocking the event loop (triggerer)."""
        if self._settings is None:
            from airflow.providers.common.compat.connection import (
                get_async_connection,
                get_async_extra_dejson,
            )

            from airflow_provider_arr.hooks.settings import check_raw_extra

            conn = await get_async_connection(self.arr_conn_id, self)
            check_raw_extra(self.arr_conn_id, conn.extra)
            extra = await get_async_extra_dejson(conn)
            if conn.password:
                await amask_secret(conn.password)
            settings = self._load_settings(conn.host, conn.login, conn.password, extra)
            if settings.client_secret:
                await amask_secret(settings.client_secret)
            self._settings = settings
        return self._settings

    def _load_settings(
        self, host: str | None, login: str | None, password: str | None, extra: Any
    ) -> ConnectionSettings:
        from airflow_provider_arr.hooks import entra
        from airflow_provider_arr.hooks.settings import ConnectionSettings

        settings = ConnectionSettings.from_connection(self.arr_conn_id, host, login, password, extra or {})
        entra.log_sign_in_once(self.arr_conn_id, settings, self.log)
        return settings

    def log_to(self, logger: Any) -> None:
        """Log through ``logger`` from now on (a trigger's or a task's logger, so lines land in its log)."""
        from airflow_provider_arr.hooks.transport import AsyncTransport, SyncTransport

        self._log = logger
        self._sync = SyncTransport(logger)
        self._async = AsyncTransport(logger)

    @property
    def dialect(self) -> Dialect:
        """The connection's API dialect (URLs, bodies, answers and id rules of its ``api_version``)."""
        if self._dialect is None:
            from airflow_provider_arr.hooks.dialects import dialect_for

            self._dialect = dialect_for(self.settings)
        return self._dialect

    async def adialect(self) -> Dialect:
        """Async :attr:`dialect`."""
        if self._dialect is None:
            from airflow_provider_arr.hooks.dialects import dialect_for

            self._dialect = dialect_for(await self.asettings())
        return self._dialect

    def get_token(self) -> str:
        """Return a valid STS access token: the process-wide cache's, or the one fetch in flight's.

        Concurrent callers for one credential share one fetch and its failure (``tokens.py``); this
        caller waits for another's fetch at most its own ``retry_max_time``.
        """
        from airflow_provider_arr.hooks.tokens import token_cache

        settings = self.settings
        key = settings.token_cache_key
        return token_cache.get(key) or token_cache.fetch_once(
            key, lambda: self._fetch_token(key), settings.retry_max_time
        )

    async def aget_token(self) -> str:
        """Async :meth:`get_token`; tasks on any event loop and threads share the same fetch."""
        from airflow_provider_arr.hooks.tokens import token_cache

        settings = await self.asettings()
        key = settings.token_cache_key
        return token_cache.get(key) or await token_cache.afetch_once(
            key, lambda: self._afetch_token(key), settings.retry_max_time
        )

    def _fetch_token(self, key: tuple[str, str, str]) -> str:
        token = self._store_token(key, self._call(self._token_request()))
        mask_secret(token)
        return token

    async def _afetch_token(self, key: tuple[str, str, str]) -> str:
        token = self._store_token(key, await self._acall(self._token_request()))
        await amask_secret(token)
        return token

    def _token_request(self) -> Request:
        from airflow_provider_arr.hooks.transport import Request

        assert self._settings is not None
        url = f"{self._settings.sts_url}/accounts/{self._settings.account_id}/token"
        return Request("get_token", "GET", url, sts=True)

    def _store_token(self, key: tuple[str, str, str], response: Response) -> str:
        from airflow_provider_arr.hooks.tokens import token_cache

        body = response.json("get_token", secret=True)
        token = body.get("AccessToken") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RemoteRenderingError(
                "get_token",
                http_status=response.status,
                service_message="the answer has no 'AccessToken'",
                ms_cv=response.ms_cv,
            )
        token_cache.put(key, token)
        return token

    # ---------------------------------------------------------------- the drivers

    def _run(
        self, steps: Steps[T], cancel: threading.Event | None = None, end_time: float | None = None
    ) -> T:
        """Run a call's steps with the sync transport.

        :param cancel: once set, a pause or a request in flight ends at once (the wait is cancelled).
        :param end_time: the deadline of the wait the steps are (UNIX time): a request still in flight
            then is abandoned (see :func:`abandon_at`) and :class:`RemoteRenderingDeadlineError` is
            thrown into the steps.
        """
        from airflow_provider_arr.hooks.steps import Finished, Pause, advance

        outcome: Outcome = (None, None)
        while not isinstance(step := advance(steps, outcome), Finished):
            outcome = (None, None)
            if not isinstance(step, Pause):
                outcome = self._bounded_outcome(step, cancel, end_time)
            elif cancel is None:
                time.sleep(step.seconds)
            elif cancel.wait(step.seconds):
                steps.close()
                raise RemoteRenderingWaitCancelledError("The task was killed while it waited")
        return step.value

    async def _arun(self, steps: Steps[T], end_time: float | None = None) -> T:
        """Run a call's steps with the async transport (cancel it by cancelling the task).

        :param end_time: as for :meth:`_run`: a request in flight then is cancelled.
        """
        from airflow_provider_arr.hooks.steps import Finished, Pause, abandon_at, advance, deadline_error

        outcome: Outcome = (None, None)
        while not isinstance(step := advance(steps, outcome), Finished):
            outcome = (None, None)
            if isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
            elif end_time is None:
                outcome = await self._aoutcome(step)
            else:
                try:
                    async with asyncio.timeout(abandon_at(end_time) - time.time()):
                        outcome = await self._aoutcome(step)
                except TimeoutError:
                    outcome = (None, deadline_error(step, end_time))
        return step.value

    def _bounded_outcome(
        self, request: Request, cancel: threading.Event | None, end_time: float | None
    ) -> Outcome:
        """One request; abandoned at the deadline or on ``cancel`` if it is still in flight.

        A blocking ``requests`` call cannot be interrupted (and its retries may sleep): it runs on a daemon
        thread, which is left to finish on its own, its answer unused.
        """
        from airflow_provider_arr.hooks.steps import _SLICE, abandon_at, deadline_error

        if cancel is None and end_time is None:
            return self._outcome(request)
        result: list[Outcome] = []
        done = threading.Event()

        def work() -> None:
            try:
                result.append(self._outcome(request))
            finally:
                done.set()

        threading.Thread(target=work, name=f"arr-{request.operation}", daemon=True).start()
        give_up = abandon_at(end_time) if end_time is not None else None
        while not done.wait(_SLICE if give_up is None else min(_SLICE, max(give_up - time.time(), 0.0))):
            if cancel is not None and cancel.is_set():
                raise RemoteRenderingWaitCancelledError("The task was killed while it waited")
            if give_up is not None and time.time() >= give_up:
                assert end_time is not None
                return None, deadline_error(request, end_time)
        return result[0]

    def _outcome(self, request: Request) -> Outcome:
        try:
            return self._call(request), None
        except RemoteRenderingError as failure:
            return None, failure

    async def _aoutcome(self, request: Request) -> Outcome:
        try:
            return await self._acall(request), None
        except RemoteRenderingError as failure:
            return None, failure

    def _call(self, request: Request) -> Response:
        """One request with the retry policy, a token (refreshed once on 401) and the error mapping."""
        import tenacity

        from airflow_provider_arr.hooks import policy

        settings = self.settings
        retrying = tenacity.Retrying(**policy.retry_kwargs(settings, request, self.log))
        try:
            return retrying(self._attempt, request, settings)
        except RemoteRenderingError as error:
            raise _final_error(error, request, settings) from None

    async def _acall(self, request: Request) -> Response:
        """Async :meth:`_call`."""
        import tenacity

        from airflow_provider_arr.hooks import policy

        settings = await self.asettings()
        retrying = tenacity.AsyncRetrying(**policy.retry_kwargs(settings, request, self.log))
        try:
            return await retrying(self._aattempt, request, settings)
        except RemoteRenderingError as error:
            raise _final_error(error, request, settings) from None

    def _attempt(self, request: Request, settings: ConnectionSettings) -> Response:
        from airflow_provider_arr.hooks import entra, policy
        from airflow_provider_arr.hooks.tokens import token_cache

        if request.sts:
            credential = settings.account_key_credential
            if credential is None:  # Entra ID: the first leg, once per attempt (a refusal is final)
                credential = entra.entra_token(settings)
                mask_secret(credential)
            return policy.check_token_answer(
                request, self._send(request, credential), (credential, settings.account_key)
            )
        token = self.get_token()
        try:
            return policy.check_api_answer(request, self._send(request, token), (token,))
        except policy.TokenRefused:
            token_cache.invalidate(settings.token_cache_key, token)
            token = self.get_token()
            return policy.check(request, self._send(request, token), (token,))

    async def _aattempt(self, request: Request, settings: ConnectionSettings) -> Response:
        from airflow_provider_arr.hooks import entra, policy
        from airflow_provider_arr.hooks.tokens import token_cache

        if request.sts:
            credential = settings.account_key_credential
            if credential is None:  # Entra ID: an aio credential made on this loop, closed after
                credential = await entra.aentra_token(settings)
                await amask_secret(credential)
            return policy.check_token_answer(
                request, await self._asend(request, credential), (credential, settings.account_key)
            )
        token = await self.aget_token()
        try:
            return policy.check_api_answer(request, await self._asend(request, token), (token,))
        except policy.TokenRefused:
            token_cache.invalidate(settings.token_cache_key, token)
            token = await self.aget_token()
            return policy.check(request, await self._asend(request, token), (token,))

    def _send(self, request: Request, credential: str) -> Response:
        from airflow_provider_arr.hooks import policy
        from airflow_provider_arr.hooks.transport import TransportFailure

        try:
            return self._sync.send(request, credential, self.settings)
        except TransportFailure as failure:
            raise policy.transport_error(request, failure) from None

    async def _asend(self, request: Request, credential: str) -> Response:
        from airflow_provider_arr.hooks import policy
        from airflow_provider_arr.hooks.transport import TransportFailure

        try:
            return await self._async.send(request, credential, await self.asettings())
        except TransportFailure as failure:
            raise policy.transport_error(request, failure) from None

    # ---------------------------------------------------------------- lifetime of the clients

    def close(self) -> None:
        """Close the pooled sync HTTP session."""
        self._sync.close()

    async def aclose(self) -> None:
        """Release the shared async HTTP client (closed with its last user) and close the sync session."""
        await self._async.close()
        self.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _final_error(
    error: RemoteRenderingError, request: Request, settings: ConnectionSettings
) -> RemoteRenderingError:
    """The error a call raises: with an Entra ID hint where one fits, its traceback cut at the retries.

    tenacity's and the policy's frames tell a user nothing: the message says what failed and what to fix.
    """
    if settings.uses_entra:
        from airflow_provider_arr.hooks import entra

        error = entra.explained(error, request, settings)
    return error.with_traceback(None)
