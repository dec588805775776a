"""Failing conversions by input path: ``EmulatorState.fail_conversions`` and ``--fail-conversion``.

Which conversion fails must not depend on the order in which concurrent clients create theirs, so the
rule matches the input asset's path with a glob instead of failing "the next" conversion.
"""

from __future__ import annotations

import time

import httpx
import pytest

from airflow_provider_arr.emulator import ArrEmulator, EmulatorState
from airflow_provider_arr.emulator.cli import build_parser, main
from airflow_provider_arr.emulator.conversions import DEFAULT_CONVERSION_FAILURE
from airflow_provider_arr.emulator.process import EmulatorProcess
from tests.emulator.conftest import FakeClock
from tests.emulator.test_emulator_conversions import API, settings


def put_and_finish(client: httpx.Client, url: str, auth: dict[str, str], paths: dict[str, str]) -> dict:
    for conversion_id, path in paths.items():
        assert client.put(f"{url}/{conversion_id}", params=API, json=settings(path), headers=auth).is_success
    return {cid: client.get(f"{url}/{cid}", params=API, headers=auth).json() for cid in paths}


def test_only_matching_inputs_fail_in_any_order(
    emulator: ArrEmulator,
    client: httpx.Client,
    auth: dict[str, str],
    conversions: str,
    conversion_clock: FakeClock,
) -> None:
    emulator.state.fail_conversions("broken/*", "The model has no geometry.")
    emulator.state.fail_conversions("*.ply")
    paths = {"a": "good/chair.fbx", "b": "broken/chair.fbx", "c": "scan.ply", "d": "broken/deep/x.glb"}
    conversion_clock.advance(1)  # still running: the failure shows only when the delay is over
    put_and_finish(client, conversions, auth, paths)
    conversion_clock.advance(10)
    body = {cid: client.get(f"{conversions}/{cid}", params=API, headers=auth).json() for cid in paths}
    assert body["a"]["status"] == "Succeeded"
    assert (body["b"]["status"], body["b"]["error"]) == (
        "Failed",
        {"code": "ConversionFailed", "message": "The model has no geometry."},
    )
    assert body["c"]["error"]["message"] == DEFAULT_CONVERSION_FAILURE
    assert body["d"]["error"]["message"] == "The model has no geometry."  # "*" matches "/" too
    assert emulator.state.faults_injected["fail_conversion"] == 3


def test_a_glob_match_leaves_the_next_failure_for_the_next_conversion(
    emulator: ArrEmulator,
    client: httpx.Client,
    auth: dict[str, str],
    conversions: str,
    conversion_clock: FakeClock,
) -> None:
    emulator.state.fail_next_conversion("next one")
    emulator.state.fail_conversions("broken/*", "by glob")
    put_and_finish(client, conversions, auth, {"x": "broken/a.fbx", "y": "fine/b.fbx"})
    conversion_clock.advance(10)
    messages = [c.error_message for c in emulator.state.conversions()]
    assert messages == ["by glob", "next one"]


def test_reset_forgets_the_rules_and_bad_rules_are_refused() -> None:
    state = EmulatorState(fail_conversions={"broken/*": None, "*.ply": "no"})
    assert state.failing_conversions() == [("broken/*", DEFAULT_CONVERSION_FAILURE), ("*.ply", "no")]
    state.reset()
    assert state.failing_conversions() == []
    for pattern, message in (("", "x"), ("*", "")):
        with pytest.raises(ValueError, match="must not be empty"):
            state.fail_conversions(pattern, message)
    with pytest.raises(ValueError, match="conversion_delay"):
        EmulatorState(conversion_delay=-1)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("broken/*", ("broken/*", None)),
        ("*.ply:Point clouds: not licensed", ("*.ply", "Point clouds: not licensed")),
        ("x.fbx:", ("x.fbx", None)),
    ],
)
def test_the_flag_parses(value: str, parsed: tuple[str, str | None]) -> None:
    assert build_parser().parse_args(["--fail-conversion", value]).fail_conversion == [parsed]


@pytest.mark.parametrize("argv", [["--fail-conversion", ":message"], ["--conversion-delay", "-1"]])
def test_bad_values_stop_the_command_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert (
        "GLOB" if "--fail-conversion" in argv else "--conversion-delay must be >= 0"
    ) in capsys.readouterr().err


def test_the_command_line_fails_matching_conversions_only() -> None:
    options = ("--fail-conversion", "broken/*:The model has no geometry.", "--fault", "conversion_list:503")
    with EmulatorProcess(*options, conversion_delay=0.2) as emulator:
        banner = "".join(emulator.banner)
        assert "failing conversions: input 'broken/*' ends Failed: The model has no geometry." in banner
        assert "fault: the next 1 conversion_list call(s) get 503" in banner
        assert "conversion delay: 0.2 s" in banner
        key = {"Authorization": f"Bearer {emulator.account_id}:{emulator.account_key}"}
        with httpx.Client(base_url=emulator.url, timeout=10) as client:
            token = client.get(f"/accounts/{emulator.account_id}/token", headers=key).json()["AccessToken"]
            auth = {"Authorization": f"Bearer {token}"}
            url = f"/accounts/{emulator.account_id}/conversions"
            paths = {"bad": "broken/chair.fbx", "good": "chairs/chair.fbx"}
            put_and_finish(client, url, auth, paths)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # the conversions end after 0.2 s; wait without timing them
                shown = {c["conversionId"]: c for c in client.get("/_emulator/conversions").json()}
                if all(c["status"] in ("Succeeded", "Failed") for c in shown.values()):
                    break
                time.sleep(0.05)
        assert (shown["bad"]["status"], shown["bad"]["errorMessage"]) == (
            "Failed",
            "The model has no geometry.",
        )
        assert (shown["good"]["status"], shown["good"]["errorMessage"]) == ("Succeeded", None)
