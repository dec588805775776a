"""Bad input through the operators: an error naming the field and the problem, and no HTTP request at all.

Never a ``KeyError``, ``AttributeError`` or ``TypeError`` from deep inside. The HTTP libraries' transports
(requests' adapter, httpx's sync and async transports) are replaced by a guard that fails the test if
anything is sent, which also keeps a connection that falls back to the real Azure token service from
reaching out of this machine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import requests.adapters

from airflow_provider_arr._compat import AirflowFailException
from airflow_provider_arr.operators.remote_rendering import (
    RemoteRenderingCreateSessionOperator,
    RemoteRenderingExtendSessionOperator,
    RemoteRenderingStopSessionOperator,
)
from airflow_provider_arr.sensors.remote_rendering import RemoteRenderingSessionReadySensor
from tests.reliability.conftest import V1, V2021, TaskInstance, context_for

GUID = "e13d2c44-63e0-4591-991e-f9e05e599a93"
BAD_CONN = "arr_bad"


@pytest.fixture
def no_http(emu, monkeypatch):
    """Fail the test on any HTTP request; yields the list of attempted ones (for the message).

    The guard sits in the HTTP libraries' transports, below the hook, so it needs none of the hook's
    private names and catches a request whichever way the hook sends it.
    """
    attempted: list[str] = []

    def refuse(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        attempted.append(f"{request.method} {request.url}")
        raise AssertionError(f"an HTTP request was made: {request.method} {request.url}")

    async def refuse_async(self: Any, request: Any) -> Any:
        return refuse(self, request)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", refuse)
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", refuse)
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", refuse_async)
    yield attempted
    assert sum(emu.state.request_counts.values()) == 0


def create(conn_id: str = V1, **kwargs: Any) -> RemoteRenderingCreateSessionOperator:
    kwargs.setdefault("max_lease_time", "1:00:00")
    return RemoteRenderingCreateSessionOperator(task_id="create", arr_conn_id=conn_id, **kwargs)


def extend(session_id: Any = GUID, conn_id: str = V1, **kwargs: Any) -> RemoteRenderingExtendSessionOperator:
    if "max_lease_time" not in kwargs:
        kwargs.setdefault("extend_by", "0:30:00")
    return RemoteRenderingExtendSessionOperator(
        task_id="extend", arr_conn_id=conn_id, session_id=session_id, **kwargs
    )


def stop(session_id: Any = GUID, conn_id: str = V1) -> RemoteRenderingStopSessionOperator:
    return RemoteRenderingStopSessionOperator(task_id="stop", arr_conn_id=conn_id, session_id=session_id)


def sensor(session_id: Any = GUID, conn_id: str = V1) -> RemoteRenderingSessionReadySensor:
    return RemoteRenderingSessionReadySensor(task_id="wait", arr_conn_id=conn_id, session_id=session_id)


LEASES = ["4h", "-1:00:00", "0:61:00", "", "  ", "25:00:00", "1.00:00:01", timedelta(hours=-1), None, 4, []]
SIZES = ["large", "", None, 3, ["standard"]]
SESSION_IDS_V1 = ["../token", "", "not-a-guid", None, 123, GUID + "/../x", GUID.upper() + " x"]
SESSION_IDS_2021 = ["../token", "", "a b", "x" * 257, None, "a/b", "%2e%2e"]

OPERATOR_CASES: list[Any] = [
    *[
        pytest.param(lambda v=v: create(max_lease_time=v), "max_lease_time", id=f"create-lease-{v!r}")
        for v in LEASES
    ],
    *[pytest.param(lambda v=v: create(size=v), "size", id=f"create-size-{v!r}") for v in SIZES],
    pytest.param(lambda: create(models="https://x/a.arrAsset"), "models", id="create-models-str"),
    pytest.param(lambda: create(models=["ok", None]), r"models\[1\]", id="create-models-none"),
    pytest.param(lambda: create(session_id="mine"), "session_id", id="create-v1-own-id"),
    *[
        pytest.param(lambda v=v: create(V2021, session_id=v), "session_id", id=f"create-2021-id-{v!r}"[:60])
        for v in SESSION_IDS_2021
        if v not in (None, "")  # None and "" mean: derive the id from the task instance
    ],
    pytest.param(
        lambda: create(V2021, models=["https://x/a.arrAsset"]),
        "models",
        id="create-2021-models",
    ),
    pytest.param(
        lambda: create(V2021, max_lease_time="0:15:30"),
        "max_lease_time",
        id="create-2021-part-minute",
    ),
    *[pytest.param(lambda v=v: extend(v), "session_id", id=f"extend-id-{v!r}"[:60]) for v in SESSION_IDS_V1],
    *[
        pytest.param(lambda v=v: extend(extend_by=v), "extend_by", id=f"extend-by-{v!r}")
        for v in LEASES
        if v is not None  # neither form given: refused when the operator is built (test below)
    ],
    pytest.param(lambda: extend(max_lease_time="-1:00:00"), "max_lease_time", id="extend-total-negative"),
    *[pytest.param(lambda v=v: stop(v), "session_id", id=f"stop-id-{v!r}"[:60]) for v in SESSION_IDS_V1],
    *[
        pytest.param(lambda v=v: stop(v, V2021), "session_id", id=f"stop-2021-id-{v!r}"[:60])
        for v in SESSION_IDS_2021
    ],
    *[pytest.param(lambda v=v: sensor(v), "session_id", id=f"sensor-id-{v!r}"[:60]) for v in SESSION_IDS_V1],
]


def check_error(error: BaseException, field: str) -> None:
    assert not isinstance(error, KeyError | AttributeError | TypeError), repr(error)
    assert re.match(rf"^{field}: \S", str(error)), f"{type(error).__name__}: {error}"


@pytest.mark.parametrize(("make", "field"), OPERATOR_CASES)
def test_bad_operator_input_names_the_field_and_sends_nothing(no_http, make: Callable[[], Any], field):
    operator = make()
    with pytest.raises(Exception) as raised:  # noqa: PT011  (the type is checked below)
        operator.execute(context_for(TaskInstance()))
    check_error(raised.value, field)
    assert isinstance(raised.value, AirflowFailException), "bad input must fail the task without retries"
    assert no_http == []


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"max_lease_time": "5:00:00", "extend_by": "0:30:00"}],
    ids=["neither", "both"],
)
def test_extend_needs_exactly_one_lease_form(kwargs):
    with pytest.raises(ValueError, match=r"max_lease_time .* extend_by"):
        RemoteRenderingExtendSessionOperator(task_id="extend", session_id=GUID, **kwargs)


# ----------------------------------------------------------------------------------- connections


def conn(emu, **changes: Any) -> dict[str, Any]:
    connection = emu.connection()
    extra = changes.pop("extra", None)
    connection.update(changes)
    if extra is not None:
        connection["extra"] = extra
    return connection


CONNECTION_CASES: list[Any] = [
    pytest.param({"host": "remoterendering.westus2.mixedreality.azure.com"}, "host", id="host-no-scheme"),
    pytest.param({"host": "http://remoterendering.example.com"}, "host", id="host-plain-http-remote"),
    pytest.param({"host": "ftp://127.0.0.1"}, "host", id="host-ftp"),
    pytest.param({"host": "::garbage::"}, "host", id="host-garbage"),
    pytest.param({"host": "https://"}, "host", id="host-no-hostname"),
    pytest.param({"host": "https://[::1"}, "host", id="host-broken-ipv6"),
    pytest.param({"host": ""}, "host", id="host-empty-no-region"),
    pytest.param({"host": "", "extra": {"region": "west us 2"}}, "extra 'region'", id="region-spaces"),
    pytest.param({"host": "", "extra": {"region": 5}}, "extra 'region'", id="region-int"),
    pytest.param({"extra": {"sts_url": "http://sts.example.com"}}, "extra 'sts_url'", id="sts-plain-http"),
    pytest.param({"extra": {"sts_url": 42}}, "extra 'sts_url'", id="sts-int"),
    pytest.param({"login": "not-a-guid"}, r"login \(account id\)", id="login-not-guid"),
    pytest.param({"login": ""}, r"login \(account id\)", id="login-empty"),
    pytest.param({"password": ""}, r"password \(account key\)", id="password-empty"),
    pytest.param({"extra": [1, 2]}, "extra", id="extra-list"),
    pytest.param({"extra": '"a string"'}, "extra", id="extra-json-string"),
    pytest.param(
        {"extra": "{not json"},
        "extra",
        id="extra-not-json",
    ),
    pytest.param({"extra": {"api_version": "v2"}}, "extra 'api_version'", id="api-version-unknown"),
    pytest.param({"extra": {"api_version": ["v1"]}}, "extra 'api_version'", id="api-version-list"),
    pytest.param({"extra": {"retry_limit": "many"}}, "extra 'retry_limit'", id="retry-limit-text"),
    pytest.param({"extra": {"retry_limit": 0}}, "extra 'retry_limit'", id="retry-limit-zero"),
    pytest.param({"extra": {"read_timeout": [1]}}, "extra 'read_timeout'", id="read-timeout-list"),
    pytest.param(
        {"extra": {"connect_timeout": -1}}, "extra 'connect_timeout'", id="connect-timeout-negative"
    ),
    pytest.param({"extra": {"connect_timeout": "nan"}}, "extra 'connect_timeout'", id="timeout-nan"),
    pytest.param({"extra": {"read_timeout": "inf"}}, "extra 'read_timeout'", id="timeout-inf"),
]


@pytest.mark.parametrize(("changes", "field"), CONNECTION_CASES)
@pytest.mark.parametrize(
    "make", [lambda: stop(conn_id=BAD_CONN), lambda: create(BAD_CONN)], ids=["stop", "create"]
)
def test_bad_connection_names_the_field_and_sends_nothing(emu, no_http, monkeypatch, changes, field, make):
    connection = conn(emu, **changes)
    if "extra" in changes and isinstance(changes["extra"], dict):
        connection["extra"] = {"sts_url": emu.url, **changes["extra"]}  # never the real STS
    monkeypatch.setenv(f"AIRFLOW_CONN_{BAD_CONN.upper()}", json.dumps(connection))
    with pytest.raises(Exception) as raised:  # noqa: PT011  (the type is checked below)
        make().execute(context_for(TaskInstance()))
    check_error(raised.value, f"connection '{BAD_CONN}' {field}")
    assert no_http == []


def test_a_bad_connection_fails_the_task_without_retries(emu, no_http, monkeypatch):
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{BAD_CONN.upper()}", json.dumps(conn(emu, host="no-scheme.example.com"))
    )
    with pytest.raises(AirflowFailException):
        create(BAD_CONN).execute(context_for(TaskInstance()))
