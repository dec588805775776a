"""Issue 18, rule 4 in the models: a status text this client does not know is Unknown, never an end."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_arr.models import (
    ArrResponseError,
    ConversionProperties,
    ConversionStatus,
    SessionProperties,
    SessionStatus,
)

KNOWN_SESSION = {status.value.lower() for status in SessionStatus}
KNOWN_CONVERSION = {status.value.lower() for status in ConversionStatus} | {"success", "failure"}
#: What a newer service could add, spelled as it might be.
NEW_TEXTS = ["Hibernating", "Suspended", "Migrating", "READYING", "Starting2", "Stopped (by policy)", "ü"]


@given(st.text(min_size=1).filter(lambda text: text.strip().lower() not in KNOWN_SESSION | {""}))
def test_any_new_session_status_text_is_unknown_active_and_worth_waiting_on(text):
    status = SessionStatus.parse(text)
    assert status is SessionStatus.UNKNOWN
    assert not status.is_terminal
    assert not status.is_failed
    assert status.is_active  # billed as far as anyone knows: a stop decision still stops it
    assert status.may_become_ready


@given(st.text(min_size=1).filter(lambda text: text.strip().lower() not in KNOWN_CONVERSION | {""}))
def test_any_new_conversion_status_text_is_unknown_and_not_an_end(text):
    status = ConversionStatus.parse(text)
    assert status is ConversionStatus.UNKNOWN
    assert not status.is_terminal
    assert not status.is_failed


@pytest.mark.parametrize("text", NEW_TEXTS)
@pytest.mark.parametrize("dialect", ["v1", "2021-01-01"])
def test_a_session_keeps_the_text_it_reported_through_xcom(text, dialect):
    if dialect == "v1":
        data = {"sessionId": "s", "sessionStatus": text, "futureField": {"x": 1}}
        properties = SessionProperties.from_v1(data)
    else:
        properties = SessionProperties.from_2021({"id": "s", "status": text, "teraflops": 9.9, "new": []})
    assert properties.status is SessionStatus.UNKNOWN
    assert properties.status_text == text
    assert text in properties.describe()
    again = SessionProperties.from_dict(properties.to_dict())
    assert again == properties


@pytest.mark.parametrize("text", NEW_TEXTS)
def test_a_conversion_keeps_the_text_it_reported_through_xcom(text):
    properties = ConversionProperties.from_2021({"id": "c", "status": text, "settings": {}, "extra": 1})
    assert (properties.status, properties.status_text) == (ConversionStatus.UNKNOWN, text)
    assert ConversionProperties.from_dict(properties.to_dict()) == properties


@pytest.mark.parametrize("value", [None, "", "  ", 3, ["Ready"], {"status": "Ready"}])
def test_what_is_no_status_text_at_all_is_still_refused(value):
    with pytest.raises(ArrResponseError):
        SessionStatus.parse(value)
    with pytest.raises(ArrResponseError):
        ConversionStatus.parse(value)


def test_known_statuses_keep_their_meaning_and_no_raw_text():
    properties = SessionProperties.from_2021({"id": "s", "status": "stopped"})
    assert properties.status is SessionStatus.STOPPED
    assert properties.raw_status is None
    assert "raw_status" not in properties.to_dict()
    assert not SessionStatus.STOPPING.may_become_ready
