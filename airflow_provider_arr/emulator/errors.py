"""The errors of the emulated service's state; each dialect turns them into its own 4xx answers.

Nothing here knows a wire format: ``str(error)`` is the explanation, and the v1 and 2021-01-01
routes word and number it as their dialect does.
"""

from __future__ import annotations

from datetime import timedelta

from airflow_provider_arr.emulator.tokens import InvalidTokenError

__all__ = [
    "AuthenticationError",
    "EmulatorError",
    "InvalidLeaseError",
    "InvalidSizeError",
    "InvalidTokenError",
    "LeaseNotExtendedError",
    "SessionConflictError",
    "SessionEndedError",
    "SessionNotFoundError",
]


class EmulatorError(Exception):
    """Base of the errors a dialect turns into a 4xx answer; ``str(error)`` is the message."""


class AuthenticationError(EmulatorError):
    """The STS was asked for a token of an unknown account or with a wrong key."""


class SessionNotFoundError(EmulatorError):
    """No session with that id exists in that account."""


class SessionConflictError(EmulatorError):
    """A session with the requested id already exists, with other settings (or in another account)."""


class InvalidLeaseError(EmulatorError):
    """A lease is out of range: over 24 hours, negative, or zero where that is not allowed (no field name)."""


class InvalidSizeError(EmulatorError):
    """A size is neither standard nor premium (the message omits the field name)."""


class LeaseNotExtendedError(EmulatorError):
    """An update asked for a lease that is not larger than the current one.

    :param message: the explanation (without the field name).
    :param current: the session's lease before the call.
    :param requested: the lease the call asked for.
    """

    def __init__(self, message: str, current: timedelta, requested: timedelta) -> None:
        super().__init__(message)
        self.current = current
        self.requested = requested


class SessionEndedError(EmulatorError):
    """The session is already in a final state."""
