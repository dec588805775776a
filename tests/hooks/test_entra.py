"""Signing in with Microsoft Entra ID (issue 19), against the emulator over https on a loopback socket.

azure-identity talks to the emulator's Entra endpoints (OpenID discovery, client credentials, the App
Service managed-identity endpoint), the hook exchanges the Entra token at the emulator's STS, and the
ARR calls are those of an account-key connection. Both dialects; the emulator tells how the STS was
signed in to, so "the STS never sees <id>:<key>" is asserted from the server's side.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("azure.identity")

from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_arr.emulator import ArrEmulator
from airflow_provider_arr.emulator.entra import DEFAULT_TENANT_ID
from airflow_provider_arr.emulator.tls import make_self_signed_cert
from airflow_provider_arr.exceptions import RemoteRenderingError
from airflow_provider_arr.hooks import entra
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.models import ArrInputError
from airflow_provider_arr.sensors.remote_rendering import RemoteRenderingSessionReadySensor
from tests.helpers import FAST_RETRIES, client_assertion, make_rsa_certificate

CONN_ID = "arr_entra"
SECRET = "entra-client-secret-9fQ2-do-not-log"
DIALECTS = ["v1", "2021-01-01"]
IN = "https://contosoin.blob.core.windows.net/models"
OUT = "https://contosoout.blob.core.windows.net/assets"
#: Variables that would let azure-identity find an identity of this machine instead of the test's.
AZURE_VARIABLES = [
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "AZURE_TOKEN_CREDENTIALS",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
]


@pytest.fixture(scope="module")
def tls_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArrEmulator]:
    certfile, keyfile = make_self_signed_cert(tmp_path_factory.mktemp("tls"))
    with ArrEmulator(start_delay=0.1, certfile=certfile, keyfile=keyfile) as emulator:
        yield emulator


@pytest.fixture
def emu(tls_emulator: ArrEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[ArrEmulator]:
    """The https emulator, fresh, trusted through the standard variables; no Azure identity of the host."""
    tls_emulator.state.reset()
    tls_emulator.state.conversion_delay = 0.1
    for name in AZURE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_emulator.certfile))  # requests (sync)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_emulator.certfile))  # httpx (async)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "prod")  # no developer credentials (CLI, ...)
    yield tls_emulator
    tls_emulator.state.reset()


def use(monkeypatch: pytest.MonkeyPatch, connection: dict[str, Any]) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection))


def principal_connection(
    emu: ArrEmulator, monkeypatch: pytest.MonkeyPatch, role: str | None, api_version: str = "v1", **extra: Any
) -> Any:
    principal = emu.state.add_principal(secret=SECRET, role=role)
    if api_version != "v1":  # v1 is the default, and Airflow's masker warns of any short extra string
        extra["api_version"] = api_version
    use(monkeypatch, emu.entra_connection(principal, **FAST_RETRIES, **extra))
    return principal


def sts_kinds(emu: ArrEmulator) -> set[str]:
    return {kind for kind, _ in emu.state.sts_sign_ins()}


def call(hook: RemoteRenderingHook, name: str, async_path: bool) -> Any:
    """Call the hook's ``name`` (e.g. ``get_token``), or its async twin on a loop of its own."""
    if async_path:
        return asyncio.run(getattr(hook, f"a{name}")())
    return getattr(hook, name)()


def logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    """Everything logged: Python logging, and Airflow's structlog lines on stdout and stderr."""
    out, err = capsys.readouterr()
    return "\n".join([caplog.text, out, err])


def secrets_of(emu: ArrEmulator) -> list[str]:
    """What must never appear: the client secret, the account key, every Entra and STS token."""
    return [SECRET, emu.account_key, *emu.state.issued_entra_tokens(), *emu.state.issued_tokens()]


# ------------------------------------------------------------------ the sign-in, chosen once

ACCOUNT = "12345678-1234-1234-1234-123456789abc"
PRINCIPAL = {"tenantId": "t1", "client_id": "c1"}

