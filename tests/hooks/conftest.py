"""Fixtures of the hook tests that sign in with Microsoft Entra ID (issue 19): an https emulator.

Entra clients speak only https, so the emulator serves its self-signed certificate, which the tests
trust through the standard variables (as a deployment would trust its CA).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_arr.emulator import ArrEmulator
from airflow_provider_arr.emulator.tls import make_self_signed_cert

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
def entra_tls_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArrEmulator]:
    certfile, keyfile = make_self_signed_cert(tmp_path_factory.mktemp("tls"))
    with ArrEmulator(start_delay=0.1, certfile=certfile, keyfile=keyfile) as emulator:
        yield emulator


@pytest.fixture
def entra_emu(entra_tls_emulator: ArrEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[ArrEmulator]:
    """The https emulator, fresh, trusted through the standard variables; no Azure identity of the host."""
    emulator = entra_tls_emulator
    emulator.state.reset()
    emulator.state.conversion_delay = 0.1
    for name in AZURE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emulator.certfile))  # requests (sync)
    monkeypatch.setenv("SSL_CERT_FILE", str(emulator.certfile))  # httpx (async)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "prod")  # no developer credentials (CLI, ...)
    yield emulator
    emulator.state.reset()
