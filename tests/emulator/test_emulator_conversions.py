"""Asset conversions of the emulator in both dialects, over a real loopback socket, with plain httpx."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_arr.emulator import ArrEmulator
from tests.emulator.conftest import GUID, MS_CV, FakeClock

API = {"api-version": "2021-01-01"}
IN = "https://contosoin.blob.core.windows.net/models"
OUT = "https://contosoout.blob.core.windows.net/assets"
SAS = "sv=2020-08-04&sr=c&sig=SECRETSIGNATURE"


def settings(path: str = "house.fbx", **output: str) -> dict[str, object]:
    return {
        "settings": {
            "inputLocation": {"storageContainerUri": IN, "blobPrefix": "in/", "relativeInputAssetPath": path},
            "outputLocation": {"storageContainerUri": OUT, "blobPrefix": "run1", **output},
        }
    }


def v1_body(path: str = "house.fbx", sas: bool = False) -> dict[str, object]:
    source: dict[str, str] = {
        "storageAccountname": "contosoin",
        "blobContainerName": "models",
        "folderPath": "in",
        "inputAssetPath": path,
    }
    target: dict[str, str] = {"storageAccountname": "contosoout", "blobContainerName": "assets"}
    if sas:
        source["containerReadListSas"], target["containerWriteSas"] = SAS, SAS
    return {"input": source, "output": target}


@pytest.fixture
def v1_conversions(emulator: ArrEmulator) -> str:
    return f"/v1/accounts/{emulator.account_id}/conversions"


def test_2021_life_cycle(
    client: httpx.Client, auth: dict[str, str], conversions: str, conversion_clock: FakeClock
) -> None:
    created = client.put(f"{conversions}/conv-1", params=API, json=settings(), headers=auth)
    assert created.status_code == 201, created.text
    assert MS_CV.match(created.headers["MS-CV"])
    body = created.json()
    assert body["id"] == "conv-1"
    assert body["status"] == "NotStarted"
    assert body["error"] is None
    assert "output" not in body
    assert set(body) == {"id", "settings", "error", "status", "creationTime"}

    conversion_clock.advance(3)
    running = client.get(f"{conversions}/conv-1", params=API, headers=auth)
    assert running.json()["status"] == "Running"
    assert running.headers["Retry-After"] == "7"

    conversion_clock.advance(7)
    done = client.get(f"{conversions}/conv-1", params=API, headers=auth)
    assert done.json()["status"] == "Succeeded"
    assert done.json()["output"] == {"outputAssetUri": f"{OUT}/run1/house.arrAsset"}
    assert done.headers["Retry-After"] == "1"


def test_2021_create_is_idempotent_and_conflicts_on_other_settings(
    client: httpx.Client, auth: dict[str, str], conversions: str, conversion_clock: FakeClock
) -> None:
    first = client.put(f"{conversions}/conv-2", params=API, json=settings(), headers=auth)
    again = client.put(f"{conversions}/conv-2", params=API, json=settings(), headers=auth)
    assert (first.status_code, again.status_code) == (201, 200)
    other = client.put(f"{conversions}/conv-2", params=API, json=settings("car.glb"), headers=auth)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "Conflict"


def test_2021_sas_is_never_echoed(
    client: httpx.Client, auth: dict[str, str], conversions: str, conversion_clock: FakeClock
) -> None:
    body = settings()
    body["settings"]["inputLocation"]["storageContainerReadListSas"] = SAS  # type: ignore[index]
    body["settings"]["outputLocation"]["storageContainerWriteSas"] = SAS  # type: ignore[index]
    created = client.put(f"{conversions}/conv-sas", params=API, json=body, headers=auth)
    assert created.status_code == 201
    listed = client.get(conversions, params=API, headers=auth)
    introspected = client.get("/_emulator/conversions")
    for answer in (created, listed, introspected):
        assert "SECRETSIGNATURE" not in answer.text
    assert introspected.json()[0]["input"]["withSas"] is True


def test_2021_unsupported_input_fails_with_a_message(
    client: httpx.Client, auth: dict[str, str], conversions: str, conversion_clock: FakeClock
) -> None:
    client.put(f"{conversions}/obj", params=API, json=settings("house.obj"), headers=auth)
    conversion_clock.advance(10)
    body = client.get(f"{conversions}/obj", params=API, headers=auth).json()
    assert body["status"] == "Failed"
    assert body["error"]["code"] == "InvalidInputFormat"
    assert ".obj" in body["error"]["message"]


def test_2021_scripted_failure(
    emulator: ArrEmulator,
    client: httpx.Client,
    auth: dict[str, str],
    conversions: str,
    conversion_clock: FakeClock,
) -> None:
    emulator.state.fail_next_conversion("Textures are missing.")
    client.put(f"{conversions}/bad", params=API, json=settings(), headers=auth)
    conversion_clock.advance(10)
    body = client.get(f"{conversions}/bad", params=API, headers=auth).json()
    assert (body["status"], body["error"]["message"]) == ("Failed", "Textures are missing.")
    assert emulator.state.faults_injected["fail_conversion"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "settings"),
        (settings(""), "relativeInputAssetPath"),
        (settings(outputAssetFilename="house.glb"), "outputAssetFilename"),
    ],
)
def test_2021_bad_bodies_are_400(
    client: httpx.Client, auth: dict[str, str], conversions: str, body: dict[str, object], field: str
) -> None:
    answer = client.put(f"{conversions}/x", params=API, json=body, headers=auth)
    assert answer.status_code == 400
    assert field in answer.json()["error"]["message"]


def test_2021_unknown_conversion_is_404_and_token_is_checked(
    client: httpx.Client, auth: dict[str, str], conversions: str
) -> None:
    missing = client.get(f"{conversions}/nope", params=API, headers=auth)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NotFound"
    assert client.get(f"{conversions}/nope", params=API).status_code == 401
    assert client.get(f"{conversions}/nope", headers=auth).status_code == 400  # no api-version


def test_2021_list_is_paged(
    emulator: ArrEmulator, client: httpx.Client, auth: dict[str, str], conversions: str
) -> None:
    emulator.state.page_size = 2
    for index in range(3):
        client.put(f"{conversions}/c{index}", params=API, json=settings(), headers=auth)
    first = client.get(conversions, params=API, headers=auth).json()
    assert [c["id"] for c in first["conversions"]] == ["c0", "c1"]
    second = client.get(first["@nextLink"], headers=auth).json()
    assert [c["id"] for c in second["conversions"]] == ["c2"]
    assert "@nextLink" not in second


def test_v1_life_cycle_with_sas(
    client: httpx.Client, auth: dict[str, str], v1_conversions: str, conversion_clock: FakeClock
) -> None:
    created = client.post(
        f"{v1_conversions}/createWithSharedAccessSignature", json=v1_body(sas=True), headers=auth
    )
    assert created.status_code == 202, created.text
    conversion_id = created.json()["conversionId"]
    assert GUID.match(conversion_id)
    assert client.get(f"{v1_conversions}/{conversion_id}", headers=auth).json()["status"] == "Running"
    conversion_clock.advance(10)
    assert client.get(f"{v1_conversions}/{conversion_id}", headers=auth).json() == {
        "conversionId": conversion_id,
        "status": "Success",
    }
    record = client.get("/_emulator/conversions").json()[0]
    assert record["outputAssetUri"] == f"{OUT}/house.arrAsset"
    assert record["dialect"] == "v1"


def test_v1_failure_and_route_checks(
    emulator: ArrEmulator,
    client: httpx.Client,
    auth: dict[str, str],
    v1_conversions: str,
    conversion_clock: FakeClock,
) -> None:
    # SAS fields belong to the other route.
    refused = client.post(f"{v1_conversions}/create", json=v1_body(sas=True), headers=auth)
    assert refused.status_code == 400
    assert "SECRETSIGNATURE" not in refused.text
    assert (
        client.post(
            f"{v1_conversions}/createWithSharedAccessSignature", json=v1_body(), headers=auth
        ).status_code
        == 400
    )
    emulator.state.fail_next_conversion("Unable to read the input.")
    conversion_id = client.post(f"{v1_conversions}/create", json=v1_body(), headers=auth).json()[
        "conversionId"
    ]
    conversion_clock.advance(10)
    body = client.get(f"{v1_conversions}/{conversion_id}", headers=auth).json()
    assert body["status"] == "Failure"
    assert body["error"]["message"] == "Unable to read the input."
    missing = client.get(f"{v1_conversions}/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers=auth)
    assert missing.status_code == 404
    assert isinstance(missing.json()["error"], str)


def test_faults_apply_to_conversion_routes(
    emulator: ArrEmulator, client: httpx.Client, auth: dict[str, str], conversions: str
) -> None:
    emulator.state.add_fault("conversion_properties", 429, headers={"Retry-After": "3"})
    throttled = client.get(f"{conversions}/any", params=API, headers=auth)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "3"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert emulator.state.request_counts["conversion_properties"] == 1
    assert client.get("/_emulator/counts").json()["conversion_properties"] == 1