SIGN_INS = [
    pytest.param("key", {}, "account_key", id="key"),
    pytest.param("key", {**PRINCIPAL, "client_secret": SECRET}, "account_key", id="key-wins-over-entra"),
    pytest.param(None, {**PRINCIPAL, "client_secret": SECRET}, "client_secret", id="client-secret"),
    pytest.param(None, {**PRINCIPAL, "certificate_path": "/p.pem"}, "certificate", id="certificate"),
    pytest.param(None, {"managed_identity_client_id": "m1"}, "default_credential", id="mi-alone"),
    pytest.param(None, {"tenantId": "t1"}, "default_credential", id="tenant-alone"),
    pytest.param(None, {"workload_identity_tenant_id": "t1"}, "default_credential", id="workload"),
    pytest.param("", {"authority_host": "login.microsoftonline.us"}, "default_credential", id="form-blank"),
]


@pytest.mark.parametrize(("password", "extra", "sign_in"), SIGN_INS)
def test_the_fields_set_choose_the_sign_in(password, extra, sign_in):
    from airflow_provider_arr.hooks.settings import ConnectionSettings

    settings = ConnectionSettings.from_connection("c", "https://arr.example.com", ACCOUNT, password, extra)
    assert settings.sign_in == sign_in
    assert settings.uses_entra == (sign_in != "account_key")
    assert SECRET not in repr(settings)
    if "authority_host" in extra:
        assert settings.authority_host == "https://login.microsoftonline.us"
    assert settings.entra_scope == "https://sts.mixedreality.azure.com//.default"


# ------------------------------------------------------------------ a service principal, end to end


@pytest.mark.parametrize("api_version", DIALECTS)
@pytest.mark.parametrize("credential", ["client_secret", "certificate"])
def test_a_service_principal_creates_waits_and_stops_a_session(
    emu, monkeypatch, tmp_path, caplog, capsys, api_version, credential
):
    caplog.set_level(logging.DEBUG)
    if credential == "client_secret":
        principal_connection(emu, monkeypatch, "Administrator", api_version)
    else:
        certificate, path, _ = make_rsa_certificate(tmp_path)
        principal = emu.state.add_principal(certificate=certificate)
        use(monkeypatch, emu.entra_connection(principal, api_version=api_version, certificate_path=path))
    with RemoteRenderingHook(CONN_ID) as hook:
        session_id = hook.create_session("0:30:00")
        ready = hook.wait_until_ready(session_id, poll_interval=0.05, end_time=time.time() + 10)
        hook.stop_session(session_id)

    assert ready.status == "Ready"
    assert [record.status for record in emu.state.sessions()] == ["Stopped"]
    assert sts_kinds(emu) == {"entra"}  # the STS never saw <id>:<key>
    assert emu.state.request_counts["token"] == 1  # one STS token served every call
    logs = logged(caplog, capsys)
    assert "RemoteRenderingHook" in logs  # the scan means something: the hook logged
    for secret in secrets_of(emu):
        assert secret not in logs


@pytest.mark.parametrize("api_version", DIALECTS)
def test_a_client_principal_waits_by_poking_and_deferred_then_stops(emu, monkeypatch, api_version):
    principal_connection(emu, monkeypatch, "Client", api_version)

    def sensor(session_id: str, **kwargs: Any) -> RemoteRenderingSessionReadySensor:
        return RemoteRenderingSessionReadySensor(
            task_id="wait", session_id=session_id, arr_conn_id=CONN_ID, poke_interval=0.05, **kwargs
        )

    with RemoteRenderingHook(CONN_ID) as hook:
        first = hook.create_session("0:30:00")
        poked = sensor(first).execute({})
        emu.state.slow_next_start(2.0)  # still Starting when the deferrable sensor first looks
        second = hook.create_session("0:30:00")
    with pytest.raises(TaskDeferred) as deferred:
        sensor(second, deferrable=True).execute({})

    async def run_trigger() -> list[Any]:
        return [event.payload async for event in deferred.value.trigger.run()]

    (event,) = asyncio.run(run_trigger())  # the triggerer's side: azure.identity.aio, closed after
    resumed = sensor(second, deferrable=True).execute_complete({}, event)
    with RemoteRenderingHook(CONN_ID) as hook:
        hook.stop_session(first)
        hook.stop_session(second)

    assert poked["session_id"] == first
    assert resumed["session_id"] == second
    assert {record.status for record in emu.state.sessions()} == {"Stopped"}
    assert sts_kinds(emu) == {"entra"}


@pytest.mark.parametrize("api_version", DIALECTS)
async def test_the_async_path_signs_in_on_its_own_loop(emu, monkeypatch, api_version):
    principal_connection(emu, monkeypatch, "Client", api_version)
    async with RemoteRenderingHook(CONN_ID) as hook:
        session_id = await hook.acreate_session("0:30:00")
        await hook.astop_session(session_id)
    assert sts_kinds(emu) == {"entra"}
    assert len(emu.state.issued_entra_tokens()) == 1


