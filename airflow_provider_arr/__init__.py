"""Apache Airflow provider for Azure Remote Rendering (ARR) session management."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_PACKAGE = "airflow_provider_arr"


def _text_field(label: str, description: str, secret: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if secret:
        schema["format"] = "password"  # shown as dots in the form; masked in logs by its name too
    return {"label": label, "description": description, "schema": schema}


#: Signing in with Microsoft Entra ID instead of the account key (issue 19; names as Airflow's Azure
#: provider spells them). Used only when the Account key is empty.
_ENTRA_FIELDS = {
    "tenantId": _text_field(
        "Entra ID: tenant ID",
        "The Microsoft Entra tenant (directory) of the service principal. Needed with a client secret or a "
        "certificate; alone, it selects DefaultAzureCredential (e.g. a system-assigned managed identity).",
    ),
    "client_id": _text_field(
        "Entra ID: client ID",
        "The service principal's application (client) ID. Give its client secret or its certificate too.",
    ),
    "client_secret": _text_field(
        "Entra ID: client secret", "The service principal's client secret (masked).", secret=True
    ),
    "certificate_path": _text_field(
        "Entra ID: certificate path",
        "Instead of a client secret: a PEM file on the workers and the triggerer holding the principal's "
        "certificate and private key (RSA, unencrypted). Its contents are masked in logs.",
    ),
    "managed_identity_client_id": _text_field(
        "Entra ID: managed identity client ID",
        "The client ID of a user-assigned managed identity (alone is enough). Empty: the system-assigned "
        "identity, through DefaultAzureCredential.",
    ),
    "workload_identity_tenant_id": _text_field(
        "Entra ID: workload identity tenant ID",
        "The tenant of an AKS workload identity, when it is not the one in AZURE_TENANT_ID.",
    ),
    "authority_host": _text_field(
        "Entra ID: authority host",
        "Empty: the public cloud (login.microsoftonline.com). A sovereign cloud's host, e.g. "
        "https://login.microsoftonline.us, or the emulator's https URL. Always https.",
    ),
    "entra_scope": _text_field(
        "Entra ID: scope",
        "The scope of the token exchanged at the token service. Empty: "
        "https://sts.mixedreality.azure.com//.default (the double slash is deliberate).",
    ),
}


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow (entry point ``apache_airflow_provider``)."""
    return {
        "package-name": "airflow-provider-arr",
        "name": "Azure Remote Rendering",
        "description": "Create, extend, wait for and stop Azure Remote Rendering sessions (render VMs).",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Azure Remote Rendering",
                "external-doc-url": "https://learn.microsoft.com/azure/remote-rendering/",
                "tags": ["azure"],
            }
        ],
        "operators": [
            {
                "integration-name": "Azure Remote Rendering",
                "python-modules": [
                    f"{_PACKAGE}.operators.remote_rendering",
                    f"{_PACKAGE}.operators.janitor",
                    f"{_PACKAGE}.operators.conversion",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Azure Remote Rendering",
                "python-modules": [f"{_PACKAGE}.sensors.remote_rendering", f"{_PACKAGE}.sensors.conversion"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Azure Remote Rendering",
                "python-modules": [f"{_PACKAGE}.hooks.remote_rendering", f"{_PACKAGE}.hooks.conversions"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Azure Remote Rendering",
                "python-modules": [
                    f"{_PACKAGE}.triggers.remote_rendering",
                    f"{_PACKAGE}.triggers.conversion",
                ],
            }
        ],
        "connection-types": [
            {
                "connection-type": "azure_remote_rendering",
                "hook-class-name": f"{_PACKAGE}.hooks.remote_rendering.RemoteRenderingHook",
                "hook-name": "Azure Remote Rendering",
                "conn-fields": {
                    "region": {
                        "label": "Region",
                        "description": "Instead of the Service URL: a region such as westus2 "
                        "(https://remoterendering.<region>.mixedreality.azure.com). The Service URL wins if "
                        "both are set.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "sts_url": {
                        "label": "Token service URL",
                        "description": "The Mixed Reality token service (STS). Point it at the emulator too "
                        "when the Service URL is the emulator's (both are the emulator's URL).",
                        "schema": {
                            "type": ["string", "null"],
                            "format": "url",
                            "default": "https://sts.mixedreality.azure.com",
                        },
                    },
                    "api_version": {
                        "label": "API version",
                        "description": "v1 (empty): the v1 session API. 2021-01-01: the newer one, where "
                        "the client names each session, so a retried or cleared create reconnects to its "
                        "session.",
                        # v1 is stored as null, not "v1": Airflow hands every extra string to its secrets
                        # masker, which warns at the top of every task log about any under 5 characters.
                        "schema": {
                            "type": ["string", "null"],
                            "enum": [None, "2021-01-01"],
                            "values_display": {"null": "v1", "2021-01-01": "2021-01-01"},
                        },
                    },
                    "connect_timeout": {
                        "label": "Connect timeout (s)",
                        "description": "Seconds to wait for a TCP connection, per request. Empty: 10.",
                        "schema": {"type": ["number", "null"], "default": 10},
                    },
                    "read_timeout": {
                        "label": "Read timeout (s)",
                        "description": "Seconds to wait for an answer, per request. Empty: 30.",
                        "schema": {"type": ["number", "null"], "default": 30},
                    },
                    "retry_limit": {
                        "label": "Attempts per call",
                        "description": "Tries per call on throttling (429), server and network errors. "
                        "Empty: 6.",
                        "schema": {"type": ["integer", "null"], "default": 6, "minimum": 1},
                    },
                    "retry_max_time": {
                        "label": "Retry budget per call (s)",
                        "description": "Seconds one call may spend retrying. Empty: 120.",
                        "schema": {"type": ["number", "null"], "default": 120},
                    },
                    "retry_min_wait": {
                        "label": "Shortest wait between tries (s)",
                        "description": "The exponential backoff's first wait; a Retry-After from the service "
                        "wins. Empty: 1.",
                        "schema": {"type": ["number", "null"], "default": 1, "minimum": 0},
                    },
                    "retry_max_wait": {
                        "label": "Longest wait between tries (s)",
                        "description": "The exponential backoff's cap. Empty: 30.",
                        "schema": {"type": ["number", "null"], "default": 30},
                    },
                    **_ENTRA_FIELDS,
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "Service URL",
                        "login": "Account ID",
                        "password": "Account key (empty to sign in with Entra ID)",
                    },
                    "placeholders": {
                        "host": "https://remoterendering.westus2.mixedreality.azure.com",
                        "login": "00000000-0000-0000-0000-000000000000",
                    },
                },
            }
        ],
        "extra-links": [
            f"{_PACKAGE}.links.RemoteRenderingInspectorLink",
            f"{_PACKAGE}.links.RemoteRenderingConvertedAssetLink",
        ],
    }
