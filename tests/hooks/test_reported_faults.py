"""Faults users of similar tools reported, as tables of cases (issue: reported faults, kinds 3 and 4).

Kind 3: no library or transport error text that may quote a header, URL query or body reaches a log
line, an exception or the UI; credentials are checked before use, naming the field and never the value;
errors no retry can fix are not retried.
Kind 4: every connection value, in each form Airflow can deliver it (the UI form's ``null``/``""``, JSON
numbers or strings, URI query strings), is normalised in one place; unset means the default.
"""

from __future__ import annotations

import json

import httpx
import pytest
import requests

from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.hooks.settings import ConnectionSettings
from airflow_provider_arr.hooks.transport import Request, TransportFailure, _is_local
from airflow_provider_arr.models import ArrInputError

ACCOUNT = "12345678-1234-1234-1234-123456789abc"
KEY = "c2VjcmV0LWFjY291bnQta2V5LXZhbHVl"
SECRET = "sv=2021&sig=TOPSECRETSIGNATURE"


def settings(
    extra=None, password=KEY, login=ACCOUNT, host="https://remoterendering.westus2.mixedreality.azure.com"
):
    return ConnectionSettings.from_connection("arr_x", host, login, password, extra or {})


# ------------------------------------------------------------------ kind 3: credentials, before use

BAD_KEYS = [
    pytest.param(KEY + "\n", id="trailing-newline"),
    pytest.param(" " + KEY, id="leading-space"),
    pytest.param(KEY + "\t", id="trailing-tab"),
    pytest.param(KEY[:5] + "\x00" + KEY[5:], id="nul-inside"),
    pytest.param(KEY[:5] + "\r\n" + KEY[5:], id="crlf-inside"),
]


@pytest.mark.parametrize("password", BAD_KEYS)
def test_a_malformed_key_is_refused_naming_the_field_never_the_value(password):
    with pytest.raises(ArrInputError) as caught:
        settings(password=password)
    text = str(caught.value)
    assert text.startswith("connection 'arr_x' password (account key): ")
    assert KEY[:8] not in text
    assert KEY[-8:] not in text


@pytest.mark.parametrize("login", [ACCOUNT + "\n", " " + ACCOUNT, ACCOUNT[:4] + "\x7f" + ACCOUNT[4:]])
def test_a_malformed_account_id_is_refused_naming_the_field(login):
    with pytest.raises(ArrInputError, match=r"^connection 'arr_x' login \(account id\): "):
        settings(login=login)


@pytest.mark.parametrize("password", BAD_KEYS)
def test_test_connection_with_a_malformed_key_sends_nothing_and_shows_no_key(emulator, monkeypatch, password):
    conn = emulator.connection()
    conn["password"] = password
    monkeypatch.setenv("AIRFLOW_CONN_ARR_DEFAULT", json.dumps(conn))
    ok, message = RemoteRenderingHook().test_connection()
    assert not ok
    assert "password (account key)" in message
    assert password.strip()[:8] not in message
    assert sum(emulator.state.request_counts.values()) == 0


# ------------------------------------------------------------------ kind 3: transport error texts

REQUEST = Request("get_session", "GET", f"https://arr.example.com/accounts/a/sessions/s?{SECRET}")
LIBRARY_ERRORS = [
    pytest.param(
        requests.exceptions.InvalidHeader(f"Invalid header value 'Bearer a:{KEY}\\n'"),
        True,
        id="invalid-header",
    ),
    pytest.param(ValueError(f"Invalid header value b'Bearer a:{KEY}\\n'"), False, id="valueerror-header"),
    pytest.param(
        requests.exceptions.ConnectionError(f"HTTPSConnectionPool: Max retries with url: /s?{SECRET}"),
        False,
        id="requests-connection",
    ),
    pytest.param(
        requests.exceptions.ReadTimeout(f"Read timed out. url=/s?{SECRET}"), False, id="requests-read-timeout"
    ),
    pytest.param(
        requests.exceptions.SSLError(f"certificate verify failed for /s?{SECRET}"), False, id="requests-ssl"
    ),
    pytest.param(httpx.ReadTimeout(f"timed out reading /s?{SECRET} {KEY}"), False, id="httpx-read-timeout"),
    pytest.param(
        httpx.ConnectError(f"connect failed for https://arr.example.com/s?{SECRET}"),
        False,
        id="httpx-connect",
    ),
    pytest.param(httpx.RemoteProtocolError(f"peer closed; body was {KEY}"), False, id="httpx-protocol"),
]