def test_each_async_credential_is_made_on_the_loop_that_uses_it_and_closed(emu, monkeypatch):
    from azure.identity import aio

    made: list[tuple[Any, asyncio.AbstractEventLoop]] = []
    closed: list[Any] = []

    class Spy(aio.ClientSecretCredential):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            made.append((self, asyncio.get_running_loop()))  # raises if no loop is running
            super().__init__(*args, **kwargs)

        async def close(self) -> None:
            closed.append(self)
            await super().close()

    monkeypatch.setattr(aio, "ClientSecretCredential", Spy)
    principal_connection(emu, monkeypatch, "Administrator")
    loops = []

    async def fetch_twice() -> None:
        from airflow_provider_arr.hooks.tokens import clear_token_cache

        loops.append(asyncio.get_running_loop())
        async with RemoteRenderingHook(CONN_ID) as hook:
            for _ in range(2):
                clear_token_cache()  # each fetch goes to the STS
                await hook.aget_token()

    asyncio.run(fetch_twice())
    asyncio.run(fetch_twice())  # another event loop, as a triggerer restart or a second test would have
    assert [loop for _, loop in made] == [loops[0], loops[0], loops[1], loops[1]]
    assert closed == [credential for credential, _ in made]  # each closed, in order, before the next


@pytest.mark.parametrize("api_version", DIALECTS)
def test_an_administrator_converts_an_asset(emu, monkeypatch, api_version):
    principal_connection(emu, monkeypatch, "Administrator", api_version)
    with RemoteRenderingHook(CONN_ID) as hook:
        conversion_id = hook.create_conversion(IN, "house.fbx", OUT)
        done = hook.wait_for_conversion(conversion_id, poll_interval=0.05, end_time=time.time() + 10)
    assert done.status == "Succeeded"
    assert sts_kinds(emu) == {"entra"}


# ------------------------------------------------------------------ errors that say what to fix


@pytest.mark.parametrize("api_version", DIALECTS)
def test_a_client_principal_conversion_fails_naming_the_role(emu, monkeypatch, api_version):
    principal_connection(emu, monkeypatch, "Client", api_version)
    with RemoteRenderingHook(CONN_ID) as hook, pytest.raises(RemoteRenderingError) as refused:
        hook.create_conversion(IN, "house.fbx", OUT)
    assert refused.value.http_status == 403
    assert "Remote Rendering Administrator role" in str(refused.value)
    assert emu.state.conversions() == []


@pytest.mark.parametrize("async_path", [False, True], ids=["sync", "async"])
def test_a_wrong_secret_fails_fast_naming_the_field_never_the_secret(
    emu, monkeypatch, caplog, capsys, async_path
):
    caplog.set_level(logging.DEBUG)
    principal = emu.state.add_principal(secret=SECRET)
    wrong = "wrong-secret-value-4Kd8"
    use(monkeypatch, emu.entra_connection(principal, client_secret=wrong, retry_limit=6))

    hook = RemoteRenderingHook(CONN_ID)
    with pytest.raises(RemoteRenderingError) as refused:
        call(hook, "get_token", async_path)

    text = str(refused.value)
    assert "extra 'client_secret'" in text
    assert "AADSTS7000215" in text  # Entra's own reason, without the value
    assert wrong not in text
    assert SECRET not in text
    logs = logged(caplog, capsys)
    assert "ClientSecretCredential" in logs  # the scan means something: the Entra leg logged
    assert wrong not in logs
    assert "attempt" not in logs  # no retry: a refused secret cannot get better
    assert emu.state.request_counts["entra_token"] == 1  # asked once
    assert emu.state.request_counts["token"] == 0  # the STS was never asked


@pytest.mark.parametrize("async_path", [False, True], ids=["sync", "async"])
def test_a_wrong_certificate_fails_fast_naming_the_field(emu, monkeypatch, tmp_path, async_path):
    registered, _, _ = make_rsa_certificate(tmp_path, "registered")
    _, another_path, _ = make_rsa_certificate(tmp_path, "another")
    principal = emu.state.add_principal(certificate=registered)
    use(monkeypatch, emu.entra_connection(principal, certificate_path=another_path, retry_limit=6))

    with pytest.raises(RemoteRenderingError) as refused:
        call(RemoteRenderingHook(CONN_ID), "get_token", async_path)

    assert "check extra 'certificate_path'" in str(refused.value)
    assert "AADSTS700027" in str(refused.value)
    assert emu.state.request_counts["entra_token"] == 1  # not retried
    assert emu.state.request_counts["token"] == 0


