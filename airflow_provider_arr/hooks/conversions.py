"""The asset-conversion calls: steps written once for both drivers, and the hook's public conversion calls.

A conversion is one create (a PUT under a client-chosen id on 2021-01-01, retried safely; a v1 POST that
is never sent twice blindly) and reads of its status. The service suggests when to read again with a
``Retry-After`` header on the status answer; :func:`wait_steps` honours it. SAS tokens are masked in the
task's logs before any request is built, and no error, log line or return value carries them.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_arr._compat import amask_secret, mask_secret
from airflow_provider_arr.exceptions import (
    RemoteRenderingConversionFailedError,
    RemoteRenderingDeadlineError,
    RemoteRenderingError,
    RemoteRenderingWaitTimeoutError,
)
from airflow_provider_arr.hooks.base import RemoteRenderingBaseHook

# The dialects, the policy, the transport and the conversion model are imported when a call runs (see
# ``base.py``).
if TYPE_CHECKING:
    from airflow_provider_arr.hooks.dialects import Dialect
    from airflow_provider_arr.hooks.steps import Steps
    from airflow_provider_arr.hooks.transport import Logger, Request, Response
    from airflow_provider_arr.models import ConversionProperties, ConversionSpec

__all__ = [
    "RemoteRenderingConversionCalls",
    "conversion_failed_message",
    "create_steps",
    "get_steps",
    "list_steps",
    "wait_steps",
]

#: What a wait that gives up says: no API version has a cancel call.
STILL_RUNNING = (
    "There is no call that cancels a conversion: it goes on in the service and is billed; "
    "wait for it again with its conversion_id, or let it finish."
)


def create_steps(dialect: Dialect, spec: ConversionSpec, conversion_id: str | None) -> Steps[str]:
    """Start a conversion; return its id."""
    request = dialect.conversion_create_request(spec, conversion_id)
    response = yield request
    assert response is not None
    return dialect.created_conversion_id(request, response)


def read_steps(dialect: Dialect, conversion_id: str) -> Steps[tuple[ConversionProperties, Response]]:
    """Read one conversion; return it and the answer (for its ``MS-CV`` and ``Retry-After``)."""
    request = dialect.conversion_get_request(conversion_id)
    response = yield request
    assert response is not None
    return dialect.conversion(request, response, conversion_id), response


def get_steps(dialect: Dialect, conversion_id: str) -> Steps[ConversionProperties]:
    """Read one conversion."""
    properties, _ = yield from read_steps(dialect, conversion_id)
    return properties


def list_steps(dialect: Dialect, log: Logger | None = None) -> Steps[list[ConversionProperties]]:
    """List the account's conversions (2021-01-01 only), following each ``@nextLink`` in a ``PageWalk``.

    :param log: where a warning about listed items this client cannot read (skipped) goes.
    """
    from airflow_provider_arr.hooks.paging import PageWalk

    conversions: list[ConversionProperties] = []
    first = dialect.conversion_list_request()
    walk = PageWalk("list_conversions", first.url)
    request: Request | None = first
    while request is not None:
        response = yield request
        assert response is not None
        page, next_link = dialect.conversion_page(response, log)
        conversions.extend(page)
        request = dialect.conversion_list_request(_same_origin(dialect, next_link)) if next_link else None
        if request is not None:
            walk.follow(request.url, response)
    return conversions


def _same_origin(dialect: Dialect, link: str) -> str:
    """Resolve a ``@nextLink``; one pointing at another host is refused (the token must not go there)."""
    from airflow_provider_arr.hooks.urls import same_origin_link

    url = same_origin_link(dialect.settings.base_url, link)
    if url is None:
        raise RemoteRenderingError(
            "list_conversions", service_message="the service sent a @nextLink to another origin"
        )
    return url


def conversion_failed_message(properties: ConversionProperties, ms_cv: str | None) -> str:
    """Why a conversion that ended without an asset failed: the service's message and the ``MS-CV``."""
    reason = properties.error_message or "the service gave no message"
    return (
        f"Conversion {properties.conversion_id} is {properties.status.value}: {reason} "
        f"(MS-CV of the answer: {ms_cv or 'none'})"
    )


