"""Fixtures for the emulator's own tests: one shared server on a loopback port, reset before each test.

The emulator is tested from the outside with plain ``httpx``, never through the hook.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from airflow_provider_arr.emulator import ArrEmulator
from airflow_provider_arr.emulator.conversions import DEFAULT_CONVERSION_DELAY
from airflow_provider_arr.emulator.state import DEFAULT_PAGE_SIZE

MS_CV = re.compile(r"^[A-Za-z0-9+/]{22}\.0$")
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
#: The fields of v1 session properties, in the service's order.
PROPERTY_FIELDS = [
    "message",
    "sessionElapsedTime",
    "sessionHostname",
    "sessionId",
    "sessionMaxLeaseTime",
    "sessionSize",
    "sessionStatus",
]
#: The fields of a 2021-01-01 session while Starting, in the service's order (others are added later).
STARTING_FIELDS = ["id", "creationTime", "elapsedTimeMinutes", "maxLeaseTimeMinutes", "size", "status"]


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def _fresh_token_cache():
    """Override the suite-wide fixture of that name: these tests never touch the hook or its cache."""


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[ArrEmulator]:
    # One server for the whole run: starting and stopping uvicorn costs ~0.25 s each time.
    with ArrEmulator(start_delay=0.2, token_lifetime=3600) as emulator:
        yield emulator


@pytest.fixture
def emulator(shared_emulator: ArrEmulator) -> Iterator[ArrEmulator]:
    """The shared emulator with a fresh state: no sessions, faults or counts; real clock; 0.2 s start."""
    state = shared_emulator.state
    state.reset()
    state.clock, state.start_delay, state.page_size = time.monotonic, 0.2, DEFAULT_PAGE_SIZE
    yield shared_emulator
    state.reset()
    state.clock, state.start_delay, state.page_size = time.monotonic, 0.2, DEFAULT_PAGE_SIZE


@pytest.fixture
def clock(emulator: ArrEmulator) -> FakeClock:
    """Drive the emulator's session life cycle by hand; sessions start in 5 s of fake time."""
    fake = FakeClock()
    emulator.state.clock, emulator.state.start_delay = fake, 5.0
    return fake


@pytest.fixture(scope="session")
def shared_client(shared_emulator: ArrEmulator) -> Iterator[httpx.Client]:
    # Creating an httpx.Client builds an SSL context (~50 ms): share one.
    with httpx.Client(base_url=shared_emulator.url, timeout=5) as http:
        yield http


@pytest.fixture
def client(emulator: ArrEmulator, shared_client: httpx.Client) -> httpx.Client:
    """An httpx client with the emulator's URL as base."""
    return shared_client


@pytest.fixture
def check_headers() -> Callable[[httpx.Response], None]:
    """Assert that an answer carries a service-like ``MS-CV`` and ``X-Content-Type-Options``."""

    def check(response: httpx.Response) -> None:
        assert MS_CV.match(response.headers.get("MS-CV", "")), response.headers
        assert response.headers["X-Content-Type-Options"] == "nosniff"

    return check


@pytest.fixture
def get_token(client: httpx.Client) -> Callable[[str, str], str]:
    """Fetch a token from the emulated STS for an account."""

    def fetch(account_id: str, account_key: str) -> str:
        headers = {"Authorization": f"Bearer {account_id}:{account_key}"}
        response = client.get(f"/accounts/{account_id}/token", headers=headers)
        assert response.status_code == 200, response.text
        return response.json()["AccessToken"]

    return fetch


@pytest.fixture
def auth(emulator: ArrEmulator, get_token: Callable[[str, str], str]) -> dict[str, str]:
    """An ``Authorization`` header with a valid token of the default account."""
    return {"Authorization": f"Bearer {get_token(emulator.account_id, emulator.account_key)}"}


@pytest.fixture
def sessions_url(emulator: ArrEmulator) -> str:
    """``/v1/accounts/{default account}/sessions``."""
    return f"/v1/accounts/{emulator.account_id}/sessions"


@pytest.fixture
def create_session(client: httpx.Client, auth: dict[str, str], sessions_url: str) -> Callable[..., str]:
    """Create a session of the default account through the API and return its id."""

    def create(max_lease_time: str = "4:0:0", size: str = "standard") -> str:
        body = {"maxLeaseTime": max_lease_time, "models": [], "size": size}
        response = client.post(f"{sessions_url}/create", json=body, headers=auth)
        assert response.status_code == 202, response.text
        return response.json()["sessionId"]

    return create


@pytest.fixture
def conversion_clock(emulator: ArrEmulator) -> Iterator[FakeClock]:
    """Conversions take 10 s of fake time (the emulator's default delay again afterwards)."""
    fake = FakeClock()
    emulator.state.clock, emulator.state.conversion_delay = fake, 10.0
    yield fake
    emulator.state.conversion_delay = DEFAULT_CONVERSION_DELAY


@pytest.fixture
def conversions(emulator: ArrEmulator) -> str:
    """The conversions route of the emulator's account."""
    return f"/accounts/{emulator.account_id}/conversions"