MISSING_FIELDS = [
    pytest.param({"client_id": "c", "client_secret": SECRET}, "extra 'tenantId'", id="secret-no-tenant"),
    pytest.param({"tenantId": "t", "client_secret": SECRET}, "extra 'client_id'", id="secret-no-client"),
    pytest.param({"tenantId": "t", "certificate_path": "/x.pem"}, "extra 'client_id'", id="cert-no-client"),
    pytest.param({"client_id": "c", "certificate_path": "/x.pem"}, "extra 'tenantId'", id="cert-no-tenant"),
    pytest.param({"client_id": "c", "tenantId": "t"}, "extra 'client_id'", id="client-id-alone"),
    pytest.param(
        {"client_id": "c", "tenantId": "t", "client_secret": SECRET, "certificate_path": "/x.pem"},
        "'client_secret' and 'certificate_path'",
        id="secret-and-certificate",
    ),
    pytest.param({"authority_host": "http://127.0.0.1:1"}, "extra 'authority_host'", id="authority-http"),
    pytest.param(
        {"client_id": "c", "tenantId": "t", "client_secret": SECRET[:4] + "\x07" + SECRET[4:]},
        "extra 'client_secret'",
        id="secret-control-character",
    ),
    pytest.param({}, r"password \(account key\)", id="no-key-no-entra-extra"),
    pytest.param({"tenantId": 42}, "extra 'tenantId': must be a string", id="tenant-a-number"),
    pytest.param(
        {"client_id": "c", "tenantId": "t", "certificate_path": "/no/such/file.pem"},
        "extra 'certificate_path'",
        id="certificate-unreadable",
    ),
]


@pytest.mark.parametrize(("extra", "field"), MISSING_FIELDS)
@pytest.mark.parametrize("async_path", [False, True], ids=["sync", "async"])
def test_missing_or_bad_fields_fail_before_any_http(emu, monkeypatch, extra, field, async_path):
    connection = emu.connection(**extra)
    del connection["password"]
    use(monkeypatch, connection)
    hook = RemoteRenderingHook(CONN_ID)
    with pytest.raises(ArrInputError, match=field) as refused:
        call(hook, "list_sessions", async_path)
    assert SECRET not in str(refused.value)
    assert sum(emu.state.request_counts.values()) == 0
    assert emu.state.issued_entra_tokens() == []


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        pytest.param({"role": None}, "has a Remote Rendering role", id="no-role"),
        pytest.param(
            {"entra_scope": "https://sts.westus2.mixedreality.azure.com/.default"}, "entra_scope", id="scope"
        ),
    ],
)
def test_an_sts_refusal_in_entra_mode_names_the_likely_cause(emu, monkeypatch, setup, fragment):
    setup = dict(setup)
    principal_connection(emu, monkeypatch, setup.pop("role", "Administrator"), **setup)
    with pytest.raises(RemoteRenderingError) as refused:
        RemoteRenderingHook(CONN_ID).get_token()
    assert refused.value.http_status == 401
    assert fragment in str(refused.value)
    assert "account key" not in str(refused.value)


def test_a_missing_azure_identity_names_the_extra_to_install(emu, monkeypatch):
    principal_connection(emu, monkeypatch, "Administrator")
    monkeypatch.setitem(sys.modules, "azure.identity", None)  # import fails as if not installed
    with pytest.raises(RemoteRenderingError, match=r"pip install 'airflow-provider-arr\[entra\]'"):
        RemoteRenderingHook(CONN_ID).get_token()
    assert emu.state.request_counts["token"] == 0


@pytest.mark.parametrize("async_path", [False, True], ids=["sync", "async"])
def test_tls_to_entra_is_verified_with_the_standard_variables(emu, monkeypatch, tmp_path, async_path):
    principal_connection(emu, monkeypatch, "Administrator")
    stranger, _ = make_self_signed_cert(tmp_path)  # a CA that did not sign the emulator's certificate
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", stranger)
    monkeypatch.setenv("SSL_CERT_FILE", stranger)
    with pytest.raises(RemoteRenderingError) as refused:
        call(RemoteRenderingHook(CONN_ID), "get_token", async_path)
    assert "is not trusted: check extra 'authority_host', and REQUESTS_CA_BUNDLE" in str(refused.value)
    assert emu.state.request_counts["entra_token"] == 0  # the secret never went to an unverified host
    assert emu.state.issued_entra_tokens() == []


