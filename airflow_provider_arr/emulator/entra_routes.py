"""The emulated Microsoft Entra ID's routes: OpenID discovery, the token endpoint, managed identity.

- ``GET /{tenant}/v2.0/.well-known/openid-configuration``: MSAL (the sync confidential clients of
  azure-identity) reads the token endpoint from it. The emulator must serve https for these: MSAL and
  azure-identity refuse an authority that is not https.
- ``POST /{tenant}/oauth2/v2.0/token``: OAuth client credentials, with ``client_secret`` or a
  ``client_assertion`` signed with the principal's certificate.
- ``GET /msi/token``: the App Service managed-identity endpoint (``IDENTITY_ENDPOINT``, checked against
  ``IDENTITY_HEADER``). azure-identity reads it over plain http, so a test serves it from a second,
  http emulator on the same state.
"""

from __future__ import annotations

import math
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from starlette.responses import Response

from airflow_provider_arr.emulator.entra import ENTRA_TOKEN_LIFETIME, EntraError
from airflow_provider_arr.emulator.responses import NO_CACHE_HEADERS, json_response
from airflow_provider_arr.emulator.state import EmulatorState

#: The managed-identity endpoint's path (``IDENTITY_ENDPOINT=<http emulator URL>/msi/token``).
MANAGED_IDENTITY_PATH = "/msi/token"


def build_entra_router(state: EmulatorState) -> APIRouter:
    """Return the Entra ID routes.

    :param state: the emulator state that holds the principals.
    """
    router = APIRouter(tags=["Microsoft Entra ID (emulated)"])

    @router.get("/{tenant_id}/v2.0/.well-known/openid-configuration")
    async def openid_configuration(tenant_id: str, request: Request) -> Response:
        """The tenant's OpenID configuration: where its token endpoint is."""
        state.count_entra_call("entra_discovery")
        if not state.knows_tenant(tenant_id):
            error = EntraError(400, "invalid_tenant", f"AADSTS90002: Tenant '{tenant_id}' not found.")
            return json_response(error.body(), error.status)
        base = f"{str(request.base_url).rstrip('/')}/{tenant_id}"
        return json_response(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "tenant_region_scope": "NA",
            }
        )

    @router.post("/{tenant_id}/oauth2/v2.0/token")
    async def token(tenant_id: str, request: Request) -> Response:
        """OAuth 2.0 client credentials: an access token for ``scope``, or an OAuth error."""
        state.count_entra_call("entra_token")
        form = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))
        token_url = str(request.url.replace(query=""))
        try:
            access_token = state.client_credentials_token(tenant_id, form, token_url)
        except EntraError as error:
            return json_response(error.body(), error.status)
        body = {
            "token_type": "Bearer",
            "expires_in": ENTRA_TOKEN_LIFETIME,
            "ext_expires_in": ENTRA_TOKEN_LIFETIME,
            "access_token": access_token,
        }
        return json_response(body, headers=NO_CACHE_HEADERS)

    @router.get(MANAGED_IDENTITY_PATH)
    async def managed_identity(request: Request) -> Response:
        """App Service managed identity: a token for ``resource``, of ``client_id`` or the system identity."""
        state.count_entra_call("managed_identity")
        resource = request.query_params.get("resource", "")
        try:
            access_token = state.managed_identity_token(
                request.headers.get("x-identity-header", ""),
                resource,
                request.query_params.get("client_id"),
            )
        except EntraError as error:
            return json_response({"statusCode": error.status, "message": error.description}, error.status)
        expires_on = math.floor(state.wall_clock()) + ENTRA_TOKEN_LIFETIME
        body = {
            "access_token": access_token,
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
        }
        return json_response(body, headers=NO_CACHE_HEADERS)

    return router
