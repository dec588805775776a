"""A connection as the UI's form saves it: what the hook hands to Airflow's secrets masker, and what
"Test connection" answers, how fast, and in whose words (issue 14, items 2 and 3).
"""

from __future__ import annotations

import json
import logging
import time

import pytest
from airflow.sdk._shared.secrets_masker import _secrets_masker
from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker

from airflow_provider_arr import get_provider_info
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

SHORT_SECRET_WARNING = "Skipping masking for a secret as it's too short"
#: Airflow's transient id for a connection under test is random: the answer must not show it.
RANDOM_ID = "qzkxwvbn"


def form_extras() -> dict[str, object]:
    """The extras the connection form writes when the user only fills in the standard fields: every
    field's default (``"api_version": "v1"`` among them), ``null`` where there is none."""
    (conn_type,) = get_provider_info()["connection-types"]
    return {name: spec["schema"].get("default") for name, spec in conn_type["conn-fields"].items()}


@pytest.fixture
def masker_warnings(caplog):
    """Arm the masker's once-per-process "too short" warning; yield a reader of what it logged."""
    SecretsMasker._has_warned_short_secret = False
    caplog.set_level(logging.WARNING, logger="airflow.sdk._shared.secrets_masker.secrets_masker")
    yield lambda: [r.getMessage() for r in caplog.records if SHORT_SECRET_WARNING in r.getMessage()]
    SecretsMasker._has_warned_short_secret = False


def use_connection(monkeypatch, conn_id: str, connection: dict) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))


def test_the_form_writes_no_string_the_masker_would_call_too_short():
    # Airflow hands every extra string of a connection to its secrets masker (Connection.extra_dejson,
    # called by Airflow itself when a task fetches the connection), and the masker warns once per
    # process about any under five characters, whatever the extra's name: "v1" did.
    too_short = {
        name: value
        for name, value in form_extras().items()
        if isinstance(value, str) and len(value) < SecretsMasker.min_length_to_mask
    }
    assert too_short == {}
    # v1 is the form's empty choice, shown as "v1".
    (conn_type,) = get_provider_info()["connection-types"]
    schema = conn_type["conn-fields"]["api_version"]["schema"]
    assert schema["enum"] == [None, "2021-01-01"]
    assert schema["values_display"]["null"] == "v1"


def test_a_connection_saved_from_the_form_does_not_warn_of_a_short_secret(
    emulator, monkeypatch, masker_warnings
):
    connection = emulator.connection(**{**form_extras(), "sts_url": emulator.url})
    use_connection(monkeypatch, "arr_form", connection)
    hook = RemoteRenderingHook("arr_form")
    assert hook.settings.api_version == "v1"  # empty means v1
    hook.list_sessions()
    assert masker_warnings() == []


def test_v1_written_out_still_warns(emulator, monkeypatch, masker_warnings):
    # What the form used to save, and what the README warns of: the warning is Airflow's, raised while
    # it fetches the connection, before the hook sees it. (Also the control that the test above can fail.)
    connection = emulator.connection(**{**form_extras(), "sts_url": emulator.url, "api_version": "v1"})
    use_connection(monkeypatch, "arr_form", connection)
    hook = RemoteRenderingHook("arr_form")
    hook.list_sessions()
    assert len(masker_warnings()) == 1


async def test_the_triggerers_reading_does_not_warn_either(emulator, monkeypatch, masker_warnings):
    connection = emulator.connection(**{**form_extras(), "sts_url": emulator.url})
    use_connection(monkeypatch, "arr_form", connection)
    async with RemoteRenderingHook("arr_form") as hook:
        await hook.alist_sessions()
    assert masker_warnings() == []


def test_the_account_key_and_a_sensitive_extra_are_still_masked(emulator, monkeypatch):
    key_like = "an-extra-api-key-7f3a9c"
    connection = emulator.connection(**{**form_extras(), "sts_url": emulator.url, "api_key": key_like})
    use_connection(monkeypatch, "arr_form", connection)
    hook = RemoteRenderingHook("arr_form")
    hook.list_sessions()
    redacted = _secrets_masker().redact(f"key {emulator.account_key} extra {key_like} region westus2")
    assert emulator.account_key not in redacted
    assert key_like not in redacted
    assert "region westus2" in redacted  # not a secret, and never was one


# --- "Test connection" -----------------------------------------------------------------------------


def timed_test(monkeypatch, connection: dict) -> tuple[bool, str, float]:
    use_connection(monkeypatch, RANDOM_ID, connection)
    started = time.monotonic()
    ok, message = RemoteRenderingHook(RANDOM_ID).test_connection()
    return ok, message, time.monotonic() - started


def test_a_good_connection_passes(emulator, monkeypatch):
    ok, message, _ = timed_test(
        monkeypatch, emulator.connection(**{**form_extras(), "sts_url": emulator.url})
    )
    assert ok, message
    assert "Connected" in message


def test_the_token_service_left_on_azure_answers_at_once_and_says_what_to_set(emulator, monkeypatch):
    # The case: only the Service URL points at the emulator. A name that cannot resolve stands
    # for the token service here (no test may depend on the network).
    connection = emulator.connection(**form_extras())
    connection["extra"]["sts_url"] = "https://sts.unresolvable.invalid"
    ok, message, seconds = timed_test(monkeypatch, connection)
    assert not ok
    assert seconds < 10, f"the test took {seconds:.1f} s"
    assert "sts.unresolvable.invalid" in message
    assert "Token service URL" in message
    assert f"set the Token service URL to {emulator.url}" in message  # the emulator serves tokens too
    assert "attempt" not in message  # no retries, and no talk of a retry budget
    assert RANDOM_ID not in message


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("https://remoterendering.unresolvable.invalid", "remoterendering.unresolvable.invalid"),
        ("http://127.0.0.1:9", "127.0.0.1"),  # nothing listens on the discard port: refused
    ],
)
def test_an_unreachable_service_url_answers_at_once_and_names_the_field(emulator, monkeypatch, host, shown):
    connection = emulator.connection(**{**form_extras(), "sts_url": emulator.url})
    connection["host"] = host
    ok, message, seconds = timed_test(monkeypatch, connection)
    assert not ok
    assert seconds < 10, f"the test took {seconds:.1f} s"
    assert shown in message
    assert "Service URL" in message
    assert "attempt" not in message
    assert RANDOM_ID not in message


def test_a_wrong_key_says_so(emulator, monkeypatch):
    connection = emulator.connection(**{**form_extras(), "sts_url": emulator.url})
    connection["password"] = "not-the-key"
    ok, message, _ = timed_test(monkeypatch, connection)
    assert not ok
    assert "HTTP 401" in message
    assert "account key" in message
    assert "not-the-key" not in message
    assert RANDOM_ID not in message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"host": None}, "host"),
        ({"login": "not-a-guid"}, "login (account id)"),
        ({"extra": {"api_version": "v3"}}, "extra 'api_version'"),
    ],
)
def test_an_incomplete_connection_names_the_field_not_the_temporary_id(emulator, monkeypatch, change, field):
    connection = {**emulator.connection(sts_url=emulator.url), **change}
    ok, message, _ = timed_test(monkeypatch, connection)
    assert not ok
    assert message.startswith(field), message
    assert RANDOM_ID not in message
