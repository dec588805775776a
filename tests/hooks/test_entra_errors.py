"""Signing in with Microsoft Entra ID (issue 19): errors that say what to fix, before any HTTP where they
can; Test connection; the token cache, the log line and masking; no cost for account-key users.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("azure.identity")


from airflow_provider_arr.emulator import ArrEmulator
from airflow_provider_arr.emulator.tls import make_self_signed_cert
from airflow_provider_arr.exceptions import RemoteRenderingError
from airflow_provider_arr.hooks import entra
from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook
from airflow_provider_arr.models import ArrInputError
from tests.helpers import make_rsa_certificate
from tests.hooks.entra_support import (
    CONN_ID,
    DIALECTS,
    SECRET,
    call,
    logged,
    principal_connection,
    use,
)

IN = "https://contosoin.blob.core.windows.net/models"
OUT = "https://contosoout.blob.core.windows.net/assets"


# ------------------------------------------------------------------ errors that say what to fix


@pytest.mark.parametrize("api_version", DIALECTS)
def test_a_client_principal_conversion_fails_naming_the_role(entra_emu, monkeypatch, api_version):
    principal_connection(entra_emu, monkeypatch, "Client", api_version)
    with RemoteRenderingHook(CONN_ID) as hook, pytest.raises(RemoteRenderingError) as refused:
        hook.create_conversion(IN, "house.fbx", OUT)
    assert refused.value.http_status == 403
    assert "Remote Rendering Administrator role" in str(refused.value)
    assert entra_emu.state.conversions() == []


@pytest.mark.parametrize("async_path", [False, True], ids=["sync", "async"])
def test_a_wrong_secret_fails_fast_naming_the_field_never_the_secret(
    entra_emu, monkeypatch, caplog, capsys, async_path
):
    caplog.set_level(logging.DEBUG)
    principal = entra_emu.state.add_principal(secret=SECRET)
    wrong = "wrong-secret-value-4Kd8"
    use(monkeypatch, entra_emu.entra_connection(principal, client_secret=wrong, retry_limit=6))

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
    assert entra_emu.state.request_counts["entra_token"] == 1  # asked once
    assert entra_emu.state.request_counts["token"] == 0  # the STS was never asked


@pytest.mark.parametrize("async_path", [False, True], ids=["sync", "async"])
def test_a_wrong_certificate_fails_fast_naming_the_field(entra_emu, monkeypatch, tmp_path, async_path):
    registered, _, _ = make_rsa_certificate(tmp_path, "registered")
    _, another_path, _ = make_rsa_certificate(tmp_path, "another")
    principal = entra_emu.state.add_principal(certificate=registered)
    use(monkeypatch, entra_emu.entra_connection(principal, certificate_path=another_path, retry_limit=6))

    with pytest.raises(RemoteRenderingError) as refused:
        call(RemoteRenderingHook(CONN_ID), "get_token", async_path)

    assert "check extra 'certificate_path'" in str(refused.value)
    assert "AADSTS700027" in str(refused.value)
    assert entra_emu.state.request_counts["entra_token"] == 1  # not retried
    assert entra_emu.state.request_counts["token"] == 0


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
    pytest.param({"tenantId": "contoso tenant"}, "extra 'tenantId': has characters", id="tenant-spaces"),
    pytest.param({"entra_scope": "https://sts x/.default"}, "extra 'entra_scope'", id="scope-spaces"),
    pytest.param(
        {"client_id": "c", "tenantId": "t", "certificate_path": "/no/such/file.pem"},
        "extra 'certificate_path'",
        id="certificate-unreadable",
    ),
]


@pytest.mark.parametrize(("extra", "field"), MISSING_FIELDS)
@pytest.mark.parametrize("async_path", [False, True], ids=["sync", "async"])
def test_missing_or_bad_fields_fail_before_any_http(entra_emu, monkeypatch, extra, field, async_path):
    connection = entra_emu.connection(**extra)
    del connection["password"]
    use(monkeypatch, connection)
    hook = RemoteRenderingHook(CONN_ID)
    with pytest.raises(ArrInputError, match=field) as refused:
        call(hook, "list_sessions", async_path)
    assert SECRET not in str(refused.value)
    assert sum(entra_emu.state.request_counts.values()) == 0
    assert entra_emu.state.issued_entra_tokens() == []


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        pytest.param({"role": None}, "has a Remote Rendering role", id="no-role"),
        pytest.param(
            {"entra_scope": "https://sts.westus2.mixedreality.azure.com/.default"}, "entra_scope", id="scope"
        ),
    ],
)
def test_an_sts_refusal_in_entra_mode_names_the_likely_cause(entra_emu, monkeypatch, setup, fragment):
    setup = dict(setup)
    principal_connection(entra_emu, monkeypatch, setup.pop("role", "Administrator"), **setup)
    with pytest.raises(RemoteRenderingError) as refused:
        RemoteRenderingHook(CONN_ID).get_token()
    assert refused.value.http_status == 401
    assert fragment in str(refused.value)
    assert "account key" not in str(refused.value)


def test_a_missing_azure_identity_names_the_extra_to_install(entra_emu, monkeypatch):
    principal_connection(entra_emu, monkeypatch, "Administrator")
    monkeypatch.setitem(sys.modules, "azure.identity", None)  # import fails as if not installed
    with pytest.raises(RemoteRenderingError, match=r"pip install 'airflow-provider-arr\[entra\]'"):
        RemoteRenderingHook(CONN_ID).get_token()
    assert entra_emu.state.request_counts["token"] == 0


@pytest.mark.parametrize("async_path", [False, True], ids=["sync", "async"])
def test_tls_to_entra_is_verified_with_the_standard_variables(entra_emu, monkeypatch, tmp_path, async_path):
    principal_connection(entra_emu, monkeypatch, "Administrator")
    stranger, _ = make_self_signed_cert(tmp_path)  # a CA that did not sign the emulator's certificate
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", stranger)
    monkeypatch.setenv("SSL_CERT_FILE", stranger)
    with pytest.raises(RemoteRenderingError) as refused:
        call(RemoteRenderingHook(CONN_ID), "get_token", async_path)
    assert "is not trusted: check extra 'authority_host', and REQUESTS_CA_BUNDLE" in str(refused.value)
    assert entra_emu.state.request_counts["entra_token"] == 0  # the secret never went to an unverified host
    assert entra_emu.state.issued_entra_tokens() == []


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
    entra_emu, monkeypatch, role, secret, passed, fragment
):
    principal_connection(entra_emu, monkeypatch, role, client_secret=secret)
    ok, message = RemoteRenderingHook(CONN_ID).test_connection()
    assert (ok, fragment in message) == (passed, True), message
    assert entra_emu.state.request_counts["token"] == (1 if secret == SECRET else 0)
    assert entra_emu.state.request_counts["list"] == (1 if passed else 0)
    assert SECRET not in message
    assert secret not in message


def test_the_token_cache_tells_principals_and_secrets_apart(entra_emu, monkeypatch):
    principal_connection(entra_emu, monkeypatch, "Administrator")
    good = RemoteRenderingHook(CONN_ID).settings
    other = entra_emu.state.add_principal(secret="another-secret", role="Client")
    use(monkeypatch, entra_emu.entra_connection(other))
    second = RemoteRenderingHook(CONN_ID).settings
    use(monkeypatch, entra_emu.entra_connection(other, client_secret="a-wrong-one"))
    wrong = RemoteRenderingHook(CONN_ID).settings
    keys = {good.token_cache_key, second.token_cache_key, wrong.token_cache_key}
    assert len(keys) == 3
    assert all(SECRET not in part for key in keys for part in key)


def test_the_sign_in_is_logged_once_and_without_a_secret(entra_emu, monkeypatch):
    lines: list[str] = []

    class Log:
        def info(self, message: str, *args: Any) -> None:
            lines.append(message % args)

    monkeypatch.setattr(entra, "_logged", set())
    principal_connection(entra_emu, monkeypatch, "Administrator")
    for _ in range(3):
        hook = RemoteRenderingHook(CONN_ID)
        hook.log_to(Log())
        hook.settings  # noqa: B018 (reading the settings chooses the sign-in and logs it)
    assert len(lines) == 1
    assert "service principal" in lines[0]
    assert "(client secret)" in lines[0]
    assert SECRET not in lines[0]


@pytest.mark.parametrize("async_path", [False, True], ids=["sync", "async"])
def test_the_secret_the_certificate_and_both_tokens_are_masked(entra_emu, monkeypatch, tmp_path, async_path):
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    certificate, path, _ = make_rsa_certificate(tmp_path)
    principal = entra_emu.state.add_principal(certificate=certificate)
    use(monkeypatch, entra_emu.entra_connection(principal, certificate_path=path))
    call(RemoteRenderingHook(CONN_ID), "get_token", async_path)
    principal_connection(entra_emu, monkeypatch, "Administrator")
    call(RemoteRenderingHook(CONN_ID), "get_token", async_path)

    pem = Path(path).read_text().strip()
    key = pem[: pem.index("-----END PRIVATE KEY-----") + len("-----END PRIVATE KEY-----")]
    shown = [pem, key, SECRET, *entra_emu.state.issued_entra_tokens(), *entra_emu.state.issued_tokens()]
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
