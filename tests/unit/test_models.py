from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_arr.models import (
    ArrInputError,
    ArrResponseError,
    BilledTime,
    SessionProperties,
    SessionStatus,
    format_timespan,
    parse_timespan,
    validate_lease,
    validate_models,
    validate_session_id,
    validate_size,
)

CONTRACT_EXAMPLE = {
    "message": None,
    "sessionElapsedTime": "00:00:01",
    "sessionHostname": (
        "5018fee8-817e-4366-9179-556af79a4240.remoterenderingvm.westeurope.mixedreality.azure.com"
    ),
    "sessionId": "e13d2c44-63e0-4591-991e-f9e05e599a93",
    "sessionMaxLeaseTime": "04:00:00",
    "sessionSize": "Standard",
    "sessionStatus": "Ready",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4:0:0", timedelta(hours=4)),
        ("04:00:00", timedelta(hours=4)),
        ("1.02:00:00", timedelta(hours=26)),
        ("00:00:01", timedelta(seconds=1)),
        ("0:30:15.5", timedelta(minutes=30, seconds=15, milliseconds=500)),
        ("00:00:00.1234567", timedelta(microseconds=123456)),
        ("-1:00:00", timedelta(hours=-1)),
        ("30:00:00", timedelta(hours=30)),
    ],
)
def test_parse_timespan(text, expected):
    assert parse_timespan(text) == expected


@pytest.mark.parametrize("text", ["4h", "", "1:2", "0:61:00", "0:00:60", "1.24:00:00", "a:b:c", "1:2:3:4"])
def test_parse_timespan_rejects(text):
    with pytest.raises(ArrInputError, match="lease"):
        parse_timespan(text, "lease")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(hours=4), "04:00:00"),
        (timedelta(hours=26), "1.02:00:00"),
        (timedelta(seconds=1), "00:00:01"),
        (timedelta(hours=-1), "-01:00:00"),
        (timedelta(seconds=1, microseconds=5), "00:00:01.0000050"),
    ],
)
def test_format_timespan(value, expected):
    assert format_timespan(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        timedelta(0),
        timedelta(seconds=1),
        timedelta(hours=23, minutes=59, seconds=59),
        timedelta(days=3, hours=1),
    ],
)
def test_timespan_round_trip(value):
    assert parse_timespan(format_timespan(value)) == value


@pytest.mark.parametrize("text", ["4:0:0", "04:00:00", "1.02:00:00", "0:0:1"])
def test_timespan_text_round_trip_is_canonical(text):
    canonical = format_timespan(parse_timespan(text))
    assert format_timespan(parse_timespan(canonical)) == canonical


def test_validate_lease_accepts_both_forms():
    assert validate_lease("4:0:0") == timedelta(hours=4)
    assert validate_lease(timedelta(hours=24)) == timedelta(hours=24)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("4h", "not a TimeSpan"),
        ("-1:00:00", "longer than zero"),
        ("0:61:00", "above 59"),
        ("", "is empty"),
        ("25:00:00", "at most 24:00:00"),
        ("1.00:00:01", "at most 24:00:00"),
        (timedelta(minutes=-5), "longer than zero"),
        (timedelta(0), "longer than zero"),
        (None, "got NoneType"),
        (3600, "got the number 3600, which has no unit"),
    ],
)
def test_validate_lease_rejects_with_field_name(value, problem):
    with pytest.raises(ArrInputError, match=problem) as error:
        validate_lease(value, "max_lease_time")
    assert str(error.value).startswith("max_lease_time: ")
    assert error.value.field == "max_lease_time"


def test_validate_size():
    assert validate_size("Standard") == "standard"
    assert validate_size("PREMIUM") == "premium"
    for bad in ("large", "", None, 1):
        with pytest.raises(ArrInputError, match="size: must be 'standard' or 'premium'"):
            validate_size(bad)


@pytest.mark.parametrize("bad", ["../../token", "", "abc", None, "e13d2c44-63e0-4591-991e-f9e05e599a9"])
def test_validate_session_id_rejects(bad):
    with pytest.raises(ArrInputError, match="session_id: must be a session GUID"):
        validate_session_id(bad)


