"""The emulator's Microsoft Entra ID: discovery, client credentials, managed identity, the STS, roles.

Tested from the outside with plain httpx over https (Entra clients refuse anything else), never
through the hook or azure-identity.
"""

from __future__ import annotations

import argparse
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_arr.emulator import ArrEmulator
from airflow_provider_arr.emulator.cli import banner, build_parser, parse_principal
from airflow_provider_arr.emulator.entra import DEFAULT_TENANT_ID, Principal
from airflow_provider_arr.emulator.tls import make_self_signed_cert
from tests.emulator.test_emulator_conversions import settings as conversion_settings
from tests.emulator.test_emulator_conversions import v1_body
from tests.helpers import client_assertion, make_rsa_certificate

SCOPE = "https://sts.mixedreality.azure.com//.default"
SECRET = "emulated-client-secret-Qx7"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module")
def tls_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArrEmulator]:
    certfile, keyfile = make_self_signed_cert(tmp_path_factory.mktemp("tls"))
    with ArrEmulator(start_delay=0.05, certfile=certfile, keyfile=keyfile) as emulator:
        yield emulator


@pytest.fixture
def emu(tls_emulator: ArrEmulator) -> Iterator[ArrEmulator]:
    tls_emulator.state.reset()
    yield tls_emulator
    tls_emulator.state.reset()


@pytest.fixture
def http(tls_emulator: ArrEmulator) -> Iterator[httpx.Client]:
    context = ssl.create_default_context(cafile=tls_emulator.certfile)
    with httpx.Client(base_url=tls_emulator.url, verify=context) as client:
        yield client


def token_url(emu: ArrEmulator, tenant: str = DEFAULT_TENANT_ID) -> str:
    return f"{emu.url}/{tenant}/oauth2/v2.0/token"


def entra_token(http: httpx.Client, emu: ArrEmulator, principal: Principal, secret: str = SECRET) -> str:
    form = {"grant_type": "client_credentials", "client_id": principal.client_id}
    answer = http.post(token_url(emu), data=form | {"scope": SCOPE, "client_secret": secret})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def sts(http: httpx.Client, emu: ArrEmulator, bearer: str) -> httpx.Response:
    return http.get(f"/accounts/{emu.account_id}/token", headers={"Authorization": f"Bearer {bearer}"})


def test_openid_discovery_names_the_https_token_endpoint_of_known_tenants_only(emu, http):
    emu.state.add_principal(secret=SECRET)

    known = http.get(f"/{DEFAULT_TENANT_ID}/v2.0/.well-known/openid-configuration")
    unknown = http.get("/00000000-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration")

    assert known.status_code == 200
    assert known.json()["token_endpoint"] == token_url(emu)
    assert known.json()["authorization_endpoint"].startswith(f"{emu.url}/{DEFAULT_TENANT_ID}/")
    assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid_tenant")


REFUSED_REQUESTS = [
    pytest.param({"client_secret": "wrong-secret"}, 401, "invalid_client", id="wrong-secret"),
    pytest.param({"client_secret": None}, 401, "invalid_client", id="no-credential"),
    pytest.param({"client_id": "someone-else"}, 400, "unauthorized_client", id="unknown-client"),
    pytest.param({"grant_type": "password"}, 400, "unsupported_grant_type", id="grant-type"),
    pytest.param({"scope": "https://sts.mixedreality.azure.com/"}, 400, "invalid_scope", id="scope"),
    pytest.param({"tenant": "other-tenant"}, 400, "unauthorized_client", id="other-tenant"),
]


@pytest.mark.parametrize(("change", "status", "error"), REFUSED_REQUESTS)
def test_the_token_endpoint_refuses_as_entra_does_never_quoting_the_secret(emu, http, change, status, error):
    principal = emu.state.add_principal(secret=SECRET)
    form = {"grant_type": "client_credentials", "client_id": principal.client_id, "scope": SCOPE}
    form["client_secret"] = SECRET
    change = dict(change)
    tenant = change.pop("tenant", DEFAULT_TENANT_ID)
    form = {name: value for name, value in (form | change).items() if value is not None}

    answer = http.post(token_url(emu, tenant), data=form)

    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert answer.json()["error_description"].startswith("AADSTS")
    assert SECRET not in answer.text
    assert "wrong-secret" not in answer.text


def test_a_secret_gets_an_app_token_for_the_mixed_reality_sts(emu, http):
    principal = emu.state.add_principal(secret=SECRET)
    form = {"grant_type": "client_credentials", "client_id": principal.client_id, "scope": SCOPE}

    answer = http.post(token_url(emu), data=form | {"client_secret": SECRET})

    assert answer.status_code == 200
    body = answer.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3599)
    import jwt

    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://sts.mixedreality.azure.com/"
    assert (claims["tid"], claims["appid"]) == (DEFAULT_TENANT_ID, principal.client_id)
    assert emu.state.issued_entra_tokens() == [body["access_token"]]