# ------------------------------------------------------------------ managed and workload identity


def session_round_trip(async_path: bool) -> None:
    """Create and stop a session, with the sync hook or the async one (on a loop of its own)."""
    if not async_path:
        with RemoteRenderingHook(CONN_ID) as hook:
            hook.stop_session(hook.create_session("0:30:00"))
        return

    async def round_trip() -> None:
        async with RemoteRenderingHook(CONN_ID) as hook:
            await hook.astop_session(await hook.acreate_session("0:30:00"))

    asyncio.run(round_trip())


@pytest.mark.parametrize("api_version", DIALECTS)
@pytest.mark.parametrize("assigned", ["system", "user"])
@pytest.mark.parametrize("async_path", [False, True], ids=["sync", "async"])
def test_a_managed_identity_signs_in_through_the_app_service_endpoint(
    emu, monkeypatch, api_version, assigned, async_path
):
    if assigned == "user":
        identity = emu.state.add_managed_identity("7d1e0f2a-3b4c-4d5e-8f60-718293a4b5c6")
        extra = {"managed_identity_client_id": identity.client_id}  # alone: no tenant needed
    else:
        emu.state.add_managed_identity("0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d", role="Client")
        emu.state.add_managed_identity()
        extra = {"tenantId": DEFAULT_TENANT_ID}
    if api_version != "v1":
        extra["api_version"] = api_version
    connection = emu.connection(**extra)
    del connection["password"]
    use(monkeypatch, connection)
    # azure-identity finds App Service's endpoint in these variables; it speaks plain http to it.
    with ArrEmulator(state=emu.state) as plain:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{plain.url}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", emu.state.identity_header)
        session_round_trip(async_path)
    assert [record.status for record in emu.state.sessions()] == ["Stopped"]
    assert sts_kinds(emu) == {"entra"}
    assert emu.state.request_counts["managed_identity"] == 1


@pytest.mark.parametrize("async_path", [False, True], ids=["sync", "async"])
def test_a_managed_identity_that_fails_says_what_each_credential_said(emu, monkeypatch, async_path):
    identity = emu.state.add_managed_identity("7d1e0f2a-3b4c-4d5e-8f60-718293a4b5c6")
    connection = emu.connection(managed_identity_client_id=identity.client_id)
    del connection["password"]
    use(monkeypatch, connection)
    with ArrEmulator(state=emu.state) as plain:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{plain.url}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", "not-the-header")
        with pytest.raises(RemoteRenderingError) as refused:
            call(RemoteRenderingHook(CONN_ID), "get_token", async_path)
    text = str(refused.value)
    assert "DefaultAzureCredential got no token" in text
    assert "ManagedIdentityCredential" in text, text  # what the managed identity endpoint said
    assert "'managed_identity_client_id'" in text
    assert emu.state.request_counts["token"] == 0


@pytest.mark.parametrize("async_path", [False, True], ids=["sync", "async"])
def test_an_aks_workload_identity_signs_in_with_its_federated_token(emu, monkeypatch, tmp_path, async_path):
    certificate, _, key = make_rsa_certificate(tmp_path)
    principal = emu.state.add_principal(certificate=certificate, role="Client")
    token_url = f"{emu.url}/{principal.tenant_id}/oauth2/v2.0/token"
    federated = tmp_path / "azure-identity-token"
    federated.write_text(client_assertion(key, principal.client_id, token_url))
    # What AKS injects into a pod whose service account has a workload identity.
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(federated))
    monkeypatch.setenv("AZURE_CLIENT_ID", principal.client_id)
    monkeypatch.setenv("AZURE_TENANT_ID", principal.tenant_id)
    # DefaultAzureCredential hands its authority (extra authority_host) to the environment credential
    # only; workload identity reads AZURE_AUTHORITY_HOST, which AKS sets.
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", emu.url)
    connection = emu.connection(workload_identity_tenant_id=principal.tenant_id)
    del connection["password"]
    use(monkeypatch, connection)
    session_round_trip(async_path)
    assert emu.state.sts_sign_ins() == [("entra", principal.client_id)]


# ------------------------------------------------------------------ test connection, cache, log