def test_validate_session_id_normalises():
    assert (
        validate_session_id("E13D2C44-63E0-4591-991E-F9E05E599A93") == "e13d2c44-63e0-4591-991e-f9e05e599a93"
    )
    with pytest.raises(ArrInputError):
        validate_session_id("{e13d2c44-63e0-4591-991e-f9e05e599a93}")


def test_validate_models():
    assert validate_models(None) == []
    assert validate_models(("a", "b")) == ["a", "b"]
    with pytest.raises(ArrInputError, match="models: must be a list of strings"):
        validate_models("https://one")
    with pytest.raises(ArrInputError, match=r"models\[1\]: must be a non-empty string"):
        validate_models(["ok", 3])


@pytest.mark.parametrize("text", ["Starting", "ready", "STOPPED", "Stopping", "expired", "Error"])
def test_status_parses_case_insensitively(text):
    assert SessionStatus.parse(text).value.lower() == text.lower()


def test_a_status_text_this_client_does_not_know_is_unknown_and_no_status_is_a_clear_error():
    assert SessionStatus.parse("Hibernating") is SessionStatus.UNKNOWN
    with pytest.raises(ArrResponseError, match="sessionStatus"):
        SessionStatus.parse(None)


def test_status_flags():
    assert {s for s in SessionStatus if s.is_terminal} == {
        SessionStatus.STOPPED,
        SessionStatus.EXPIRED,
        SessionStatus.ERROR,
    }
    assert {s for s in SessionStatus if s.is_failed} == {SessionStatus.EXPIRED, SessionStatus.ERROR}
    assert SessionStatus.STARTING.is_active
    assert not SessionStatus.STOPPED.is_active
    assert str(SessionStatus.READY) == "Ready"


def test_properties_from_contract_example():
    props = SessionProperties.from_v1(CONTRACT_EXAMPLE)
    assert props.session_id == "e13d2c44-63e0-4591-991e-f9e05e599a93"
    assert props.status is SessionStatus.READY
    assert props.hostname.startswith("5018fee8-")
    assert props.max_lease_time == timedelta(hours=4)
    assert props.elapsed_time == timedelta(seconds=1)
    assert props.size == "Standard"
    assert props.message is None


def test_properties_without_size_and_hostname_while_starting():
    data = dict(CONTRACT_EXAMPLE, sessionStatus="Starting", sessionHostname=None)
    del data["sessionSize"]
    props = SessionProperties.from_v1(data)
    assert props.hostname is None
    assert props.size is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**CONTRACT_EXAMPLE, "sessionId": None}, "sessionId"),
        ({**CONTRACT_EXAMPLE, "sessionStatus": 7}, "sessionStatus"),
        ({**CONTRACT_EXAMPLE, "sessionMaxLeaseTime": "4 hours"}, "sessionMaxLeaseTime"),
        ({**CONTRACT_EXAMPLE, "sessionHostname": ["h"]}, "sessionHostname"),  # a number is read (rule 5)
        ([1, 2], "properties"),
    ],
)
def test_properties_malformed_names_the_field(data, field):
    with pytest.raises(ArrResponseError, match=field):
        SessionProperties.from_v1(data)


def test_properties_dict_round_trip_is_plain_json():
    import json

    props = SessionProperties.from_v1(CONTRACT_EXAMPLE)
    values = props.to_dict()
    assert json.loads(json.dumps(values)) == values
    assert values["status"] == "Ready"
    assert values["max_lease_time"] == "04:00:00"
    assert SessionProperties.from_dict(values) == props


# --- the ARR Inspector port, the Ready line, the billed time -------------------------------------------

