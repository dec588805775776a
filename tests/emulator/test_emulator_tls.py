"""The emulator over https with a self-signed certificate: in-process and from the command line."""

from __future__ import annotations

import ipaddress
import os
import ssl
import stat
from collections.abc import Iterator

import httpx
import pytest
import requests
from cryptography import x509

from airflow_provider_arr.emulator import ArrEmulator
from airflow_provider_arr.emulator.cli import main
from airflow_provider_arr.emulator.process import EmulatorProcess
from airflow_provider_arr.emulator.tls import make_self_signed_cert


@pytest.fixture(scope="module")
def cert_and_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return make_self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_emulator(cert_and_key: tuple[str, str]) -> Iterator[ArrEmulator]:
    certfile, keyfile = cert_and_key
    with ArrEmulator(certfile=certfile, keyfile=keyfile) as emulator:
        yield emulator


def token_headers(emulator: ArrEmulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {emulator.account_id}:{emulator.account_key}"}


def test_certificate_names_loopback_and_key_is_private(cert_and_key):
    certfile, keyfile = cert_and_key
    with open(certfile, "rb") as pem:
        certificate = x509.load_pem_x509_certificate(pem.read())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert stat.S_IMODE(os.stat(keyfile).st_mode) == 0o600


def test_serves_https_to_clients_that_trust_the_certificate(tls_emulator, cert_and_key):
    certfile, _ = cert_and_key
    assert tls_emulator.url.startswith("https://127.0.0.1:")
    assert tls_emulator.certfile == certfile
    path = f"/accounts/{tls_emulator.account_id}/token"
    with httpx.Client(
        base_url=tls_emulator.url, verify=ssl.create_default_context(cafile=certfile)
    ) as client:
        token = client.get(path, headers=token_headers(tls_emulator)).json()["AccessToken"]
    assert tls_emulator.state.verify_token(token) == tls_emulator.account_id
    answer = requests.get(
        tls_emulator.url + path, headers=token_headers(tls_emulator), verify=certfile, timeout=5
    )
    assert answer.status_code == 200


def test_certificate_passes_strict_x509_checks(tls_emulator, cert_and_key):
    # Python 3.13 turns VERIFY_X509_STRICT on by default; the certificate must pass it on every version.
    context = ssl.create_default_context(cafile=cert_and_key[0])
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    with httpx.Client(base_url=tls_emulator.url, verify=context) as client:
        assert client.get("/_emulator/counts").status_code == 200


def test_untrusting_and_plain_http_clients_are_turned_away(tls_emulator):
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(tls_emulator.url + "/_emulator/counts")
    plain = tls_emulator.url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(plain + "/_emulator/counts", timeout=2)


def test_keyfile_needs_a_certfile(cert_and_key):
    with pytest.raises(TypeError, match="certfile"):
        ArrEmulator(keyfile=cert_and_key[1])


@pytest.mark.parametrize(
    "argv", [["--keyfile", "key.pem"], ["--certfile", "/nonexistent/cert.pem"], ["--page-size", "0"]]
)
def test_cli_refuses_bad_tls_and_paging_options(argv):
    with pytest.raises(SystemExit):
        main(argv)


def test_cli_serves_https(cert_and_key):
    certfile, keyfile = cert_and_key
    with EmulatorProcess("--certfile", certfile, "--keyfile", keyfile, start_delay=0) as process:
        first_line = process.banner[0].strip()
        assert first_line.startswith("ARR_EMULATOR_URL=https://127.0.0.1:"), process.output()
        url = first_line.removeprefix("ARR_EMULATOR_URL=")
        banner = process.banner[1:9]
        assert any(certfile in line for line in banner)
        assert any(line.startswith("export AIRFLOW_CONN_ARR_DEFAULT=") and url in line for line in banner)
        with httpx.Client(
            base_url=url, verify=ssl.create_default_context(cafile=certfile), timeout=5
        ) as client:
            assert client.get("/_emulator/counts").json() == {}
