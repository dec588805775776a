"""Rule 5 of issue 18, lenient standard parsing: encodings, content types, empty bodies, numbers as text.

And its other half: no error quotes a token answer's body, and what an error quotes is masked. Against the
emulator on a loopback socket, through both transports (``requests`` and ``httpx`` decode differently).
"""

from __future__ import annotations

import asyncio
import codecs
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_arr.exceptions import RemoteRenderingError
from airflow_provider_arr.hooks import wire
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook, clear_token_cache

SESSION = "e13d2c44-63e0-4591-991e-f9e05e599a93"
MESSAGE = "Démarrage — 起動中 ✓"
PROPERTIES = {
    "message": MESSAGE,
    "sessionElapsedTime": "00:00:01",
    "sessionHostname": "h.remoterenderingvm.westus2.mixedreality.azure.com",
    "sessionId": SESSION,
    "sessionMaxLeaseTime": "04:00:00",
    "sessionSize": "Standard",
    "sessionStatus": "Ready",
}

ENCODINGS = {
    "utf-8": lambda text: text.encode("utf-8"),
    "utf-8-bom": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "utf-16-le-bom": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16-be-bom": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    "utf-32-le-bom": lambda text: codecs.BOM_UTF32_LE + text.encode("utf-32-le"),
}
CONTENT_TYPES = [
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    'application/json; charset="utf-8"',
    "application/json; charset=utf8",
    "application/json; charset=iso-8859-1",
    "application/json",
    "text/plain",
    "application/octet-stream",
    "",
]


def run(mode: str, call):
    """``call(hook)`` on the sync hook, or its async twin (``call`` returns a coroutine then)."""
    if mode == "sync":
        return call(RemoteRenderingHook())

    async def main():
        async with RemoteRenderingHook() as hook:
            return await call(hook)

    return asyncio.run(main())


def list_sessions(mode: str):
    if mode == "sync":
        return run(mode, lambda hook: hook.list_sessions())
    return run(mode, lambda hook: hook.alist_sessions())


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_a_json_answer_is_read_in_any_unicode_encoding_and_content_type(
    arr_conn, mode, encoding, content_type
):
    body = ENCODINGS[encoding](json.dumps(PROPERTIES, ensure_ascii=False))
    arr_conn.state.add_fault("properties", 200, body=body, headers={"Content-Type": content_type})
    if mode == "sync":
        props = run(mode, lambda hook: hook.get_session(SESSION))
    else:
        props = run(mode, lambda hook: hook.aget_session(SESSION))
    assert props.session_id == SESSION
    assert props.message == MESSAGE


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "text/plain", ""])
@pytest.mark.parametrize("encoding", ["utf-8-bom", "utf-16-le-bom"])
def test_a_token_answer_is_read_in_any_unicode_encoding(arr_conn, mode, encoding, content_type):
    token = RemoteRenderingHook().get_token()
    clear_token_cache()
    body = ENCODINGS[encoding](json.dumps({"AccessToken": token}))
    arr_conn.state.add_fault("token", 200, body=body, headers={"Content-Type": content_type})
    assert list_sessions(mode) == []
    assert arr_conn.state.request_counts["token"] == 2


@pytest.mark.parametrize("body", ["", "\r\n", "  ", "\ufeff", "\ufeff\n"])
@pytest.mark.parametrize("operation", ["create", "update", "stop"])
def test_an_empty_body_is_read_where_the_call_allows_one(arr_conn, operation, body):
    """A v1 create (its id in ``Location``), update and stop: blanks or a lone BOM are an empty body."""
    hook = RemoteRenderingHook()
    session_id = hook.create_session("1:0:0") if operation != "create" else SESSION
    headers = {"Location": f"accounts/{arr_conn.account_id}/sessions/{SESSION}"}
    status = {"create": 202, "update": 200, "stop": 204 if body == "" else 200}[operation]
    arr_conn.state.add_fault(operation, status, body=body.encode("utf-8"), headers=headers)
    if operation == "create":
        assert hook.create_session("1:0:0") == SESSION
    elif operation == "update":
        hook.update_session(session_id, "2:0:0")
    else:
        hook.stop_session(session_id)


