from __future__ import annotations

import pytest

from airflow_provider_arr.models import (
    ArrInputError,
    ArrResponseError,
    ConversionProperties,
    ConversionStatus,
    output_asset_name,
    output_asset_uri,
    validate_container_uri,
    validate_conversion_id,
    validate_input_path,
    validate_output_name,
    validate_prefix,
    validate_sas,
)

# The example conversion of the official OpenAPI document (mr-arr-2021-01-01.json), trimmed.
OPENAPI_EXAMPLE = {
    "id": "MyConversion",
    "settings": {
        "inputLocation": {
            "storageContainerUri": "https://contosostorage01.blob.core.windows.net/arrinput",
            "blobPrefix": "models/",
            "relativeInputAssetPath": "house.fbx",
        },
        "outputLocation": {
            "storageContainerUri": "https://contosostorage01.blob.core.windows.net/arroutput",
            "outputAssetFilename": "house.arrAsset",
        },
    },
    "output": {
        "outputAssetUri": "https://contoso.blob.core.windows.net/arr/architecture-output/house.arrAsset"
    },
    "error": None,
    "status": "Succeeded",
    "creationTime": "2020-03-25T15:09:17.2051133Z",
}


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("NotStarted", ConversionStatus.NOT_STARTED),
        ("running", ConversionStatus.RUNNING),
        ("Succeeded", ConversionStatus.SUCCEEDED),
        ("Success", ConversionStatus.SUCCEEDED),
        ("Failure", ConversionStatus.FAILED),
        ("Failed", ConversionStatus.FAILED),
        ("Cancelled", ConversionStatus.CANCELLED),
    ],
)
def test_status_parses_both_dialects(text: str, status: ConversionStatus) -> None:
    assert ConversionStatus.parse(text) is status


def test_status_terminal_and_failed() -> None:
    assert {s for s in ConversionStatus if s.is_terminal} == {
        ConversionStatus.SUCCEEDED,
        ConversionStatus.FAILED,
        ConversionStatus.CANCELLED,
    }
    assert {s for s in ConversionStatus if s.is_failed} == {
        ConversionStatus.FAILED,
        ConversionStatus.CANCELLED,
    }


def test_unknown_status_is_unknown_and_no_status_names_the_field() -> None:
    assert ConversionStatus.parse("Exploded") is ConversionStatus.UNKNOWN
    with pytest.raises(ArrResponseError, match=r"'status'.*None"):
        ConversionStatus.parse(None)


def test_properties_from_2021_example() -> None:
    props = ConversionProperties.from_2021(OPENAPI_EXAMPLE)
    assert props.conversion_id == "MyConversion"
    assert props.status is ConversionStatus.SUCCEEDED
    assert props.output_asset_uri == OPENAPI_EXAMPLE["output"]["outputAssetUri"]  # type: ignore[index]
    assert props.error_message is None
    assert props.creation_time == "2020-03-25T15:09:17.2051133Z"
    assert ConversionProperties.from_dict(props.to_dict()) == props


def test_properties_from_2021_failed() -> None:
    data = dict(
        OPENAPI_EXAMPLE, status="Failed", output=None, error={"code": "InputInvalid", "message": "bad"}
    )
    props = ConversionProperties.from_2021(data)
    assert props.status.is_failed
    assert props.error_message == "InputInvalid: bad"


def test_properties_from_v1() -> None:
    props = ConversionProperties.from_v1({"status": "Failure", "error": {"message": "no such blob"}}, "abc")
    assert props == ConversionProperties("abc", ConversionStatus.FAILED, error_message="no such blob")
    flat = ConversionProperties.from_v1({"status": "Failure", "error": "Unable to start conversion"}, "abc")
    assert flat.error_message == "Unable to start conversion"


@pytest.mark.parametrize("data", [[], {"status": "Running"}, {"id": "x", "status": "Running", "output": 3}])
def test_malformed_2021_answer(data: object) -> None:
    with pytest.raises(ArrResponseError):
        ConversionProperties.from_2021(data)


def test_container_uri_is_split() -> None:
    container = validate_container_uri(
        "https://contoso01.blob.core.windows.net/models/", "input_container_uri"
    )
    assert (container.uri, container.storage_account, container.container) == (
        "https://contoso01.blob.core.windows.net/models",
        "contoso01",
        "models",
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        None,
        "http://contoso01.blob.core.windows.net/models",
        "https://contoso01.file.core.windows.net/models",
        "https://contoso01.blob.core.windows.net/",
        "https://contoso01.blob.core.windows.net/models/deeper",
        "contoso01/models",
    ],
)
def test_bad_container_uri_names_the_field(value: object) -> None:
    with pytest.raises(ArrInputError, match=r"^output_container_uri: "):
        validate_container_uri(value, "output_container_uri")


def test_container_uri_with_sas_is_refused_without_repeating_it() -> None:
    with pytest.raises(ArrInputError) as caught:
        validate_container_uri(
            "https://contoso01.blob.core.windows.net/models?sv=1&sig=SECRET", "input_container_uri"
        )
    assert "SECRET" not in str(caught.value)
    assert "input_sas" in str(caught.value)


@pytest.mark.parametrize("path", ["house.fbx", "dir/Car.GLB", "scan.e57", "scene.gltf", "cloud.ply", "p.xyz"])
def test_supported_inputs(path: str) -> None:
    assert validate_input_path(path) == path


@pytest.mark.parametrize("path", ["", "  ", "/", "house.obj", "house", None])
def test_bad_input_path_names_the_field(path: object) -> None:
    with pytest.raises(ArrInputError, match=r"^input_asset_path: "):
        validate_input_path(path)


def test_output_name() -> None:
    assert validate_output_name(None) is None
    assert validate_output_name("house.arrAsset") == "house.arrAsset"
    for bad in ("house.fbx", "house.arrasset", "a/house.arrAsset", ".arrAsset", 3):
        with pytest.raises(ArrInputError, match=r"^output_asset_filename: .*arrAsset"):
            validate_output_name(bad)


def test_sas_checks_never_repeat_the_token() -> None:
    assert validate_sas("?sv=2020&sig=abc", "input_sas") == "sv=2020&sig=abc"
    assert validate_sas(None, "input_sas") is None
    with pytest.raises(ArrInputError, match=r"^output_sas: ") as caught:
        validate_sas("https://x.blob.core.windows.net/c?sv=1&sig=TOPSECRET", "output_sas")
    assert "TOPSECRET" not in str(caught.value)


def test_prefix_and_ids() -> None:
    assert validate_prefix("/models/v2/", "input_blob_prefix") == "models/v2"
    assert validate_prefix("", "input_blob_prefix") is None
    assert validate_conversion_id("conv_1-a") == "conv_1-a"
    with pytest.raises(ArrInputError, match=r"^conversion_id: "):
        validate_conversion_id("../token")


def test_output_uri_computed_like_the_service() -> None:
    assert output_asset_name("models/house.fbx", None) == "house.arrAsset"
    assert output_asset_name("models/house.fbx", "h.arrAsset") == "h.arrAsset"
    container = "https://contoso01.blob.core.windows.net/out"
    assert output_asset_uri(container, "run/1", "house.arrAsset") == f"{container}/run/1/house.arrAsset"
    assert output_asset_uri(container, None, "house.arrAsset") == f"{container}/house.arrAsset"
