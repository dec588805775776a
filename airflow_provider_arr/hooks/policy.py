"""The answer policy: what each HTTP status or transport failure means, and the retry settings.

It knows nothing of sessions or conversions: the :class:`ResourceKind` of a request says which
not-found error, hints and "may exist" sentence apply. Sync and async calls share it all, so they
differ only in the transport call.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

import tenacity

from airflow_provider_arr.exceptions import RemoteRenderingError, RemoteRenderingNotFoundError
from airflow_provider_arr.hooks.wire import mask_secrets, read_json
from airflow_provider_arr.models import ArrResponseError

if TYPE_CHECKING:
    from airflow_provider_arr.hooks.settings import ConnectionSettings
    from airflow_provider_arr.hooks.transport import Logger, Request, Response, TransportFailure

_T = TypeVar("_T")

#: The longest ``Retry-After`` honoured, in seconds; a longer one is cut to this.
RETRY_AFTER_MAX = 3600.0

#: Hints for statuses whose meaning does not depend on the resource.
_COMMON_HINTS = {
    401: "The service refused the access token; check the connection's account id and key.",
    403: "The token belongs to another account; check the connection's login (account id).",
}


@dataclass(frozen=True)
class ResourceKind:
    """What a request is about, as far as errors go.

    :param noun: ``session`` or ``conversion``.
    :param not_found: the error for HTTP 404.
    :param may_exist: the error for a create that may have acted though no good answer came.
    :param may_exist_hint: the sentence that says so and what to do.
    :param hints: one sentence per HTTP status on what it means for this resource (409, 422...).
    """

    noun: str
    not_found: type[RemoteRenderingNotFoundError]
    may_exist: type[RemoteRenderingError]
    may_exist_hint: str
    hints: Mapping[int, str] = field(default_factory=dict)


class TransientError(RemoteRenderingError):
    """A failure worth retrying: throttling, a server error or a network error."""

    def __init__(self, operation: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(operation, **kwargs)


class TokenRefused(Exception):
    """The service answered 401: the token is stale or revoked (fetch a new one once)."""


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Read ``Retry-After`` as seconds or as an HTTP date; ``None`` if absent or unreadable.

    The rule (issue 18, rule 6): ``Retry-After`` is the service's *lower* bound for the next attempt,
    never permission to skip the backoff (:func:`retry_kwargs` waits the longer of the two). An HTTP
    date is read against the answer's own ``Date`` header when it has a readable one, so a skewed
    local clock changes nothing; only without one is the local clock used. A negative or past value
    means "no lower bound" (0), a value that is not a finite number or a date is unreadable.

    :param headers: the answer's headers (a case-insensitive mapping, or a plain dict).
    """
    value = _header(headers, "Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        when = _http_date(value)
        if when is None:
            return None
        reference = _http_date(_header(headers, "Date")) or _local_now()
        seconds = (when - reference).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name.lower()) or headers.get(name)
    return value.strip() if isinstance(value, str) else None


def _http_date(value: str | None) -> datetime | None:
    """An HTTP date (RFC 9110: IMF-fixdate or the obsolete forms) as an aware datetime, or ``None``."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _local_now() -> datetime:
    """The local clock, only for a ``Retry-After`` date that comes without a ``Date`` header."""
    return datetime.now(UTC)


def service_error(
    text: str, secrets: Iterable[str | None] = (), quote_text: bool = True
) -> tuple[str | None, str | None]:
    """The service's ``(message, code)`` from an error body of either dialect, or plain text.

    The message reads ``"<code>: <message>"`` when both are given; either may come as a JSON number.
    Whatever is returned has been through :func:`~airflow_provider_arr.hooks.wire.mask_secrets`.

    :param text: the answer's body.
    :param secrets: values to mask besides anything shaped like a token (the key, the token in use).
    :param quote_text: whether a body that is not a JSON error may be quoted (never for a token answer).
    """
    message, code = _service_error(text, quote_text)
    return (
        mask_secrets(message, secrets) if message is not None else None,
        mask_secrets(code, secrets) if code is not None else None,
    )


def _service_error(text: str, quote_text: bool) -> tuple[str | None, str | None]:
    raw = text.strip() if quote_text else ""
    try:
        body = read_json(text)
    except (ValueError, RecursionError):
        return raw[:500] or None, None
    if body is None:
        return None, None
    if isinstance(body, dict):
        error = body.get("error", body)
        if _is_scalar(error):
            return str(error), None
        if isinstance(error, dict):
            message, code = error.get("message", error.get("Message")), error.get("code", error.get("Code"))
            message = str(message) if _is_scalar(message) and message != "" else None
            code = str(code) if _is_scalar(code) and code != "" else None
            if message and code:
                return f"{code}: {message}", code
            if message or code:
                return message or code, code
    return raw[:500] or None, None


def _is_scalar(value: Any) -> bool:
    """A JSON string or number (a message or code the service sent as a number is read as text)."""
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def check(request: Request, response: Response, secrets: Iterable[str | None] = ()) -> Response:
    """Map an answer to itself (a success) or to the right error; 401 is the caller's business.

    :param request: the request.
    :param response: its answer.
    :param secrets: what the service's message must not show (the credential the request carried).
    """
    if response.status in request.ok:
        return response
    status = response.status
    message, code = service_error(response.text, secrets, quote_text=not request.sts)
    error_args: dict[str, Any] = {
        "http_status": status,
        "service_message": message,
        "ms_cv": response.ms_cv,
        "code": code,
    }
    kind = request.resource
    if status == 429 or status == 503:
        # The service did not act on the request: safe to retry, create included.
        raise TransientError(request.operation, retry_after=retry_after(response.headers), **error_args)
    if status >= 500 or status == 408:
        if not request.retry_safe and kind is not None:
            raise kind.may_exist(request.operation, hint=kind.may_exist_hint, **error_args)
        raise TransientError(request.operation, retry_after=retry_after(response.headers), **error_args)
    if status == 404 and kind is not None:
        raise kind.not_found(request.operation, **error_args)
    hint = (kind.hints.get(status) if kind is not None else None) or _COMMON_HINTS.get(status)
    raise RemoteRenderingError(request.operation, hint=hint, **error_args)


def check_token_answer(request: Request, response: Response, secrets: Iterable[str | None] = ()) -> Response:
    """An answer of the token service: a 401 there means the account id or key is wrong.

    Its body is never quoted, only a JSON error message in it (masked): it may hold the access token.
    """
    if response.status == 401:
        message, code = service_error(response.text, secrets, quote_text=False)
        raise RemoteRenderingError(
            request.operation,
            http_status=401,
            service_message=message,
            ms_cv=response.ms_cv,
            code=code,
            hint="The token service refused the credentials: check your account id (login) and account key "
            "(password) in the connection.",
        )
    return check(request, response, secrets)


def check_api_answer(request: Request, response: Response, secrets: Iterable[str | None] = ()) -> Response:
    """An answer of the service's API: a 401 means the token must be fetched again (once)."""
    if response.status == 401:
        raise TokenRefused()
    return check(request, response, secrets)