@pytest.mark.parametrize(("error", "local"), LIBRARY_ERRORS)
def test_a_transport_failure_says_what_happened_without_the_library_text(error, local):
    failure = TransportFailure(error, REQUEST, sent_nothing=False, local=_is_local(error))
    text = str(failure)
    assert text.startswith(type(error).__name__ + ": ")
    assert "arr.example.com" in text
    assert "TOPSECRET" not in text
    assert KEY not in text
    assert failure.local is local


def test_a_key_that_reaches_the_wire_unchecked_is_not_retried_or_shown(emulator, monkeypatch, debug_logs):
    """Even past the settings check (a key changed in memory), the header error stays local and quiet."""
    for name, value in emulator.env(retry_min_wait=0.01, retry_max_wait=0.02).items():
        monkeypatch.setenv(name, value)
    hook = RemoteRenderingHook()
    key = hook.settings.account_key
    object.__setattr__(hook.settings, "account_key", key + "\n")
    ok, message = hook.test_connection()
    assert not ok
    assert "could not be built" in message
    assert key not in message
    assert key not in debug_logs()
    assert "attempt" not in debug_logs()  # refused once, not retried
    assert sum(emulator.state.request_counts.values()) == 0


# ------------------------------------------------------------------ kind 4: connection values

DEFAULTS = {"connect_timeout": 10.0, "read_timeout": 30.0, "retry_limit": 6, "retry_max_time": 120.0}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param({"read_timeout": None}, {"read_timeout": 30.0}, id="form-null"),
        pytest.param({"read_timeout": ""}, {"read_timeout": 30.0}, id="form-empty"),
        pytest.param({"read_timeout": "  "}, {"read_timeout": 30.0}, id="form-blank"),
        pytest.param({"read_timeout": "60"}, {"read_timeout": 60.0}, id="string-number"),
        pytest.param({"read_timeout": 60}, {"read_timeout": 60.0}, id="json-number"),
        pytest.param({"retry_limit": "3.0"}, {"retry_limit": 3}, id="int-from-float-string"),
        pytest.param({"retry_limit": 3.0}, {"retry_limit": 3}, id="int-from-float"),
        pytest.param({"retry_limit": " 4 "}, {"retry_limit": 4}, id="int-with-blanks"),
        pytest.param({"retry_min_wait": "0"}, {"retry_min_wait": 0.0}, id="zero-min-wait"),
        pytest.param({"api_version": ""}, {"api_version": "v1"}, id="api-version-empty"),
        pytest.param({"api_version": None}, {"api_version": "v1"}, id="api-version-null"),
        pytest.param({"api_version": " 2021-01-01 "}, {"api_version": "2021-01-01"}, id="api-version-blanks"),
        pytest.param({"api_version": "V1"}, {"api_version": "v1"}, id="api-version-case"),
        pytest.param({"sts_url": ""}, {"sts_url": "https://sts.mixedreality.azure.com"}, id="sts-empty"),
        pytest.param({"region": ""}, {}, id="region-empty-with-host"),
    ],
)
def test_every_form_of_a_connection_value_is_normalised(extra, expected):
    result = settings(extra)
    for name, value in (DEFAULTS | expected).items():
        assert getattr(result, name) == value
        assert type(getattr(result, name)) is type(value)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        pytest.param({"retry_limit": 3.5}, "must be a whole number", id="fraction-for-int"),
        pytest.param({"retry_limit": "3.5"}, "must be a whole number", id="fraction-string-for-int"),
        pytest.param({"read_timeout": True}, "must be a number", id="boolean"),
        pytest.param({"read_timeout": "soon"}, "must be a number", id="word"),
        pytest.param({"read_timeout": "nan"}, "must be a finite number", id="nan"),
        pytest.param({"read_timeout": 0}, "must be greater than zero", id="zero"),
        pytest.param({"api_version": "2020"}, "must be one of", id="unknown-dialect"),
    ],
)
def test_a_bad_connection_value_names_the_extra(extra, problem):
    (name,) = extra
    with pytest.raises(ArrInputError, match=rf"^connection 'arr_x' extra '{name}': {problem}"):
        settings(extra)


def test_a_connection_uri_gives_every_extra_as_a_string(emulator, monkeypatch):
    # In Airflow's URI form the service URL goes percent-encoded in the host part.
    quote = requests.utils.quote
    extra = {"sts_url": emulator.url, "retry_limit": "3.0", "read_timeout": ""}
    host = quote(emulator.url, safe="")
    uri = f"azure-remote-rendering://{ACCOUNT}:{KEY}@{host}/?__extra__={quote(json.dumps(extra))}"
    monkeypatch.setenv("AIRFLOW_CONN_ARR_URI", uri)
    result = RemoteRenderingHook("arr_uri").settings
    assert result.base_url == emulator.url
    assert result.retry_limit == 3
    assert result.read_timeout == 30.0