def wait_steps(
    dialect: Dialect, log: Logger, conversion_id: str, poll_interval: float, end_time: float
) -> Steps[ConversionProperties]:
    """
    Read the conversion until it has ended; the one conversion wait of the package.

    Between two reads it pauses ``poll_interval`` seconds, or longer when the answer's ``Retry-After``
    asks for it, and never past ``end_time`` (a UNIX timestamp).

    :raises RemoteRenderingConversionFailedError: it ended Failed or Cancelled.
    :raises RemoteRenderingWaitTimeoutError: ``end_time`` passed while it ran (it goes on).
    """
    from airflow_provider_arr.hooks import policy
    from airflow_provider_arr.hooks.steps import Pause
    from airflow_provider_arr.models import ConversionStatus, unknown_status_note

    properties: ConversionProperties | None = None
    while True:
        try:
            properties, response = yield from read_steps(dialect, conversion_id)
        except RemoteRenderingDeadlineError as error:
            raise RemoteRenderingWaitTimeoutError(
                conversion_timeout_message(conversion_id, properties, error), properties
            ) from None
        log.info("Conversion %s is %s", conversion_id, properties.status_text)
        if properties.status == ConversionStatus.SUCCEEDED:
            return properties
        if properties.status.is_failed:
            raise RemoteRenderingConversionFailedError(
                conversion_failed_message(properties, response.ms_cv), properties
            )
        if properties.status == ConversionStatus.UNKNOWN:
            note = unknown_status_note("Conversion", conversion_id, properties.status_text, response.ms_cv)
            log.warning("%s", note)
        remaining = end_time - time.time()
        if remaining <= 0:
            raise RemoteRenderingWaitTimeoutError(
                conversion_timeout_message(conversion_id, properties), properties
            )
        hint = policy.retry_after(response.headers) or 0.0
        yield Pause(min(max(poll_interval, hint), remaining))


def conversion_timeout_message(
    conversion_id: str, properties: ConversionProperties | None, in_flight: Exception | None = None
) -> str:
    """Why a conversion wait timed out: its last status, the call in flight if one was, and what now."""
    text = (
        f"Conversion {conversion_id} was still {properties.status_text} when the wait timed out"
        if properties is not None
        else f"No status of conversion {conversion_id} was read before the wait timed out"
    )
    return (f"{text} ({in_flight})" if in_flight is not None else text) + ". " + STILL_RUNNING


