"""Rule 9 of issue 18 (its URL part): equal URLs compare equal wherever the hook compares them.

Scheme and host case, a default port, a host's trailing dot: a ``@nextLink`` to our own origin is
followed however it is spelt, one to any other origin is refused; two connections that name the same
token service share its token. Against the emulator on a loopback socket.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_arr.exceptions import RemoteRenderingError
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.hooks.urls import normalized_url, origin, same_origin_link
from tests.helpers import FAST_RETRIES

#: (connection host, link) spellings of one origin; ``{port}``, ``{path}`` are filled in per test.
SAME_ORIGIN = [
    ("http://127.0.0.1:{port}", "{path}"),
    ("http://127.0.0.1:{port}", "HTTP://127.0.0.1:{port}{path}"),
    ("http://127.0.0.1:{port}", "http://127.0.0.1.:{port}{path}"),
    ("http://127.0.0.1.:{port}/", "http://127.0.0.1:{port}{path}"),
    ("http://LOCALHOST:{port}", "http://localhost:{port}{path}"),
    ("http://localhost:{port}/", "hTTp://LocalHost.:{port}{path}"),
    ("HTTP://LocalHost.:{port}", "http://localhost:{port}{path}"),
]
OTHER_ORIGIN = [
    "http://127.0.0.2:{port}{path}",
    "https://127.0.0.1:{port}{path}",
    "http://127.0.0.1:{other_port}{path}",
    "http://127.0.0.1{path}",
    "http://127.0.0.1:80{path}",
    "//evil.example{path}",
    "http://127.0.0.1:{port}@evil.example{path}",
    "http://localhost.evil.example:{port}{path}",
    "http://127.0.0.1:notaport{path}",
]


def use_connection(monkeypatch, emulator, host: str, api_version: str, conn_id: str = "arr_default") -> None:
    conn = emulator.connection(**FAST_RETRIES, api_version=api_version)
    conn["host"] = host
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def list_path(emulator, api_version: str) -> str:
    if api_version == "v1":
        return f"/v1/accounts/{emulator.account_id}/sessions?page=2"
    return f"/accounts/{emulator.account_id}/sessions?api-version=2021-01-01&page=2"


def fill(template: str, emulator, api_version: str) -> str:
    return template.format(
        port=emulator.port, other_port=emulator.port + 1, path=list_path(emulator, api_version)
    )


@pytest.mark.parametrize("api_version", ["v1", "2021-01-01"])
@pytest.mark.parametrize(("host", "link"), SAME_ORIGIN)
def test_a_next_link_to_our_origin_is_followed_however_it_is_spelt(
    emulator, monkeypatch, api_version, host, link
):
    use_connection(monkeypatch, emulator, fill(host, emulator, api_version), api_version)
    first_page = {"sessions": [], "@nextLink": fill(link, emulator, api_version)}
    emulator.state.add_fault("list", 200, body=first_page)
    assert RemoteRenderingHook().list_sessions() == []
    assert emulator.state.request_counts["list"] == 2


@pytest.mark.parametrize("api_version", ["v1", "2021-01-01"])
@pytest.mark.parametrize("link", OTHER_ORIGIN)
def test_a_next_link_to_another_origin_is_refused(emulator, monkeypatch, api_version, link):
    use_connection(monkeypatch, emulator, emulator.url, api_version)
    first_page = {"sessions": [], "@nextLink": fill(link, emulator, api_version)}
    emulator.state.add_fault("list", 200, body=first_page)
    with pytest.raises(RemoteRenderingError, match="@nextLink to another origin"):
        RemoteRenderingHook().list_sessions()
    assert emulator.state.request_counts["list"] == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("http://127.0.0.1:{port}", "HTTP://127.0.0.1:{port}/"),
        ("http://127.0.0.1:{port}", "http://127.0.0.1.:{port}"),
        ("http://localhost:{port}", "http://LocalHost:{port}"),
        ("http://localhost:{port}", "http://localhost.:{port}/"),
    ],
)
def test_two_spellings_of_one_token_service_share_its_token(emulator, monkeypatch, first, second):
    """The token cache (and the trigger's shared poller) key on the normalised URLs."""
    for conn_id, url in (("arr_first", first), ("arr_second", second)):
        conn = emulator.connection(**FAST_RETRIES)
        conn["host"] = conn["extra"]["sts_url"] = url.format(port=emulator.port)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    RemoteRenderingHook("arr_first").list_sessions()
    RemoteRenderingHook("arr_second").list_sessions()
    assert emulator.state.request_counts["token"] == 1
    first_settings = RemoteRenderingHook("arr_first").settings
    second_settings = RemoteRenderingHook("arr_second").settings
    assert first_settings == second_settings


hosts = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True)


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, str]:
    """One URL, and the same URL spelt another way (case, default port, trailing dot)."""
    scheme = draw(st.sampled_from(["http", "https"]))
    host = draw(hosts)
    path = draw(st.sampled_from(["", "/", "/v1/accounts/a/sessions", "/x?page=2"]))

    def respell(text: str) -> str:
        flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
        return "".join(c.upper() if flip else c for c, flip in zip(text, flips, strict=True))

    default = {"http": 80, "https": 443}[scheme]
    port = draw(st.sampled_from(["", f":{default}"]))
    dot = draw(st.sampled_from(["", "."]))
    return f"{scheme}://{host}{path}", f"{respell(scheme)}://{respell(host)}{dot}{port}{path}"


@given(spellings())
def test_every_spelling_of_a_url_normalises_to_one(pair):
    plain, respelt = pair
    assert normalized_url(respelt) == normalized_url(plain)
    assert origin(respelt) == origin(plain)
    assert same_origin_link(plain.split("/", 3)[0] + "//" + plain.split("/", 3)[2], respelt) is not None


@given(spellings(), hosts)
def test_a_link_to_another_host_never_resolves(pair, other):
    plain, _ = pair
    base = "/".join(plain.split("/", 3)[:3])
    if origin(f"http://{other}")[1] != origin(base)[1]:
        assert same_origin_link(base, f"{base.split(':', 1)[0]}://{other}/x") is None