@pytest.mark.parametrize(
    ("fields", "check"),
    [
        ({"id": 12345}, lambda props: props.session_id == "12345"),
        ({"id": 12345.0}, lambda props: props.session_id == "12345"),
        ({"hostname": 42}, lambda props: props.hostname == "42"),
    ],
    ids=["id-int", "id-whole-float", "hostname-int"],
)
def test_a_number_where_the_contract_has_a_string_is_read_as_its_text(emulator, monkeypatch, fields, check):
    for name, value in emulator.env(api_version="2021-01-01").items():
        monkeypatch.setenv(name, value)
    session = {"id": "12345", "size": "Standard", "status": "Ready", "maxLeaseTimeMinutes": 60, **fields}
    emulator.state.add_fault("properties", 200, body=session)
    assert check(RemoteRenderingHook().get_session("12345"))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": {"code": 409, "message": "taken"}}, "409: taken"),
        ({"error": {"code": "Conflict", "message": 7}}, "Conflict: 7"),
        ({"error": {"code": 409}}, "409"),
        ({"error": 42}, "service message: 42;"),
        ({"error": {"code": 0.5, "message": "half"}}, "0.5: half"),
    ],
)
def test_an_error_code_or_message_given_as_a_number_is_read(arr_conn, body, expected):
    arr_conn.state.add_fault("list", 400, body=body)
    with pytest.raises(RemoteRenderingError, match="HTTP 400") as raised:
        RemoteRenderingHook().list_sessions()
    assert expected in str(raised.value)


JWT = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjIxNDc0ODM2NDcsInNlY3JldCI6InRvcC1zZWNyZXQtdG9rZW4ifQ.c2lnbmF0dXJl"


def token_bodies(key: str) -> list:
    """Token answers that must not be quoted: each holds the token or the key somewhere."""
    return [
        (200, '{"AccessToken": "' + JWT),  # cut short
        (200, "\ufeff\ufeff{'AccessToken': '" + JWT + "'}"),  # two BOMs, single quotes: not JSON
        (200, "<html>AccessToken=" + JWT + "</html>"),
        (200, "AccessToken: " + JWT),
        (200, json.dumps({"AccessToken": JWT})[:-2]),
        (400, "Bearer 00000000-0000-0000-0000-000000000000:" + key + " is not valid"),
        (401, f"account key {key} refused"),
        (403, "<p>denied " + JWT + "</p>"),
        (500, "Internal error while signing " + JWT),
        (401, json.dumps({"error": {"code": "Unauthorized", "message": f"key {key} refused"}})),
        (400, json.dumps({"error": f"token {JWT} unusable"})),
    ]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("case", range(11))
def test_no_error_quotes_a_token_answer(arr_conn, debug_logs, mode, case):
    key = arr_conn.account_key
    status, body = token_bodies(key)[case]
    arr_conn.state.add_fault("token", status, body=body, count=10)
    with pytest.raises(RemoteRenderingError, match="get_token failed") as raised:
        list_sessions(mode)
    shown = str(raised.value) + repr(raised.value.__dict__) + debug_logs()
    for secret in (JWT, key, *JWT.split(".")):
        assert secret not in shown


@pytest.mark.parametrize(
    "message",
    [
        "the token " + JWT + " has expired",
        "Authorization: Bearer " + JWT,
        "bad header 'Bearer abc.def-ghi_jkl'",
        '{"accessToken": "opaque-secret-value"}',
    ],
)
def test_a_service_message_is_quoted_only_after_masking(arr_conn, message):
    arr_conn.state.add_fault("list", 400, body={"error": {"code": "BadRequest", "message": message}})
    with pytest.raises(RemoteRenderingError, match="HTTP 400") as raised:
        RemoteRenderingHook().list_sessions()
    shown = str(raised.value)
    assert "***" in shown
    for secret in (JWT, "abc.def-ghi_jkl", "opaque-secret-value"):
        assert secret not in shown


@given(st.text(), st.sampled_from(list(ENCODINGS)), st.sampled_from(CONTENT_TYPES))
def test_any_text_survives_any_unicode_encoding_and_declared_charset(text, encoding, content_type):
    """A property of the decoding: a JSON string's value comes back whatever the encoding and header."""
    body = ENCODINGS[encoding](json.dumps({"message": text}, ensure_ascii=False))
    assert wire.read_json(wire.decode_body(body, content_type)) == {"message": text}
