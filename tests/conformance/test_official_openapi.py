"""The emulator against the service's official OpenAPI document (2021-01-01: sessions and conversions).

Schemathesis generates valid calls of every operation of ``tests/data/openapi/mr-arr-2021-01-01.json``
(the document of ``Azure/azure-rest-api-specs``; see that folder's README) and checks that the
emulator's answers are what the document promises: no 5xx, a documented status, the documented
content type, and a body that fits the documented schema. Bounded (``ARR_OPENAPI_EXAMPLES`` examples
per operation, default 10) and derandomized, so that a CI run is repeatable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from airflow_provider_arr.emulator import ArrEmulator

DOCUMENT = Path(__file__).parents[1] / "data" / "openapi" / "mr-arr-2021-01-01.json"
EXAMPLES = int(os.environ.get("ARR_OPENAPI_EXAMPLES", "10"))
SCHEMA = schemathesis.openapi.from_dict(json.loads(DOCUMENT.read_text()))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: Where the emulator's session routes differ from the document (found by this test, not yet settled:
#: the session routes are not this change's to alter). The conversion routes conform.
KNOWN_DIFFERENCES = {
    "GET /accounts/{account_id}/sessions/{session_id}": "an invalid session id gets 400; the document "
    "lists no 400 for this GET (404 would be documented)",
    "PATCH /accounts/{account_id}/sessions/{session_id}": "an invalid session id gets 400; the document "
    "lists no 400 for PATCH",
    "POST /accounts/{account_id}/sessions/{session_id}/:stop": "the 204 has no Content-Type while the "
    "document's operation produces application/json (arguably no difference: a 204 has no body)",
}


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> None:
    """Override the suite-wide fixture: these tests never use the hook."""


@pytest.fixture(scope="module")
def official_emulator() -> Iterator[ArrEmulator]:
    with ArrEmulator(start_delay=0.05, token_lifetime=3600) as emulator:
        emulator.state.conversion_delay = 0.05
        yield emulator


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def test_the_document_has_the_sessions_and_conversions():
    assert {operation.label for operation in OPERATIONS} == {
        "PUT /accounts/{account_id}/conversions/{conversion_id}",
        "GET /accounts/{account_id}/conversions/{conversion_id}",
        "GET /accounts/{account_id}/conversions",
        "PUT /accounts/{account_id}/sessions/{session_id}",
        "GET /accounts/{account_id}/sessions/{session_id}",
        "PATCH /accounts/{account_id}/sessions/{session_id}",
        "POST /accounts/{account_id}/sessions/{session_id}/:stop",
        "GET /accounts/{account_id}/sessions",
    }


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_the_emulator_answers_as_the_document_says(official_emulator, http, operation, request):
    if operation.label in KNOWN_DIFFERENCES:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_DIFFERENCES[operation.label], strict=True))
    state = official_emulator.state
    token = state.issue_token(state.account_id, state.account_key)
    strategy = operation.as_strategy(
        headers={"Authorization": f"Bearer {token}"},
        path_parameters={"account_id": state.account_id},
        query={"api-version": "2021-01-01"},
    )
    statuses: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate(
            base_url=official_emulator.url, session=http, checks=CHECKS, timeout=10
        )
        statuses.append(response.status_code)

    check()
    assert statuses
