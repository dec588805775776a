"""Signing in with Microsoft Entra ID: the first leg of the token service's exchange.

The Mixed Reality token service (STS) takes either ``Bearer <account id>:<account key>`` or
``Bearer <Entra access token>`` for the Mixed Reality STS resource; the STS answer, and every ARR call
after it, are the same either way. This module gets that Entra token with ``azure-identity``, which is
the optional extra ``airflow-provider-arr[entra]`` and imported only here, only when a connection signs
in with Entra ID (DAG files and account-key users pay nothing).

- The sync path uses the sync credentials; the async path (triggers, the shared poller) uses
  ``azure.identity.aio``. One credential per request to the token service (an attempt of the STS
  call), created on the calling thread or event loop and closed right after: STS tokens are cached
  for hours, and an async credential kept across event loops leaks its HTTP session
  (apache/airflow#55724).
- The async credentials run on azure-core's ``AsyncioRequestsTransport`` (``requests`` in a worker
  thread), so no aiohttp is needed, and TLS is verified the same way on both paths: the system's trust
  store (certifi through ``requests``), or ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` when set.
- A custom ``authority_host`` switches MSAL's instance discovery off (it would call a Microsoft host).
- A refused credential is not retried (it cannot get better); the error names the fields to check and
  never quotes a secret.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import re
import ssl
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_arr.exceptions import RemoteRenderingError
from airflow_provider_arr.hooks.settings import (
    ACCOUNT_KEY,
    CERTIFICATE,
    CLIENT_SECRET,
    DEFAULT_CREDENTIAL,
    ConnectionSettings,
)
from airflow_provider_arr.models import ArrInputError

if TYPE_CHECKING:
    from airflow_provider_arr.hooks.transport import Request

#: What to install for Entra ID sign-in.
ENTRA_EXTRA = "airflow-provider-arr[entra]"
#: The operation named in errors of the Entra leg (the same as the STS call it is part of).
OPERATION = "get_token"

#: azure-core logs every request and response of the Entra leg at INFO (headers, URLs): not in task logs.
AZURE_HTTP_LOGGER = "azure.core.pipeline.policies.http_logging_policy"

#: (connection id, sign-in) pairs already logged by this process: the mode is logged once.
_logged: set[tuple[str, str]] = set()
_logged_lock = threading.Lock()


def describe(settings: ConnectionSettings) -> str:
    """How the connection signs in, in words, without any secret.

    :param settings: the connection's settings.
    :return: e.g. ``service principal 1b2c... of tenant 72f9... (client secret)``.
    """
    if settings.sign_in == ACCOUNT_KEY:
        return "the account key"
    if settings.sign_in in (CLIENT_SECRET, CERTIFICATE):
        kind = "client secret" if settings.sign_in == CLIENT_SECRET else "certificate"
        principal = f"service principal {settings.client_id} of tenant {settings.tenant_id}"
        return f"Microsoft Entra ID: {principal} ({kind})"
    details = []
    if settings.managed_identity_client_id:
        details.append(f"managed identity client id {settings.managed_identity_client_id}")
    if settings.workload_identity_tenant_id:
        details.append(f"workload identity tenant {settings.workload_identity_tenant_id}")
    suffix = f" ({', '.join(details)})" if details else ""
    return f"Microsoft Entra ID: DefaultAzureCredential{suffix}"


def log_sign_in_once(conn_id: str, settings: ConnectionSettings, log: Any) -> None:
    """Log how a connection signs in, once per process and connection (never a secret).

    :param conn_id: the connection id.
    :param settings: its settings.
    :param log: the logger to write to.
    """
    with _logged_lock:
        if (conn_id, settings.sign_in) in _logged:
            return
        _logged.add((conn_id, settings.sign_in))
    if settings.uses_entra:
        log.info("Connection %s signs in to the token service with %s", conn_id, describe(settings))
    else:
        log.info(
            "Connection %s signs in to the token service with the account key "
            "(Microsoft recommends account keys for development only; see 'Signing in with Entra ID')",
            conn_id,
        )


def entra_token(settings: ConnectionSettings) -> str:
    """Get an Entra access token for ``settings.entra_scope`` with a sync credential (closed after).

    :param settings: a connection that signs in with Entra ID.
    :return: the access token (a secret: the caller masks it).
    :raises RemoteRenderingError: the credential was refused or could not be used; names the fields.
    """
    certificate = None
    if settings.sign_in == CERTIFICATE:
        certificate = certificate_data(settings)
        from airflow_provider_arr._compat import mask_secret

        for secret in _pem_secrets(certificate):
            mask_secret(secret)
    identity = _identity("azure.identity")
    try:
        credential = _credential(settings, identity, certificate, asynchronous=False)
        with credential:
            return str(credential.get_token(settings.entra_scope).token)
    except Exception as error:
        raise _failure(settings, error) from None


async def aentra_token(settings: ConnectionSettings) -> str:
    """Async :func:`entra_token`: an ``azure.identity.aio`` credential made on this loop, closed after.

    :param settings: a connection that signs in with Entra ID.
    :return: the access token (a secret: the caller masks it).
    :raises RemoteRenderingError: the credential was refused or could not be used; names the fields.
    """
    certificate = None
    if settings.sign_in == CERTIFICATE:
        certificate = await asyncio.to_thread(certificate_data, settings)  # no file I/O on the loop
        from airflow_provider_arr._compat import amask_secret

        for secret in _pem_secrets(certificate):
            await amask_secret(secret)
    identity = _identity("azure.identity.aio")
    try:
        credential = _credential(settings, identity, certificate, asynchronous=True)
        async with credential:
            return str((await credential.get_token(settings.entra_scope)).token)
    except Exception as error:
        raise _failure(settings, error) from None


def certificate_data(settings: ConnectionSettings) -> bytes:
    """The PEM file of ``certificate_path`` (read here, so that the hook can mask its contents).

    :param settings: a connection that signs in with a certificate.
    :raises ArrInputError: naming ``certificate_path`` if the file cannot be read.
    """
    assert settings.certificate_path is not None
    try:
        return Path(settings.certificate_path).read_bytes()
    except OSError as error:
        raise ArrInputError(
            "extra 'certificate_path'",
            f"cannot be read ({error.strerror or type(error).__name__}): {settings.certificate_path!r}",
        ) from None


def _pem_secrets(pem: bytes) -> list[str]:
    """What to mask of a certificate file: the whole text, and its private key block.

    Not each line: every masked value recompiles the masker's pattern, which grows with each.
    """
    text = pem.decode("ascii", errors="ignore").strip()
    found = re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", text, re.S)
    return [text, found.group(0)] if found else [text]


def sts_refused_hint(settings: ConnectionSettings) -> str:
    """What an STS 401 means when the bearer was an Entra token."""
    return (
        f"The token service refused the Microsoft Entra ID token of {describe(settings)}: check that the "
        f"identity has a Remote Rendering role (Administrator or Client) on account {settings.account_id}, "
        f"the tenant (extra 'tenantId'), and the scope (extra 'entra_scope', now {settings.entra_scope!r})."
    )


def forbidden_hint(operation: str) -> str:
    """What an ARR 403 means when the connection signs in with Entra ID: a missing data-plane role.

    :param operation: the hook operation that was refused, e.g. ``create_conversion``.
    """
    if "conversion" in operation:
        return (
            "The identity lacks the Remote Rendering Administrator role on the account, which conversions "
            "need (Remote Rendering Client allows sessions only; Owner is not enough)."
        )
    return (
        "The identity lacks a Remote Rendering role on the account: sessions need Remote Rendering "
        "Client or Administrator (Owner is not enough)."
    )


def _identity(module: str) -> Any:
    """Import ``azure.identity`` (or its ``aio``) on first use, naming the extra if it is missing."""
    http_logger = logging.getLogger(AZURE_HTTP_LOGGER)
    if http_logger.level == logging.NOTSET:  # a level the deployment set is left alone
        http_logger.setLevel(logging.WARNING)
    try:
        return importlib.import_module(module)
    except ImportError:
        raise RemoteRenderingError(
            OPERATION,
            service_message="azure-identity is not installed",
            hint=f"Signing in with Microsoft Entra ID needs it: pip install '{ENTRA_EXTRA}' "
            "(or set the connection's password, the account key).",
        ) from None


def _credential(
    settings: ConnectionSettings, identity: Any, certificate: bytes | None, asynchronous: bool
) -> Any:
    """The credential for the connection's sign-in, from ``azure.identity`` or ``azure.identity.aio``."""
    options: dict[str, Any] = {"connection_verify": _trust()}
    if asynchronous:
        from azure.core.pipeline.transport import AsyncioRequestsTransport

        options["transport"] = AsyncioRequestsTransport(connection_verify=options["connection_verify"])
    if settings.authority_host is not None:
        options |= {"authority": settings.authority_host, "disable_instance_discovery": True}
    if settings.sign_in == CLIENT_SECRET:
        return identity.ClientSecretCredential(
            settings.tenant_id, settings.client_id, settings.client_secret, **options
        )
    if settings.sign_in == CERTIFICATE:
        return identity.CertificateCredential(
            settings.tenant_id, settings.client_id, certificate_data=certificate, **options
        )
    if settings.managed_identity_client_id is not None:  # also alone, unlike Airflow's Azure helper
        options["managed_identity_client_id"] = settings.managed_identity_client_id
    if settings.workload_identity_tenant_id is not None:
        options["workload_identity_tenant_id"] = settings.workload_identity_tenant_id
        options["additionally_allowed_tenants"] = [settings.workload_identity_tenant_id]
    return identity.DefaultAzureCredential(**options)