class RemoteRenderingConversionCalls(RemoteRenderingBaseHook):
    """The hook's asset-conversion calls (mixed into ``RemoteRenderingHook``)."""

    def create_conversion(
        self,
        input_container_uri: str,
        input_asset_path: str,
        output_container_uri: str,
        *,
        input_blob_prefix: str | None = None,
        output_blob_prefix: str | None = None,
        output_asset_filename: str | None = None,
        input_sas: str | None = None,
        output_sas: str | None = None,
        conversion_id: str | None = None,
    ) -> str:
        """
        Start converting a model into an ``.arrAsset``; return the conversion's id.

        On ``2021-01-01`` the client names the conversion (``conversion_id``, a random one by default),
        so a retry of the same id and settings reconnects to it. On ``v1`` the service picks the id and
        a create whose answer was lost is not sent again
        (:class:`~airflow_provider_arr.exceptions.RemoteRenderingConversionMayExistError`).

        :param input_container_uri: ``https://<storage account>.blob.core.windows.net/<container>``.
        :param input_asset_path: the model's path below ``input_blob_prefix`` (.fbx, .gltf, .glb, ...).
        :param output_container_uri: the container the asset is written to.
        :param input_blob_prefix: only blobs under it are read (v1: ``folderPath``).
        :param output_blob_prefix: the virtual folder of the output.
        :param output_asset_filename: the output's name, ending in ``.arrAsset``; the input's by default.
        :param input_sas: a SAS token with read and list rights on the input container (a secret).
        :param output_sas: a SAS token with write rights on the output container (a secret).
        :param conversion_id: ``2021-01-01`` only: the id to give the conversion.
        """
        spec = self._spec(
            input_container_uri,
            input_asset_path,
            output_container_uri,
            input_blob_prefix,
            output_blob_prefix,
            output_asset_filename,
            input_sas,
            output_sas,
        )
        for secret in spec.secrets:
            mask_secret(secret)
        return self._run(create_steps(self.dialect, spec, conversion_id))

    async def acreate_conversion(
        self,
        input_container_uri: str,
        input_asset_path: str,
        output_container_uri: str,
        *,
        input_blob_prefix: str | None = None,
        output_blob_prefix: str | None = None,
        output_asset_filename: str | None = None,
        input_sas: str | None = None,
        output_sas: str | None = None,
        conversion_id: str | None = None,
    ) -> str:
        """Async :meth:`create_conversion`."""
        spec = self._spec(
            input_container_uri,
            input_asset_path,
            output_container_uri,
            input_blob_prefix,
            output_blob_prefix,
            output_asset_filename,
            input_sas,
            output_sas,
        )
        for secret in spec.secrets:
            await amask_secret(secret)
        return await self._arun(create_steps(await self.adialect(), spec, conversion_id))

    def get_conversion(self, conversion_id: str) -> ConversionProperties:
        """
        Return a conversion's status (and, once it Succeeded on 2021-01-01, the output asset's URI).

        :raises RemoteRenderingConversionNotFoundError: the service does not know it (HTTP 404).
        """
        return self._run(get_steps(self.dialect, conversion_id))

    async def aget_conversion(self, conversion_id: str) -> ConversionProperties:
        """Async :meth:`get_conversion`."""
        return await self._arun(get_steps(await self.adialect(), conversion_id))

    def list_conversions(self) -> list[ConversionProperties]:
        """Return the account's conversions, following every page (2021-01-01; v1 has no list call)."""
        return self._run(list_steps(self.dialect, self.log))

    async def alist_conversions(self) -> list[ConversionProperties]:
        """Async :meth:`list_conversions`."""
        return await self._arun(list_steps(await self.adialect(), self.log))

    def wait_for_conversion(
        self,
        conversion_id: str,
        poll_interval: float,
        end_time: float,
        cancel: threading.Event | None = None,
    ) -> ConversionProperties:
        """
        Block until the conversion has ended; return it once it Succeeded.

        :param poll_interval: seconds between two reads (longer when the service's ``Retry-After`` asks).
        :param end_time: the deadline as a UNIX timestamp.
        :param cancel: set it (from another thread, e.g. ``on_kill``) to end the wait at once.
        :raises RemoteRenderingConversionFailedError: it ended Failed or Cancelled.
        :raises RemoteRenderingWaitTimeoutError: the deadline passed; the conversion goes on.
        """
        steps = wait_steps(self.dialect, self.log, conversion_id, poll_interval, end_time)
        return self._run(steps, cancel, end_time)

    async def await_conversion(
        self, conversion_id: str, poll_interval: float, end_time: float
    ) -> ConversionProperties:
        """Async :meth:`wait_for_conversion` (cancel it by cancelling the task)."""
        steps = wait_steps(await self.adialect(), self.log, conversion_id, poll_interval, end_time)
        return await self._arun(steps, end_time)

    @staticmethod
    def _spec(*values: Any) -> ConversionSpec:
        from airflow_provider_arr.models import check_conversion

        (
            input_uri,
            input_path,
            output_uri,
            input_prefix,
            output_prefix,
            output_name,
            input_sas,
            output_sas,
        ) = values
        return check_conversion(
            input_uri,
            input_path,
            output_uri,
            input_blob_prefix=input_prefix,
            output_blob_prefix=output_prefix,
            output_asset_filename=output_name,
            input_sas=input_sas,
            output_sas=output_sas,
        )
