"""A throwaway self-signed certificate, so the emulator can serve https to clients that insist on it.

The official Azure SDK sends bearer tokens only over https; point it (or ``requests``, ``httpx``) at
the certificate file to trust it::

    certfile, keyfile = make_self_signed_cert(tmp_path)
    with ArrEmulator(certfile=certfile, keyfile=keyfile) as emulator:
        requests.get(emulator.url + "/_emulator/counts", verify=certfile)
        httpx.get(emulator.url + "/_emulator/counts", verify=ssl.create_default_context(cafile=certfile))
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILE_NAME = "arr-emulator-cert.pem"
KEY_FILE_NAME = "arr-emulator-key.pem"
DEFAULT_HOSTNAMES = ("localhost", "127.0.0.1", "::1")


def make_self_signed_cert(
    directory: str | os.PathLike[str],
    hostnames: Sequence[str] = DEFAULT_HOSTNAMES,
    valid_days: int = 7,
) -> tuple[str, str]:
    """Write a self-signed certificate and its private key (PEM, unencrypted) into a directory.

    The certificate is its own trust anchor: a client that trusts the certificate file accepts the
    server, also under Python's strict X.509 checks. It is for tests and local demos only.

    :param directory: an existing directory, e.g. pytest's ``tmp_path``.
    :param hostnames: the names and IP addresses the certificate is valid for.
    :param valid_days: how long it is valid, from an hour ago.
    :return: the paths of the certificate file and the key file.
    """
    if not hostnames:
        raise ValueError("hostnames must name at least one host name or IP address")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    now = datetime.now(UTC)
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=valid_days))
        .add_extension(
            x509.SubjectAlternativeName([_general_name(host) for host in hostnames]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = Path(directory)
    certfile, keyfile = folder / CERT_FILE_NAME, folder / KEY_FILE_NAME
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    keyfile.chmod(0o600)
    return str(certfile), str(keyfile)


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