def _trust() -> str | bool:
    """The CA bundle to verify Entra ID's certificate with: the standard variables, else the default."""
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if os.environ.get(name):
            return os.environ[name]
    return True


def _failure(settings: ConnectionSettings, error: Exception) -> RemoteRenderingError:
    """The error for a failed Entra leg: what went wrong (no secret) and which fields to check."""
    from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

    reason = _reason(settings, error)
    if settings.sign_in == CLIENT_SECRET:
        fields = "extra 'client_secret' (and 'client_id', 'tenantId')"
    elif settings.sign_in == CERTIFICATE:
        fields = "extra 'certificate_path' (and 'client_id', 'tenantId')"
    else:
        fields = (
            "the identity of this machine (managed identity, workload identity, environment), "
            "extras 'managed_identity_client_id' and 'workload_identity_tenant_id'"
        )
    where = settings.authority_host or "login.microsoftonline.com (or AZURE_AUTHORITY_HOST)"
    causes = _causes(error)
    if any(isinstance(cause, ssl.SSLError) for cause in causes) or "CERTIFICATE_VERIFY_FAILED" in reason:
        hint = (
            f"The TLS certificate of Microsoft Entra ID at {where} is not trusted: check extra "
            "'authority_host', and REQUESTS_CA_BUNDLE / SSL_CERT_FILE if you set them."
        )
    elif any(isinstance(cause, ServiceRequestError | ConnectionError) for cause in causes):
        hint = f"Microsoft Entra ID at {where} could not be reached: check extra 'authority_host'."
    elif isinstance(error, ClientAuthenticationError) and settings.sign_in == DEFAULT_CREDENTIAL:
        hint = (
            f"DefaultAzureCredential got no token (what each credential said is above): check {fields}; "
            "or set a service principal (client_id with client_secret or certificate_path, tenantId), "
            "or the password (account key)."
        )
    elif isinstance(error, ClientAuthenticationError):
        hint = f"Microsoft Entra ID refused the sign-in: check {fields}."
    else:
        hint = f"Signing in with Microsoft Entra ID at {where} failed: check {fields}, and 'authority_host'."
    return RemoteRenderingError(OPERATION, service_message=reason, hint=hint)


def _causes(error: BaseException) -> list[BaseException]:
    """The error and the errors it was raised from or during (MSAL wraps a network error in its own)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _reason(settings: ConnectionSettings, error: Exception) -> str:
    """The library's message on one line, at most 1500 characters, any secret of the connection blanked.

    DefaultAzureCredential's message lists what each credential it tried said: that is kept.
    """
    text = " ".join(str(getattr(error, "message", None) or error).split())[:1500] or type(error).__name__
    for secret in (settings.client_secret, settings.account_key):
        if secret:
            text = text.replace(secret, "***")
    return text


def explained(
    error: RemoteRenderingError, request: Request, settings: ConnectionSettings
) -> RemoteRenderingError:
    """An Entra ID call's error with a hint that fits: an STS 401 its likely cause, an ARR 403 the role."""
    if request.sts and error.http_status == 401:
        return error.with_hint(sts_refused_hint(settings))
    if not request.sts and error.http_status == 403:
        return error.with_hint(forbidden_hint(request.operation))
    return error