def transport_error(request: Request, failure: TransportFailure) -> RemoteRenderingError:
    """Map a failure to get an answer; a create that may have reached the service is not retried."""
    kind = request.resource
    if failure.local:  # deterministic: the same values fail the same way on every attempt
        return RemoteRenderingError(
            request.operation,
            service_message=str(failure),
            hint="Check the connection's values (account id, account key, URLs): no request was sent.",
        )
    if not request.retry_safe and not failure.sent_nothing and kind is not None:
        return kind.may_exist(request.operation, service_message=str(failure), hint=kind.may_exist_hint)
    return TransientError(request.operation, service_message=str(failure))


def _give_up(retry_state: tenacity.RetryCallState) -> Any:
    """Re-raise the last error with a sentence on how long we tried."""
    error = retry_state.outcome.exception() if retry_state.outcome else None
    assert isinstance(error, RemoteRenderingError)
    hint = (
        f"Gave up after {retry_state.attempt_number} attempt(s) in {retry_state.seconds_since_start:.1f} s "
        "(connection extras retry_limit / retry_max_time set the budget)."
    )
    # A give-up is final: the public type, so an outer retry loop (a token fetch inside a call) stops too.
    final_type = RemoteRenderingError if type(error) is TransientError else type(error)
    raise error.with_hint(hint, final_type) from error


def backoff(settings: ConnectionSettings, attempt: int, after: float | None, elapsed: float) -> float:
    """The wait before the next attempt: jittered exponential backoff, never shorter than ``Retry-After``.

    Rule 6, "backoff always backs off": ``after`` (the service's ``Retry-After``) only lengthens the
    wait, so ``Retry-After: 0`` or a past date still backs off. The wait is capped by what is left of
    the call's budget (``retry_max_time``): a lower bound longer than that ends in one last attempt at
    the budget's end rather than in giving up at once.

    :param settings: the connection's retry settings.
    :param attempt: the number of the attempt that just failed (1 for the first).
    :param after: the service's ``Retry-After`` in seconds, if it gave one.
    :param elapsed: seconds since the call's first attempt began.
    """
    ceiling = min(settings.retry_max_wait, settings.retry_min_wait * 2 ** (attempt - 1))
    wait = random.uniform(ceiling / 2, ceiling)
    if after is not None:
        wait = max(wait, after)
    return max(min(wait, settings.retry_max_time - elapsed), 0.0)


class _StopWhenBudgetSpent(tenacity.stop.stop_base):
    """Stop after ``retry_limit`` attempts, or when the next attempt would start after the budget."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        if retry_state.attempt_number >= self.settings.retry_limit:
            return True
        elapsed = retry_state.seconds_since_start or 0.0
        # A wait capped at the budget's end may still be taken (1 ms of float slack); nothing later.
        return elapsed >= self.settings.retry_max_time or (
            elapsed + retry_state.upcoming_sleep > self.settings.retry_max_time + 1e-3
        )


def retry_kwargs(settings: ConnectionSettings, request: Request, log: Logger) -> dict[str, Any]:
    """Tenacity's arguments for one call: :func:`backoff` (which honours ``Retry-After``), and a budget."""

    def wait(retry_state: tenacity.RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        after = getattr(error, "retry_after", None)
        return backoff(
            settings,
            retry_state.attempt_number,
            float(after) if after is not None else None,
            retry_state.seconds_since_start or 0.0,
        )

    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        sleep = retry_state.next_action.sleep if retry_state.next_action else 0.0
        log.warning(  # the error's text starts with "<operation> failed: ..."
            "%s (attempt %d of at most %d; retrying in %.1f s)",
            error,
            retry_state.attempt_number,
            settings.retry_limit,
            sleep,
        )

    return {
        "stop": _StopWhenBudgetSpent(settings),
        "wait": wait,
        "retry": tenacity.retry_if_exception_type(TransientError),
        "before_sleep": before_sleep,
        "retry_error_callback": _give_up,
        "reraise": True,
    }


def parse_answer(operation: str, response: Response, parse: Callable[[Any], _T]) -> _T:
    """An answer's JSON through ``parse``; a malformed answer is a :class:`RemoteRenderingError`."""
    try:
        return parse(response.json(operation))
    except ArrResponseError as error:
        raise RemoteRenderingError(
            operation, http_status=response.status, service_message=str(error), ms_cv=response.ms_cv
        ) from None
