"""The base of the session operators: the connection id, a lazily built hook, and a quiet stop."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_arr._compat import AirflowFailException
from airflow_provider_arr.models import ArrInputError

if TYPE_CHECKING:
    from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook


class RemoteRenderingBaseOperator(BaseOperator):
    """Shared bits: the connection id, a lazily built hook, and input checks that fail without retries.

    :param arr_conn_id: the Airflow connection id of the ARR account. (templated)
    """

    template_fields: Sequence[str] = ("arr_conn_id",)

    def __init__(self, *, arr_conn_id: str = "arr_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arr_conn_id = arr_conn_id

    @cached_property
    def hook(self) -> RemoteRenderingHook:
        """The hook for :attr:`arr_conn_id` (imported lazily to keep DAG parsing cheap)."""
        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

        return RemoteRenderingHook(arr_conn_id=self.arr_conn_id)

    def _checked_session_id(self, value: Any) -> str:
        """The session id, checked by the rules of the connection's API dialect, before any HTTP."""
        try:
            return self.hook.dialect.check_session_id(value)
        except ArrInputError as error:
            raise AirflowFailException(str(error)) from None

    def _stop_quietly(self, session_id: str, reason: str) -> None:
        """Stop a session this task created, best effort: log failures instead of raising them."""
        from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

        # A fresh hook: on_kill runs in another thread or a signal handler, maybe while self.hook is busy.
        with RemoteRenderingHook(arr_conn_id=self.arr_conn_id) as hook:
            try:
                self.log.warning("Stopping session %s because %s", session_id, reason)
                hook.stop_session_if_active(session_id)
            except Exception:
                self.log.exception(
                    "Could not stop session %s; the teardown or the session janitor will stop it", session_id
                )