@pytest.mark.parametrize(
    ("role", "secret", "passed", "fragment"),
    [
        ("Administrator", SECRET, True, "Connected as Microsoft Entra ID: service principal"),
        ("Client", SECRET, True, "Connected as Microsoft Entra ID"),
        (None, SECRET, False, "Remote Rendering role"),
        ("Administrator", "not-the-secret-5tR", False, "check extra 'client_secret'"),
    ],
    ids=["administrator", "client", "no-role", "wrong-secret"],
)
def test_test_connection_gets_a_token_and_makes_one_arr_call(
    emu, monkeypatch, role, secret, passed, fragment
):
    principal_connection(emu, monkeypatch, role, client_secret=secret)
    ok, message = RemoteRenderingHook(CONN_ID).test_connection()
    assert (ok, fragment in message) == (passed, True), message
    assert emu.state.request_counts["token"] == (1 if secret == SECRET else 0)
    assert emu.state.request_counts["list"] == (1 if passed else 0)
    assert SECRET not in message
    assert secret not in message


def test_the_token_cache_tells_principals_and_secrets_apart(emu, monkeypatch):
    principal_connection(emu, monkeypatch, "Administrator")
    good = RemoteRenderingHook(CONN_ID).settings
    other = emu.state.add_principal(secret="another-secret", role="Client")
    use(monkeypatch, emu.entra_connection(other))
    second = RemoteRenderingHook(CONN_ID).settings
    use(monkeypatch, emu.entra_connection(other, client_secret="a-wrong-one"))
    wrong = RemoteRenderingHook(CONN_ID).settings
    keys = {good.token_cache_key, second.token_cache_key, wrong.token_cache_key}
    assert len(keys) == 3
    assert all(SECRET not in part for key in keys for part in key)


def test_the_sign_in_is_logged_once_and_without_a_secret(emu, monkeypatch):
    lines: list[str] = []

    class Log:
        def info(self, message: str, *args: Any) -> None:
            lines.append(message % args)

    monkeypatch.setattr(entra, "_logged", set())
    principal_connection(emu, monkeypatch, "Administrator")
    for _ in range(3):
        hook = RemoteRenderingHook(CONN_ID)
        hook.log_to(Log())
        hook.settings  # noqa: B018 (reading the settings chooses the sign-in and logs it)
    assert len(lines) == 1
    assert "service principal" in lines[0]
    assert "(client secret)" in lines[0]
    assert SECRET not in lines[0]


@pytest.mark.parametrize("async_path", [False, True], ids=["sync", "async"])
def test_the_secret_the_certificate_and_both_tokens_are_masked(emu, monkeypatch, tmp_path, async_path):
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    certificate, path, _ = make_rsa_certificate(tmp_path)
    principal = emu.state.add_principal(certificate=certificate)
    use(monkeypatch, emu.entra_connection(principal, certificate_path=path))
    call(RemoteRenderingHook(CONN_ID), "get_token", async_path)
    principal_connection(emu, monkeypatch, "Administrator")
    call(RemoteRenderingHook(CONN_ID), "get_token", async_path)

    pem = Path(path).read_text().strip()
    key = pem[: pem.index("-----END PRIVATE KEY-----") + len("-----END PRIVATE KEY-----")]
    shown = [pem, key, SECRET, *emu.state.issued_entra_tokens(), *emu.state.issued_tokens()]
    assert len(shown) == 7
    for secret in shown:
        assert secret not in _secrets_masker().redact(f"text around {secret} it")


# ------------------------------------------------------------------ no cost for account-key users


def test_dag_files_and_account_key_calls_import_no_azure_identity(emulator_for_key: ArrEmulator) -> None:
    """The import-cost benchmark's modules, and a whole account-key call, load neither azure nor msal."""
    import os
    import subprocess

    script = (
        "import sys\n"
        "import airflow_provider_arr.operators.remote_rendering\n"
        "import airflow_provider_arr.sensors.remote_rendering\n"
        "from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook\n"
        "RemoteRenderingHook().list_sessions()\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('msal', 'msal_extensions')"
        " or m.startswith('azure.identity'))\n"
        "print('LOADED', loaded)\n"
    )
    env = dict(os.environ) | emulator_for_key.env()
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "LOADED []" in run.stdout


@pytest.fixture
def emulator_for_key() -> Iterator[ArrEmulator]:
    with ArrEmulator() as emulator:
        yield emulator