@pytest.mark.parametrize(
    ("signer", "audience", "status"),
    [
        pytest.param("own", "token-url", 200, id="own-certificate"),
        pytest.param("other", "token-url", 401, id="another-key"),
        pytest.param("own", "https://login.microsoftonline.com/x/oauth2/v2.0/token", 401, id="audience"),
    ],
)
def test_a_client_assertion_is_checked_against_the_principal_certificate(
    emu, http, tmp_path, signer, audience, status
):
    certificate, _, key = make_rsa_certificate(tmp_path, "own")
    _, _, other_key = make_rsa_certificate(tmp_path, "other")
    principal = emu.state.add_principal(certificate=certificate)
    aud = token_url(emu) if audience == "token-url" else audience
    assertion = client_assertion(key if signer == "own" else other_key, principal.client_id, aud)
    form = {"grant_type": "client_credentials", "client_id": principal.client_id, "scope": SCOPE}

    answer = http.post(
        token_url(emu), data=form | {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    )

    assert answer.status_code == status, answer.text


@pytest.mark.parametrize(
    ("role", "sts_status"),
    [("Administrator", 200), ("Client", 200), (None, 401)],
    ids=["administrator", "client", "no-role"],
)
def test_the_sts_takes_an_entra_token_only_of_an_identity_with_a_role(emu, http, role, sts_status):
    principal = emu.state.add_principal(secret=SECRET, role=role)

    answer = sts(http, emu, entra_token(http, emu, principal))

    assert answer.status_code == sts_status
    assert emu.state.sts_sign_ins() == [("entra", principal.client_id if role else "refused")]
    if role:
        assert answer.json()["AccessToken"] in emu.state.issued_tokens()


def test_the_sts_refuses_an_entra_token_for_another_resource_or_a_forged_one(emu, http):
    principal = emu.state.add_principal(secret=SECRET)
    form = {"grant_type": "client_credentials", "client_id": principal.client_id, "client_secret": SECRET}
    regional = http.post(
        token_url(emu), data=form | {"scope": "https://sts.westus2.mixedreality.azure.com/.default"}
    ).json()["access_token"]
    good = entra_token(http, emu, principal)
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")

    assert sts(http, emu, regional).status_code == 401
    assert sts(http, emu, forged).status_code == 401
    assert sts(http, emu, good).status_code == 200


def arr_calls(emu: ArrEmulator) -> dict[str, tuple[str, str, dict[str, Any]]]:
    account = f"accounts/{emu.account_id}"
    v2021 = {"api-version": "2021-01-01"}
    return {
        "v1 conversion": ("POST", f"/v1/{account}/conversions/create", {"json": v1_body()}),
        "2021 conversion": (
            "PUT",
            f"/{account}/conversions/c1",
            {"json": conversion_settings(), "params": v2021},
        ),
        "2021 conversion list": ("GET", f"/{account}/conversions", {"params": v2021}),
        "v1 sessions": ("GET", f"/v1/{account}/sessions", {}),
        "2021 sessions": ("GET", f"/{account}/sessions", {"params": v2021}),
    }


@pytest.mark.parametrize(
    ("role", "call", "status"),
    [
        ("Client", "v1 conversion", 403),
        ("Client", "2021 conversion", 403),
        ("Client", "2021 conversion list", 403),
        ("Client", "v1 sessions", 200),
        ("Client", "2021 sessions", 200),
        ("Administrator", "v1 conversion", 202),
        ("Administrator", "2021 conversion", 201),
        ("Administrator", "2021 sessions", 200),
    ],
)
def test_arr_routes_need_the_role_conversions_need_administrator(emu, http, role, call, status):
    principal = emu.state.add_principal(secret=SECRET, role=role)
    token = sts(http, emu, entra_token(http, emu, principal)).json()["AccessToken"]
    method, path, options = arr_calls(emu)[call]

    answer = http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **options)

    assert answer.status_code == status, answer.text
    if status == 403:
        assert "Remote Rendering Administrator" in answer.text


@pytest.mark.parametrize(
    ("header", "client_id", "status"),
    [
        pytest.param("right", None, 200, id="system-assigned"),
        pytest.param("right", "user-assigned", 200, id="user-assigned"),
        pytest.param("wrong", None, 401, id="wrong-identity-header"),
        pytest.param("right", "unknown-client", 400, id="unknown-identity"),
    ],
)
def test_the_app_service_managed_identity_endpoint(emu, header, client_id, status):
    emu.state.add_managed_identity()
    user = emu.state.add_managed_identity("0e4c9a5b-1111-4222-8333-944455556666", role="Client")
    query = {"api-version": "2019-08-01", "resource": "https://sts.mixedreality.azure.com/"}
    if client_id is not None:
        query["client_id"] = user.client_id if client_id == "user-assigned" else client_id
    identity_header = emu.state.identity_header if header == "right" else "nope"
    # azure-identity reads this endpoint over plain http: a second, http emulator on the same state.
    with ArrEmulator(state=emu.state) as plain:
        answer = httpx.get(
            f"{plain.url}/msi/token", params=query, headers={"X-IDENTITY-HEADER": identity_header}
        )
        assert answer.status_code == status, answer.text
        if status == 200:
            exchanged = httpx.get(
                f"{plain.url}/accounts/{emu.account_id}/token",
                headers={"Authorization": f"Bearer {answer.json()['access_token']}"},
            )
            assert exchanged.status_code == 200
            assert int(answer.json()["expires_on"]) > 0


def test_principals_from_the_command_line(emu):
    parser = build_parser()
    args = parser.parse_args(
        ["--principal", "0d5c1e2f-aaaa-4bbb-8ccc-123456789abc:s:e:c:r:e:t:Client", "--certfile", "x"]
    )
    assert args.principal == [("0d5c1e2f-aaaa-4bbb-8ccc-123456789abc", "s:e:c:r:e:t", "Client")]
    emu.state.add_principal(*args.principal[0])
    text = banner("https://127.0.0.1:8710", emu.state)
    assert "AIRFLOW_CONN_ARR_ENTRA" in text
    assert '"authority_host": "https://127.0.0.1:8710"' in text
    assert "s:e:c:r:e:t" not in text


@pytest.mark.parametrize("value", ["id:secret:Owner", "id:Client", ":secret:Client", "id::Client"])
def test_a_bad_principal_flag_is_refused_without_showing_it(value):
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        parse_principal(value)
    assert value not in str(refused.value)
    assert "(the value is not shown)" in str(refused.value)
