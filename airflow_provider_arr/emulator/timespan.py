"""The emulator's own .NET TimeSpan parser and formatter.

Deliberately independent of :mod:`airflow_provider_arr.models`: the emulator is the other side of
the wire, and a bug shared with the client would hide itself.
"""

from __future__ import annotations

import re
from datetime import timedelta

# ``[d.]h:m:s[.fraction]`` with ASCII digits only; .NET keeps at most 7 fraction digits (ticks).
_TIMESPAN = re.compile(
    r"(?:(?P<days>[0-9]{1,8})\.)?(?P<hours>[0-9]{1,2}):(?P<minutes>[0-9]{1,2}):(?P<seconds>[0-9]{1,2})"
    r"(?:\.(?P<fraction>[0-9]{1,7}))?"
)


def parse_timespan(text: str) -> timedelta:
    """Parse a .NET TimeSpan string such as ``"4:0:0"``, ``"04:00:00"`` or ``"1.02:00:00"``.

    :param text: the TimeSpan string; surrounding white space is ignored.
    :return: the duration (never negative: a sign is not accepted).
    :raises ValueError: if the text is not ``[d.]h:m:s[.fraction]`` or a component is out of range.
    """
    match = _TIMESPAN.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a TimeSpan of the form [d.]hh:mm:ss")
    hours, minutes, seconds = (int(match[name]) for name in ("hours", "minutes", "seconds"))
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"{text!r} has a component out of range (hours 0-23, minutes and seconds 0-59)")
    fraction = match["fraction"] or ""
    microseconds = int(fraction.ljust(7, "0")) // 10 if fraction else 0
    return timedelta(
        days=int(match["days"] or 0), hours=hours, minutes=minutes, seconds=seconds, microseconds=microseconds
    )


def format_timespan(value: timedelta) -> str:
    """Format a duration the way the service writes it: ``hh:mm:ss``, ``d.hh:mm:ss`` past a day.

    A non-zero sub-second part is written as seven fraction digits, like .NET's ``"c"`` format.

    :param value: the duration to format.
    :return: the TimeSpan string, e.g. ``"04:00:00"`` or ``"1.02:00:00"``.
    """
    total_microseconds = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if total_microseconds < 0 else ""
    total_seconds, microseconds = divmod(abs(total_microseconds), 1_000_000)
    days, rest = divmod(total_seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{days}." if days else sign
    text += f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    if microseconds:
        text += f".{microseconds * 10:07d}"
    return text
