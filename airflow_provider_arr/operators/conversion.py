"""The operator that converts a model (FBX, glTF/GLB, point clouds) into an ``.arrAsset``.

On ``2021-01-01`` the conversion is named after the task instance, so an Airflow retry reconnects to
the conversion its earlier try started (a PUT of the same id and settings answers 200) instead of
converting, and billing, twice. On ``v1`` the service names conversions and cannot list them, so a
create whose answer was lost is not sent again. SAS tokens are masked in every log as soon as they
are rendered, and never pushed to XCom.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_arr._compat import AirflowException, AirflowFailException, conf
from airflow_provider_arr.exceptions import (
    RemoteRenderingConversionFailedError,
    RemoteRenderingConversionNotFoundError,
    RemoteRenderingWaitCancelledError,
    RemoteRenderingWaitTimeoutError,
)
from airflow_provider_arr.links import RemoteRenderingConvertedAssetLink, note_link
from airflow_provider_arr.models import ArrInputError
from airflow_provider_arr.operators._create import task_instance_session_id
from airflow_provider_arr.operators.base import RemoteRenderingBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_arr.models import ConversionSpec

__all__ = ["MAX_FAILED_PREDECESSORS", "RemoteRenderingConvertAssetOperator", "task_instance_conversion_id"]

#: On 2021-01-01, how many failed conversions of a task's id may precede the one it starts.
MAX_FAILED_PREDECESSORS = 20
#: The template fields that hold secrets: masked once rendered.
SECRET_FIELDS = ("input_sas", "output_sas")


def task_instance_conversion_id(context: Context) -> str:
    """A ``2021-01-01`` conversion id that is the same for every try of one task instance."""
    return task_instance_session_id(context)


class RemoteRenderingConvertAssetOperator(RemoteRenderingBaseOperator):
    """Convert a model in Azure Blob Storage into an ``.arrAsset`` that a session can load.

    Returns the output asset's URI when it waits (``wait_for_completion``), else the conversion id; the
    conversion id is also pushed as XCom ``conversion_id``. Bad input (a container URI that is not an
    https blob-container URI, an empty or unsupported input path, an output name without ``.arrAsset``)
    fails before any HTTP, naming the field. A Failed conversion fails the task, without retries, with
    the service's message and the ``MS-CV``. A wait that gives up leaves the conversion running (there
    is no cancel call; it is billed); on 2021-01-01 a retry reconnects to it.

    :param input_container_uri: ``https://<storage account>.blob.core.windows.net/<container>``. (templated)
    :param input_asset_path: the model's path below ``input_blob_prefix``. (templated)
    :param output_container_uri: the container the asset is written to. (templated)
    :param input_blob_prefix: only blobs under it are read. (templated)
    :param output_blob_prefix: the output's virtual folder. (templated)
    :param output_asset_filename: the output's name, ending in ``.arrAsset``. (templated)
    :param input_sas: SAS token (read, list) of the input container; a secret, masked. (templated)
    :param output_sas: SAS token (write) of the output container; a secret, masked. (templated)
    :param conversion_id: ``2021-01-01`` only: the id; derived from the task instance by default.
        (templated)
    :param wait_for_completion: wait until the conversion has Succeeded.
    :param deferrable: wait in the triggerer instead of the worker.
    :param poll_interval: seconds between two status reads (longer when the service asks).
    :param timeout: seconds to wait for the conversion before failing (it goes on).
    """

    template_fields: Sequence[str] = (
        "input_container_uri",
        "input_asset_path",
        "output_container_uri",
        "input_blob_prefix",
        "output_blob_prefix",
        "output_asset_filename",
        "input_sas",
        "output_sas",
        "conversion_id",
        "arr_conn_id",
    )
    operator_extra_links = (RemoteRenderingConvertedAssetLink(),)
    ui_color = "#cfe8fc"

    def __init__(
        self,
        *,
        input_container_uri: str,
        input_asset_path: str,
        output_container_uri: str,
        input_blob_prefix: str | None = None,
        output_blob_prefix: str | None = None,
        output_asset_filename: str | None = None,
        input_sas: str | None = None,
        output_sas: str | None = None,
        conversion_id: str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10.0,
        timeout: float = 3 * 3600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input_container_uri = input_container_uri
        self.input_asset_path = input_asset_path
        self.output_container_uri = output_container_uri
        self.input_blob_prefix = input_blob_prefix
        self.output_blob_prefix = output_blob_prefix
        self.output_asset_filename = output_asset_filename
        self.input_sas = input_sas
        self.output_sas = output_sas
        self.conversion_id = conversion_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = float(poll_interval)
        self.timeout = float(timeout)
        self._killed: threading.Event | None = None

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render, then mask the SAS tokens before the rendered fields are stored or logged."""
        super().render_template_fields(context, jinja_env)
        from airflow_provider_arr._compat import mask_secret

        for name in SECRET_FIELDS:
            value = getattr(self, name, None)
            if isinstance(value, str) and value:
                mask_secret(value)
                mask_secret(value.lstrip("?"))

    def _spec(self) -> ConversionSpec:
        """Every input checked before any HTTP; bad input fails the task without retries."""
        from airflow_provider_arr.models import check_conversion

        try:
            spec = check_conversion(
                self.input_container_uri,
                self.input_asset_path,
                self.output_container_uri,
                input_blob_prefix=self.input_blob_prefix,
                output_blob_prefix=self.output_blob_prefix,
                output_asset_filename=self.output_asset_filename,
                input_sas=self.input_sas,
                output_sas=self.output_sas,
            )
            if self.conversion_id is not None:
                if not self.hook.dialect.client_names_sessions:
                    raise ArrInputError(
                        "conversion_id", "the v1 API chooses conversion ids itself; leave it unset"
                    )
                self.hook.dialect.check_conversion_id(self.conversion_id)
        except ArrInputError as error:
            raise AirflowFailException(str(error)) from None
        return spec

    def _create(self, spec: ConversionSpec, conversion_id: str | None) -> str:
        try:
            return self.hook.create_conversion(
                spec.input_container.uri,
                spec.input_asset_path,
                spec.output_container.uri,
                input_blob_prefix=spec.input_blob_prefix,
                output_blob_prefix=spec.output_blob_prefix,
                output_asset_filename=spec.output_asset_filename,
                input_sas=spec.input_sas,
                output_sas=spec.output_sas,
                conversion_id=conversion_id,
            )
        except ArrInputError as error:
            raise AirflowFailException(str(error)) from None

    def _create_or_reconnect(self, spec: ConversionSpec, context: Context) -> str:
        """2021-01-01: start the conversion under a retry-stable id, or reconnect to it."""
        base = self.conversion_id or task_instance_conversion_id(context)
        for attempt in range(MAX_FAILED_PREDECESSORS + 1):
            suffix = "" if attempt == 0 else f"-{attempt + 1}"
            candidate = base[: 256 - len(suffix)] + suffix
            try:
                existing = self.hook.get_conversion(candidate)
            except RemoteRenderingConversionNotFoundError:
                conversion_id = self._create(spec, candidate)
                self.log.info("Started conversion %s of %s", conversion_id, spec.input_asset_path)
                return conversion_id
            if existing.status.is_failed:
                self.log.info("Conversion %s is %s; using a new id", candidate, existing.status.value)
                continue
            # The same id and settings answer 200: this checks the settings are this task's.
            conversion_id = self._create(spec, candidate)
            self.log.info(
                "Conversion %s (started by an earlier try of this task) is %s; reconnecting to it",
                candidate,
                existing.status.value,
            )
            return conversion_id
        raise AirflowFailException(
            f"conversion_id: {MAX_FAILED_PREDECESSORS + 1} conversions named after {base!r} have failed; "
            "pass a conversion_id of your own"
        )

    def execute(self, context: Context) -> str:
        spec = self._spec()
        if self.hook.dialect.client_names_sessions:
            conversion_id = self._create_or_reconnect(spec, context)
        else:
            conversion_id = self._create(spec, None)
            self.log.info("Started conversion %s of %s", conversion_id, spec.input_asset_path)
        context["ti"].xcom_push(key="conversion_id", value=conversion_id)
        if not self.wait_for_completion:
            return conversion_id
        if self.deferrable:
            from airflow_provider_arr.sensors.base import wait_deadline
            from airflow_provider_arr.triggers.conversion import RemoteRenderingConversionTrigger

            trigger = RemoteRenderingConversionTrigger(
                conversion_id=conversion_id,
                arr_conn_id=self.arr_conn_id,
                poll_interval=self.poll_interval,
                end_time=wait_deadline(self.timeout, self.execution_timeout),
            )
            self.defer(trigger=trigger, method_name="execute_complete", timeout=None)
        killed = self._killed = threading.Event()
        try:
            done = self.hook.wait_for_conversion(
                conversion_id, self.poll_interval, time.time() + self.timeout, killed
            )
        except RemoteRenderingConversionFailedError as error:
            raise AirflowFailException(str(error)) from None
        except RemoteRenderingWaitTimeoutError as error:
            raise AirflowException(str(error)) from None
        except RemoteRenderingWaitCancelledError:
            raise AirflowException(
                f"Task killed while waiting for conversion {conversion_id}; it goes on in the service "
                "and is billed (there is no cancel call)"
            ) from None
        finally:
            self._killed = None
        return self._finish(done.output_asset_uri, spec)

    def _finish(self, reported: str | None, spec: ConversionSpec) -> str:
        """The output asset's URI: as the service reports it (2021-01-01), or computed (v1)."""
        uri = reported or spec.output_asset_uri
        self.log.info("The asset is at %s", uri)
        note_link(self, RemoteRenderingConvertedAssetLink, uri)
        return uri

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Resume after the trigger: the output asset's URI once Succeeded, else fail."""
        from airflow_provider_arr.triggers.conversion import validate_conversion_event

        event = validate_conversion_event(event)
        if event["status"] == "failed":
            raise AirflowFailException(event["message"])
        if event["status"] != "success":
            raise AirflowException(event["message"])
        self.log.info("%s", event["message"])
        return self._finish(event["properties"].get("output_asset_uri"), self._spec())

    def on_kill(self) -> None:
        """End a wait at once; the conversion itself goes on (there is no cancel call)."""
        if self._killed is not None:
            self._killed.set()
            self.log.warning("Killed while waiting; the conversion goes on in the service and is billed")
