"""The hook's layers as a maintainer relies on them: one dialect object per API version, and an answer
policy that takes the resource's errors from the request, not from a session-only table."""

from __future__ import annotations

import pytest

from airflow_provider_arr.exceptions import (
    RemoteRenderingError,
    RemoteRenderingNotFoundError,
    RemoteRenderingSessionMayExistError,
    RemoteRenderingSessionNotFoundError,
)
from airflow_provider_arr.hooks import policy
from airflow_provider_arr.hooks.dialects import SESSION, Api2021Dialect, V1Dialect
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.hooks.transport import Request, Response

UNKNOWN = "00000000-1111-2222-3333-444444444444"


@pytest.mark.parametrize(("api_version", "dialect"), [("v1", V1Dialect), ("2021-01-01", Api2021Dialect)])
def test_the_connection_chooses_one_dialect_object(emulator, monkeypatch, api_version, dialect):
    for name, value in emulator.env(api_version=api_version).items():
        monkeypatch.setenv(name, value)
    hook = RemoteRenderingHook()
    assert type(hook.dialect) is dialect
    assert hook.dialect is hook.dialect  # chosen once


@pytest.mark.parametrize("api_version", ["v1", "2021-01-01"])
def test_a_missing_session_is_the_generic_not_found_error_too(emulator, monkeypatch, api_version):
    for name, value in emulator.env(api_version=api_version, retry_limit=1).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(RemoteRenderingSessionNotFoundError) as caught:
        RemoteRenderingHook().get_session(UNKNOWN)
    assert isinstance(caught.value, RemoteRenderingNotFoundError)
    assert caught.value.http_status == 404


KIND = policy.ResourceKind(
    noun="widget",
    not_found=type("WidgetNotFound", (RemoteRenderingNotFoundError,), {}),
    may_exist=type("WidgetMayExist", (RemoteRenderingError,), {}),
    may_exist_hint="The widget may exist.",
    hints={409: "Widgets conflict."},
)


def answer(status: int, body: str = "", **headers: str) -> Response:
    return Response(status, headers, body)


def test_the_policy_takes_the_not_found_error_and_hints_from_the_request():
    request = Request("get_widget", "GET", "https://example.invalid/w/1", resource=KIND)
    with pytest.raises(KIND.not_found):
        policy.check(request, answer(404))
    with pytest.raises(RemoteRenderingError, match="Widgets conflict") as caught:
        policy.check(request, answer(409, '{"error": {"code": "Conflict", "message": "taken"}}'))
    assert caught.value.code == "Conflict"
    assert caught.value.service_message == "Conflict: taken"
    create = Request("create_widget", "POST", "https://example.invalid/w", retry_safe=False, resource=KIND)
    with pytest.raises(KIND.may_exist, match="The widget may exist"):
        policy.check(create, answer(500))


def test_session_requests_keep_the_session_errors():
    request = Request(
        "create_session", "POST", "https://example.invalid/s", retry_safe=False, resource=SESSION
    )
    with pytest.raises(RemoteRenderingSessionMayExistError):
        policy.check(request, answer(502))
    with pytest.raises(policy.TransientError) as caught:
        policy.check(request, answer(429, "", **{"Retry-After": "7"}))
    assert caught.value.retry_after == 7.0


def test_the_service_error_code_survives_pickling():
    import pickle

    error = RemoteRenderingSessionNotFoundError("get_session", http_status=404, code="NotFound")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is RemoteRenderingSessionNotFoundError
    assert copy.code == "NotFound"
    assert str(copy) == str(error)