READY_2021 = {  # a 2021-01-01 Ready session as recorded from the real service (fields from Mar 2021 on)
    "id": "rr-test-id",
    "creationTime": "2022-09-14T01:05:32.4773534+00:00",
    "arrInspectorPort": 64487,
    "handshakePort": 54639,
    "elapsedTimeMinutes": 0,
    "hostname": "rr-test-id.remoterenderingvm.westus2.mixedreality.azure.com",
    "maxLeaseTimeMinutes": 20,
    "size": "Standard",
    "status": "Ready",
    "teraflops": 8.1,
}


def test_a_ready_2021_session_links_to_its_arr_inspector():
    ready = SessionProperties.from_2021(READY_2021)

    assert ready.arr_inspector_port == 64487
    assert ready.arr_inspector_url == f"https://{READY_2021['hostname']}:64487"
    assert SessionProperties.from_dict(ready.to_dict()) == ready


@pytest.mark.parametrize("port", [None, 0])
def test_no_inspector_link_before_the_service_gives_a_port(port):
    starting = {**READY_2021, "status": "Starting", "arrInspectorPort": port, "hostname": None}
    assert SessionProperties.from_2021(starting).arr_inspector_url is None
    assert SessionProperties.from_v1(CONTRACT_EXAMPLE).arr_inspector_url is None  # v1 properties: no port


@pytest.mark.parametrize("port", [-1, 65536, "64487", 1.5, True])
def test_an_impossible_inspector_port_is_a_response_error_naming_the_field(port):
    with pytest.raises(ArrResponseError, match="arrInspectorPort"):
        SessionProperties.from_2021({**READY_2021, "arrInspectorPort": port})


def test_the_ready_line_names_the_host_and_the_starting_line_does_not():
    ready = SessionProperties.from_2021(READY_2021)
    starting = SessionProperties.from_2021({**READY_2021, "status": "Starting"})

    assert ready.describe() == (
        f"Session rr-test-id is Ready at {READY_2021['hostname']} (elapsed 00:00:00 of lease 00:20:00)"
    )
    assert starting.describe() == "Session rr-test-id is Starting (elapsed 00:00:00 of lease 00:20:00)"


def test_billed_time_reads_as_the_stop_log_line_and_as_xcom():
    ready_at = datetime(2026, 11, 30, 12, 3, 10, tzinfo=UTC)
    billed = BilledTime("s1", ready_at, ready_at + timedelta(minutes=41, seconds=12))

    assert billed.seconds == 2472
    assert billed.describe() == "Session s1 billed 00:41:12, Ready 12:03:10 → stopped 12:44:22 UTC"
    assert billed.to_dict() == {
        "session_id": "s1",
        "billed_seconds": 2472.0,
        "ready_at": "2026-11-30T12:03:10+00:00",
        "stopped_at": "2026-11-30T12:44:22+00:00",
    }
    # clocks of two processes may disagree by a little: never a negative bill
    assert BilledTime("s1", ready_at, ready_at - timedelta(seconds=1)).seconds == 0


@pytest.mark.parametrize("api_version", ["v1", "2021-01-01"])
@pytest.mark.parametrize("value", [12, 0, 1.5, 10**30, -3])
def test_a_session_id_rendered_as_a_number_is_refused_with_the_reason(api_version, value):
    from airflow_provider_arr.models import ArrInputError
    from airflow_provider_arr.models.common import validate_session_id

    with pytest.raises(ArrInputError, match=r"^session_id: got the number .*render_template_as_native_obj"):
        validate_session_id(value, api_version=api_version)


@pytest.mark.parametrize("api_version", ["v1", "2021-01-01"])
def test_a_session_guid_object_is_read_as_its_text(api_version):
    import uuid

    from airflow_provider_arr.models.common import validate_session_id

    guid = uuid.UUID("e13d2c44-63e0-4591-991e-f9e05e599a93")
    assert validate_session_id(guid, api_version=api_version) == str(guid)


@pytest.mark.parametrize("value", [3600, 1, 0, 2.5])
def test_a_lease_rendered_as_a_number_is_refused_with_the_reason(value):
    from airflow_provider_arr.models import ArrInputError, validate_lease

    with pytest.raises(ArrInputError, match=r"^max_lease_time: got the number .* no unit"):
        validate_lease(value)
