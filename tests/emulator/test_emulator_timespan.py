from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_arr.emulator.timespan import format_timespan, parse_timespan


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4:0:0", timedelta(hours=4)),
        ("04:00:00", timedelta(hours=4)),
        ("1.02:00:00", timedelta(hours=26)),
        ("0:30:5", timedelta(minutes=30, seconds=5)),
        ("00:00:01.5", timedelta(seconds=1.5)),
        ("00:00:00.1234567", timedelta(microseconds=123456)),
        (" 4:0:0 ", timedelta(hours=4)),
        ("0:0:0", timedelta(0)),
    ],
)
def test_parse_accepts_dotnet_timespans(text, expected):
    assert parse_timespan(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "4h",
        "-1:00:00",
        "0:61:00",
        "0:0:60",
        "24:00:00",
        "",
        "4:00",
        "4",
        "1:2:3:4",
        "1.2.3:0:0",
        "٤:0:0",
        "PT4H",
    ],
)
def test_parse_rejects_anything_else(text):
    with pytest.raises(ValueError, match=r"TimeSpan|range"):
        parse_timespan(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(0), "00:00:00"),
        (timedelta(hours=4), "04:00:00"),
        (timedelta(seconds=1), "00:00:01"),
        (timedelta(hours=26), "1.02:00:00"),
        (timedelta(days=1), "1.00:00:00"),
        (timedelta(seconds=1.5), "00:00:01.5000000"),
    ],
)
def test_format_writes_zero_padded_service_form(value, expected):
    assert format_timespan(value) == expected
    assert parse_timespan(expected) == value
