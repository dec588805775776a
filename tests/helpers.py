"""Small helpers the test modules import (``from tests.helpers import ...``); fixtures stay in conftest.py.

The suite's one fast-retry setting lives here rather than in ``airflow_provider_arr.pytest_plugin``:
the plugin's ``FAST_RETRY_EXTRAS`` is what a user's DAG tests get from the ``arr_emulator`` fixture, a
public default with a more lenient budget, and changing it to the suite's numbers (or the suite's to
its numbers) would change either the users' tests or ours. The reliability tests tighten this setting
further for their fault injection; see ``tests/reliability/conftest.py``.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import pytest

#: The installed Airflow's (major, minor): the suites run on each supported minor (scripts/compat.sh).
AIRFLOW_VERSION = tuple(int(part) for part in version("apache-airflow").split(".")[:2])


def needs_airflow(minimum: tuple[int, int], why: str) -> pytest.MarkDecorator:
    """Skip a test of Airflow's own behaviour on a release older than ``minimum``, saying why."""
    return pytest.mark.skipif(
        minimum > AIRFLOW_VERSION,
        reason=f"needs Airflow {minimum[0]}.{minimum[1]}: {why}",
    )


#: Connection extras that keep retries fast against the emulator: tests that provoke a retry wait at
#: most 0.2 s per attempt, a call gives up after 5 s, and a hung answer times out after 5 s.
FAST_RETRIES: dict[str, Any] = {
    "retry_min_wait": 0.05,
    "retry_max_wait": 0.2,
    "retry_max_time": 5,
    "read_timeout": 5,
}


def make_rsa_certificate(directory: Any, name: str = "principal") -> tuple[bytes, str, Any]:
    """A self-signed RSA certificate for a service principal (Entra client assertions are RS256/PS256).

    :return: the certificate (PEM), the path of a PEM file holding the key and the certificate (what
        ``certificate_path`` names), and the private key (to sign assertions by hand).
    """
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = Path(directory) / f"{name}.pem"
    path.write_bytes(key_pem + certificate_pem)
    return certificate_pem, str(path), key


def client_assertion(key: Any, client_id: str, audience: str, lifetime: int = 600) -> str:
    """A client assertion (JWT) as a service principal signs it with its certificate's key."""
    import time
    import uuid

    import jwt

    now = int(time.time())
    claims = {"aud": audience, "iss": client_id, "sub": client_id, "jti": str(uuid.uuid4())}
    return jwt.encode(claims | {"nbf": now, "exp": now + lifetime}, key, algorithm="RS256")
