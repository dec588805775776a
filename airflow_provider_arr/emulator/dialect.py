"""What both session API dialects do with every call, written once: faults, the token, the errors.

A :class:`Dialect` names what differs between v1 and 2021-01-01 (how an error answer looks, how the
state's errors map to statuses, what else a request must carry, what every answer adds); its
:meth:`Dialect.serve` runs a route's action in the order both follow.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from airflow_provider_arr.emulator.errors import EmulatorError
from airflow_provider_arr.emulator.inbound import check_access
from airflow_provider_arr.emulator.responses import ErrorShape, serve_with_faults
from airflow_provider_arr.emulator.state import EmulatorState

__all__ = ["Dialect"]


def _accept(request: Request) -> None:
    """A request needs nothing besides its token."""


def _unchanged(response: Response, request: Request) -> Response:
    """An answer goes out as the route made it."""
    return response


@dataclass(frozen=True)
class Dialect:
    """One dialect of the session API, as far as serving a call goes.

    :param errors: how the dialect's error answers look (its own and injected faults' alike).
    :param error_answer: maps an error of the state (or of the request) to the dialect's answer.
    :param check_request: refuses a request the dialect cannot serve by raising an
        :class:`~airflow_provider_arr.emulator.errors.EmulatorError` (before the token is checked).
    :param finish: completes every answer, faults included, e.g. with the dialect's own headers.
    :param conversion: the conversion routes' copy: a token needs the Administrator role (if it has one).
    """

    errors: ErrorShape
    error_answer: Callable[[EmulatorError], Response]
    check_request: Callable[[Request], None] = _accept
    finish: Callable[[Response, Request], Response] = _unchanged
    conversion: bool = False

    async def serve(
        self,
        state: EmulatorState,
        operation: str,
        request: Request,
        account_id: str,
        action: Callable[[], Awaitable[Response]],
    ) -> Response:
        """Count the call, apply a fault, check the request and the token, run the action, map its errors.

        :param state: the emulator state.
        :param operation: the operation's name, for counts and faults (see ``EmulatorState.add_fault``).
        :param request: the incoming call.
        :param account_id: the account named in the path.
        :param action: does the work and returns the answer; may raise ``EmulatorError``.
        """

        async def answer() -> Response:
            try:
                self.check_request(request)
                denied = check_access(state, request, account_id, self.conversion)
                if denied is not None:
                    return self.errors.response(denied.status, denied.message, denied.headers)
                return await action()
            except EmulatorError as error:
                return self.error_answer(error)

        response = await serve_with_faults(state, operation, answer, self.errors)
        return self.finish(response, request)
