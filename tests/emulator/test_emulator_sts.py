"""The emulated STS, over a real loopback socket."""

from __future__ import annotations

import jwt
import pytest


def test_token_answer_looks_like_the_real_sts(client, emulator, check_headers):
    response = client.get(
        f"/accounts/{emulator.account_id}/token",
        headers={"Authorization": f"Bearer {emulator.account_id}:{emulator.account_key}"},
    )
    assert response.status_code == 200
    assert list(response.json()) == ["AccessToken"]
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store, no-cache"
    assert response.headers["Pragma"] == "no-cache"
    check_headers(response)


def test_token_is_a_jwt_with_expiry_and_account(client, emulator, get_token):
    claims = jwt.decode(
        get_token(emulator.account_id, emulator.account_key), options={"verify_signature": False}
    )
    assert claims["accountId"] == emulator.account_id
    assert claims["iss"]
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] - claims["iat"] == 3600  # the shared emulator's token_lifetime


def test_sdk_style_path_and_api_version_are_accepted(client, emulator):
    response = client.get(
        f"/Accounts/{emulator.account_id.upper()}/token",
        params={"api-version": "2019-02-28-preview"},
        headers={
            "Authorization": f"Bearer {emulator.account_id}:{emulator.account_key}",
            "Accept": "application/json",
            "X-MRC-CV": "rYMXram6J3KCsUkTE9Jqwq",  # the SDK's client correlation vector
        },
    )
    assert response.status_code == 200
    assert emulator.state.verify_token(response.json()["AccessToken"]) == emulator.account_id


def test_each_token_is_distinct(emulator, get_token):
    assert get_token(emulator.account_id, emulator.account_key) != get_token(
        emulator.account_id, emulator.account_key
    )


def test_added_account_gets_its_own_token(emulator, get_token):
    account_id, account_key = emulator.state.add_account()
    claims = jwt.decode(get_token(account_id, account_key), options={"verify_signature": False})
    assert claims["accountId"] == account_id


@pytest.mark.parametrize(
    "case",
    ["wrong key", "no header", "unknown account", "other account in header", "basic scheme", "no colon"],
)
def test_rejections_are_empty_401s(client, emulator, check_headers, case):
    account, key = emulator.account_id, emulator.account_key
    path_account, header = account, f"Bearer {account}:{key}"
    if case == "wrong key":
        header = f"Bearer {account}:not-the-key"
    elif case == "unknown account":
        path_account = "00000000-0000-0000-0000-000000000001"
        header = f"Bearer {path_account}:{key}"
    elif case == "other account in header":
        other, other_key = emulator.state.add_account()
        header = f"Bearer {other}:{other_key}"
    elif case == "basic scheme":
        header = f"Basic {account}:{key}"
    elif case == "no colon":
        header = f"Bearer {account}{key}"
    headers = {} if case == "no header" else {"Authorization": header}
    response = client.get(f"/accounts/{path_account}/token", headers=headers)
    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    check_headers(response)
    assert emulator.state.request_counts["token"] == 1
