"""The one exception family the provider raises for failed service calls."""

from __future__ import annotations

from airflow_provider_arr._compat import AirflowException


class RemoteRenderingError(AirflowException):
    """A call to the Azure Remote Rendering service (or its token service) failed.

    The text names the operation, the HTTP status, the service's message and the ``MS-CV``
    correlation vector that the service team needs to trace the call.

    :param operation: the hook operation, e.g. ``create_session``.
    :param http_status: the HTTP status, or ``None`` when no answer came.
    :param service_message: what the service said, if anything.
    :param ms_cv: the ``MS-CV`` header of the answer, if any.
    :param hint: one sentence on what to do about it.
    :param code: the service's error code (``error.code`` of the answer), if it sent one.
    """

    def __init__(
        self,
        operation: str,
        *,
        http_status: int | None = None,
        service_message: str | None = None,
        ms_cv: str | None = None,
        hint: str | None = None,
        code: str | None = None,
    ) -> None:
        self.operation = operation
        self.code = code
        self.http_status = http_status
        self.service_message = service_message
        self.ms_cv = ms_cv
        self.hint = hint
        super().__init__(self._text())

    def _text(self) -> str:
        status = f"HTTP {self.http_status}" if self.http_status is not None else "no HTTP answer"
        message = self.service_message or "no message"
        text = f"{self.operation} failed: {status}; service message: {message}; MS-CV: {self.ms_cv or 'none'}"
        return f"{text}. {self.hint}" if self.hint else text

    def with_hint(self, hint: str, kind: type[RemoteRenderingError] | None = None) -> RemoteRenderingError:
        """
        A copy of this error that ends with ``hint`` (optionally of another kind of this family).

        :param hint: what the user should know or do.
        :param kind: the class of the copy; the same class by default.
        """
        return (kind or type(self))(
            self.operation,
            http_status=self.http_status,
            service_message=self.service_message,
            ms_cv=self.ms_cv,
            hint=hint,
            code=self.code,
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments need help to survive pickling (Airflow may pickle task exceptions).
        return (
            _rebuild,
            (
                type(self),
                self.operation,
                self.http_status,
                self.service_message,
                self.ms_cv,
                self.hint,
                self.code,
            ),
        )


class RemoteRenderingNotFoundError(RemoteRenderingError):
    """The service does not know the resource (HTTP 404)."""


class RemoteRenderingSessionNotFoundError(RemoteRenderingNotFoundError):
    """The service does not know the session (HTTP 404)."""


class RemoteRenderingSessionMayExistError(RemoteRenderingError):
    """A create call failed in a way where the service may still have started the session.

    It is not retried blindly: a second create could start a second billed VM.
    """


class RemoteRenderingConversionNotFoundError(RemoteRenderingNotFoundError):
    """The service does not know the conversion (HTTP 404)."""


class RemoteRenderingConversionMayExistError(RemoteRenderingError):
    """A v1 conversion create failed in a way where the service may still have started the conversion.

    It is not retried blindly: v1 cannot list conversions, so a second create would be a second one.
    """


def _rebuild(cls: type[RemoteRenderingError], *args: object) -> RemoteRenderingError:
    operation, http_status, service_message, ms_cv, hint, code = args
    return cls(
        str(operation),
        http_status=http_status,  # type: ignore[arg-type]
        service_message=service_message,  # type: ignore[arg-type]
        ms_cv=ms_cv,  # type: ignore[arg-type]
        hint=hint,  # type: ignore[arg-type]
        code=code,  # type: ignore[arg-type]
    )


class RemoteRenderingDeadlineError(RemoteRenderingError):
    """A call was abandoned, still in flight, at the deadline of the wait it served (issue 18, rule 3).

    A wait turns it into :class:`RemoteRenderingWaitTimeoutError` with what it last knew.
    """


class RemoteRenderingWaitError(AirflowException):
    """A wait for Ready ended without Ready; ``properties`` is the session's last known state.

    :param message: what happened.
    :param properties: the last :class:`~airflow_provider_arr.models.SessionProperties` read, if any.
    """

    def __init__(self, message: str, properties: object | None = None) -> None:
        super().__init__(message)
        self.properties = properties


class RemoteRenderingSessionNeverReadyError(RemoteRenderingWaitError):
    """The session is Stopping, Stopped, Expired or in Error: it will never become Ready."""


class RemoteRenderingWaitTimeoutError(RemoteRenderingWaitError):
    """The deadline passed while the session was still Starting."""


class RemoteRenderingWaitCancelledError(RemoteRenderingWaitError):
    """The task was killed while it waited."""


class RemoteRenderingWaitInterruptedError(RemoteRenderingWaitError):
    """The wait could not read the session, after the hook's retries: a failure worth a task retry.

    Unlike the outcomes of the session itself (never Ready, a deadline), ``soft_fail`` does not turn it
    into a skip, in any sensor mode: the session may well become Ready.
    """


class RemoteRenderingConversionFailedError(RemoteRenderingWaitError):
    """The conversion ended Failed or Cancelled; the text has the service's message and the ``MS-CV``."""
