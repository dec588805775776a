"""Fuzz the emulator from its own OpenAPI description (schemathesis): no input gives a 5xx.

Every operation of ``/openapi.json`` gets generated calls, valid ones (positive mode: bodies and
parameters that fit the schema) and invalid ones (negative mode), with a valid bearer credential and,
in most calls, the emulator's real account id, so that the calls get past authentication to the
parsing and the state machine. No fault is injected, so any 5xx is a bug of the emulator.

Bounded: ``ARR_FUZZ_EXAMPLES`` examples per operation and mode (default 15), derandomized so that a CI
run is repeatable; set ``ARR_FUZZ_RANDOM=1`` (and more examples) for an exploratory run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from airflow_provider_arr.emulator import ArrEmulator, EmulatorState, create_app

EXAMPLES = int(os.environ.get("ARR_FUZZ_EXAMPLES", "15"))
DERANDOMIZE = os.environ.get("ARR_FUZZ_RANDOM", "") != "1"

# The description is the application's own; loading it needs no server.
SCHEMA = schemathesis.openapi.from_dict(create_app(EmulatorState()).openapi())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture(scope="module")
def fuzzed_emulator() -> Iterator[ArrEmulator]:
    with ArrEmulator(start_delay=0.05, token_lifetime=3600) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def test_the_description_covers_every_route():
    labels = {operation.label for operation in OPERATIONS}
    assert {
        "GET /accounts/{account_id}/token",
        "POST /v1/accounts/{account_id}/sessions/create",
        "PATCH /v1/accounts/{account_id}/sessions/{session_id}",
        "GET /v1/accounts/{account_id}/sessions",
        "GET /v1/accounts/{account_id}/sessions/{session_id}/properties",
        "DELETE /v1/accounts/{account_id}/sessions/{session_id}",
        "PUT /accounts/{account_id}/sessions/{session_id}",
        "GET /accounts/{account_id}/sessions/{session_id}",
        "PATCH /accounts/{account_id}/sessions/{session_id}",
        "POST /accounts/{account_id}/sessions/{session_id}/:stop",
        "GET /accounts/{account_id}/sessions",
        "POST /v1/accounts/{account_id}/conversions/create",
        "POST /v1/accounts/{account_id}/conversions/createWithSharedAccessSignature",
        "GET /v1/accounts/{account_id}/conversions/{conversion_id}",
        "PUT /accounts/{account_id}/conversions/{conversion_id}",
        "GET /accounts/{account_id}/conversions/{conversion_id}",
        "GET /accounts/{account_id}/conversions",
    } <= labels
    bodies = {op.label for op in OPERATIONS if op.body}
    assert {
        "POST /v1/accounts/{account_id}/sessions/create",
        "PATCH /v1/accounts/{account_id}/sessions/{session_id}",
        "PUT /accounts/{account_id}/sessions/{session_id}",
        "PATCH /accounts/{account_id}/sessions/{session_id}",
    } <= bodies


def negatable(operation: schemathesis.APIOperation) -> bool:
    """Whether negative mode can break something: a body, or a query parameter with constraints."""
    return bool(operation.body) or any(parameter.location == "query" for parameter in operation.query)


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=str)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_no_input_gives_a_server_error(fuzzed_emulator, http, operation, mode):
    if mode is schemathesis.GenerationMode.NEGATIVE and not negatable(operation):
        pytest.skip("nothing in its description can be made invalid (plain string parameters only)")
    state = fuzzed_emulator.state
    if operation.path.endswith("/token"):
        credential = f"{state.account_id}:{state.account_key}"
    else:
        credential = state.issue_token(state.account_id, state.account_key)
    headers = {"Authorization": f"Bearer {credential}"}
    known_account = operation.as_strategy(
        generation_mode=mode, headers=headers, path_parameters={"account_id": state.account_id}
    )
    any_account = operation.as_strategy(generation_mode=mode, headers=headers)
    strategy = (
        st.one_of(known_account, known_account, any_account)
        if "account_id" in operation.path
        else any_account
    )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=DERANDOMIZE,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call_and_validate(
            base_url=fuzzed_emulator.url, session=http, checks=[not_a_server_error], timeout=10
        )
        statuses.append(response.status_code)

    statuses: list[int] = []
    fuzz()
    path = operation.path
    if (
        mode is schemathesis.GenerationMode.POSITIVE
        and "{session_id}" not in path
        and "{conversion_id}" not in path
    ):
        # Valid input gets past parsing and authentication: the calls reach the state machine.
        assert any(200 <= status < 300 for status in statuses), statuses
