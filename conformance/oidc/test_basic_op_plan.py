"""The OpenID Foundation Basic OP and Config OP test plans, played by a relying party
(Authlib's client) against a live Rollcall on 127.0.0.1.

Each test is named after the suite's module (``oidcc-…``). Modules that need features
Rollcall does not offer check the clean refusal instead: request objects are refused with
``request_not_supported`` / ``request_uri_not_supported``, unsigned ID tokens are never
issued, and address/phone scopes add no claims.
"""

from __future__ import annotations

import time

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from conformance.oidc.conftest import (
    LOGOUT_REDIRECT,
    REDIRECT,
    callback_params,
    decode_id_token,
    new_nonce,
)

REQUIRED_METADATA = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "response_types_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
)


def _code_flow(op, *, scope="openid", browser=None, auth_method="client_secret_basic", **params):
    """Run the whole code flow; returns (token response, browser, nonce)."""
    browser = browser or op.browser()
    rp = op.rp(scope=scope, token_endpoint_auth_method=auth_method)
    nonce = params.pop("nonce", new_nonce())
    if nonce is not None:
        params["nonce"] = nonce
    url, state = rp.create_authorization_url(op.metadata()["authorization_endpoint"], **params)
    callback = browser.authorize(url)
    assert callback_params(callback).get("state") == state
    token = rp.fetch_token(op.metadata()["token_endpoint"], authorization_response=callback)
    return token, browser, nonce


def _check_id_token(op, token, nonce=None):
    header, claims = decode_id_token(op, token["id_token"])
    assert header["alg"] == "RS256" and header["kid"]
    assert claims["iss"] == op.issuer
    assert op.client_id in claims["aud"]
    now = time.time()
    assert claims["iat"] <= now + 5 and claims["exp"] > now
    assert claims["sub"] == op.user_id
    if nonce:
        assert claims["nonce"] == nonce
    assert "auth_time" in claims
    return claims


def test_oidcc_discovery_endpoint_verification(op):
    metadata = op.metadata()
    for name in REQUIRED_METADATA:
        assert name in metadata, name
    assert metadata["issuer"] == op.issuer
    assert "code" in metadata["response_types_supported"]
    assert "RS256" in metadata["id_token_signing_alg_values_supported"]
    assert "openid" in metadata["scopes_supported"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        assert metadata[endpoint].startswith(op.issuer + "/")


def test_oidcc_server_jwks_is_valid_and_keys_have_kid(op):
    keys = httpx.get(op.metadata()["jwks_uri"]).json()["keys"]
    assert keys
    for key in keys:
        assert key["kid"] and key["use"] == "sig"
        assert "d" not in key and "p" not in key
    assert {"RSA", "EC"} <= {key["kty"] for key in keys}


def test_oidcc_server_code_flow(op):
    token, _browser, nonce = _code_flow(op)
    assert token["token_type"] == "Bearer"
    _check_id_token(op, token, nonce)


def test_oidcc_id_token_signature(op):
    token, _browser, _ = _code_flow(op)
    header, _claims = decode_id_token(op, token["id_token"])
    assert header["kid"] in {key.kid for key in op.key_set().keys}


def test_oidcc_id_token_unsigned_is_never_issued(op):
    assert "none" not in op.metadata()["id_token_signing_alg_values_supported"]


def test_oidcc_response_type_missing(op):
    browser = op.browser()
    response = browser.open(
        f"/oauth/authorize?client_id={op.client_id}&redirect_uri={REDIRECT}&scope=openid&state=x"
    )
    assert response.status_code == 302
    params = callback_params(response.headers["location"])
    assert params["error"] == "unsupported_response_type"
    assert params["state"] == "x"


def test_oidcc_userinfo_get(op):
    token, _, _ = _code_flow(op, scope="openid profile")
    response = httpx.get(
        op.metadata()["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert response.status_code == 200
    assert response.json()["sub"] == op.user_id


def test_oidcc_userinfo_post_header(op):
    token, _, _ = _code_flow(op)
    response = httpx.post(
        op.metadata()["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert response.status_code == 200 and response.json()["sub"] == op.user_id


def test_oidcc_userinfo_post_body(op):
    token, _, _ = _code_flow(op)
    response = httpx.post(
        op.metadata()["userinfo_endpoint"], data={"access_token": token["access_token"]}
    )
    assert response.status_code == 200 and response.json()["sub"] == op.user_id


def test_oidcc_ensure_request_without_nonce_succeeds_for_code_flow(op):
    token, _, _ = _code_flow(op, nonce=None)
    _header, claims = decode_id_token(op, token["id_token"])
    assert "nonce" not in claims


@pytest.mark.parametrize(
    ("scope", "expected", "absent"),
    [
        ("openid profile", {"name", "given_name", "family_name", "preferred_username"}, {"email"}),
        ("openid email", {"email"}, {"name"}),
        ("openid address", set(), {"address", "email"}),
        ("openid phone", set(), {"phone_number"}),
        ("openid profile email address phone roster", {"name", "email", "roles", "grades"}, set()),
    ],
    ids=["scope-profile", "scope-email", "scope-address", "scope-phone", "scope-all"],
)
def test_oidcc_scope(op, scope, expected, absent):
    token, _, _ = _code_flow(op, scope=scope)
    info = httpx.get(
        op.metadata()["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {token['access_token']}"},
    ).json()
    assert expected <= set(info)
    assert not (absent & set(info))


@pytest.mark.parametrize("display", ["page", "popup"])
def test_oidcc_display(op, display):
    token, _, nonce = _code_flow(op, display=display)
    _check_id_token(op, token, nonce)


def test_oidcc_prompt_login(op):
    token, browser, _ = _code_flow(op)
    first = _check_id_token(op, token)
    time.sleep(1.1)
    again, _, _ = _code_flow(op, browser=browser, prompt="login")
    second = _check_id_token(op, again)
    assert second["auth_time"] > first["auth_time"]


def test_oidcc_prompt_none_not_logged_in(op):
    rp = op.rp()
    url, state = rp.create_authorization_url(op.metadata()["authorization_endpoint"], prompt="none")
    params = callback_params(op.browser().authorize(url, sign_in=False))
    assert params["error"] == "login_required" and params["state"] == state


def test_oidcc_prompt_none_logged_in(op):
    _, browser, _ = _code_flow(op)
    rp = op.rp()
    url, _state = rp.create_authorization_url(
        op.metadata()["authorization_endpoint"], prompt="none"
    )
    callback = browser.authorize(url, sign_in=False)
    token = rp.fetch_token(op.metadata()["token_endpoint"], authorization_response=callback)
    _check_id_token(op, token)


def test_oidcc_max_age_1(op):
    first, browser, _ = _code_flow(op)
    time.sleep(1.5)
    rp = op.rp()
    url, _ = rp.create_authorization_url(op.metadata()["authorization_endpoint"], max_age="1")
    asked = browser.open(url)
    assert asked.headers["location"].startswith("/login")
    token, _, _ = _code_flow(op, browser=browser, max_age="1")
    assert _check_id_token(op, token)["auth_time"] > _check_id_token(op, first)["auth_time"]


def test_oidcc_max_age_10000(op):
    first, browser, _ = _code_flow(op)
    rp = op.rp()
    url, _ = rp.create_authorization_url(op.metadata()["authorization_endpoint"], max_age="10000")
    callback = browser.authorize(url, sign_in=False)
    token = rp.fetch_token(op.metadata()["token_endpoint"], authorization_response=callback)
    assert _check_id_token(op, token)["auth_time"] == _check_id_token(op, first)["auth_time"]


@pytest.mark.parametrize(
    "extra",
    [
        {"extra_param": "bogus"},
        {"login_hint": "lisa"},
        {"ui_locales": "se"},
        {"claims_locales": "se"},
        {"acr_values": "1 2"},
        {"claims": '{"id_token":{"email":{"essential":true}}}'},
    ],
    ids=[
        "unknown-parameter",
        "login-hint",
        "ui-locales",
        "claims-locales",
        "acr-values",
        "claims-essential",
    ],
)
def test_oidcc_ignores_what_it_does_not_use(op, extra):
    token, _, nonce = _code_flow(op, **extra)
    _check_id_token(op, token, nonce)


def test_oidcc_id_token_hint(op):
    first, browser, _ = _code_flow(op)
    token, _, _ = _code_flow(op, browser=browser, id_token_hint=first["id_token"], prompt="none")
    _check_id_token(op, token)


def test_oidcc_codereuse(op):
    rp = op.rp()
    url, _ = rp.create_authorization_url(op.metadata()["authorization_endpoint"])
    callback = op.browser().authorize(url)
    first = rp.fetch_token(op.metadata()["token_endpoint"], authorization_response=callback)
    code = callback_params(callback)["code"]
    reuse = httpx.post(
        op.metadata()["token_endpoint"],
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=(op.client_id, op.client_secret),
    )
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    # codereuse-30seconds: the access token issued from the code no longer works
    info = httpx.get(
        op.metadata()["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {first['access_token']}"},
    )
    assert info.status_code == 401


def test_oidcc_registered_redirect_uri(op):
    rp = op.rp(redirect_uri="https://rp.example/not-registered")
    url, _ = rp.create_authorization_url(op.metadata()["authorization_endpoint"])
    response = op.browser().open(url)
    assert response.status_code == 400
    assert "location" not in response.headers


def test_oidcc_server_post_request(op):
    browser = op.browser()
    rp = op.rp()
    nonce = new_nonce()
    url, state = rp.create_authorization_url(op.metadata()["authorization_endpoint"], nonce=nonce)
    form = callback_params(url)
    callback = browser.authorize("/oauth/authorize", method="POST", data=form)
    assert callback_params(callback)["state"] == state
    token = rp.fetch_token(op.metadata()["token_endpoint"], authorization_response=callback)
    _check_id_token(op, token, nonce)


def test_oidcc_server_client_secret_post(op):
    token, _, nonce = _code_flow(op, auth_method="client_secret_post")
    _check_id_token(op, token, nonce)


@pytest.mark.parametrize(
    ("parameter", "error"),
    [("request", "request_not_supported"), ("request_uri", "request_uri_not_supported")],
)
def test_oidcc_request_objects_are_refused_cleanly(op, parameter, error):
    rp = op.rp()
    value = "eyJhbGciOiJub25lIn0.e30." if parameter == "request" else "https://rp.example/req"
    url, _ = rp.create_authorization_url(
        op.metadata()["authorization_endpoint"], **{parameter: value}
    )
    params = callback_params(op.browser().authorize(url))
    assert params["error"] == error


def test_oidcc_refresh_token_rotation_and_reuse_detection(op):
    token, _, _ = _code_flow(op, scope="openid offline_access")
    original = token["refresh_token"]
    rp = op.rp(token=dict(token))
    refreshed = rp.refresh_token(op.metadata()["token_endpoint"], refresh_token=original)
    assert refreshed["refresh_token"] != original
    replay = httpx.post(
        op.metadata()["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": original},
        auth=(op.client_id, op.client_secret),
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    after = httpx.post(
        op.metadata()["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
        auth=(op.client_id, op.client_secret),
    )
    assert after.status_code == 400


def test_oidcc_pkce_s256_success_and_failure(op):
    metadata = op.metadata()
    rp = op.rp(
        client_id=op.public_client_id,
        client_secret=None,
        token_endpoint_auth_method="none",
        code_challenge_method="S256",
    )
    verifier = new_nonce() * 4
    url, _ = rp.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)
    assert create_s256_code_challenge(verifier) in url
    browser = op.browser()
    callback = browser.authorize(url)
    token = rp.fetch_token(
        metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    assert token["access_token"]

    url, _ = rp.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)
    callback = browser.authorize(url)
    wrong = httpx.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": callback_params(callback)["code"],
            "redirect_uri": REDIRECT,
            "client_id": op.public_client_id,
            "code_verifier": "x" * 64,
        },
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


def test_rfc7009_revocation(op):
    token, _, _ = _code_flow(op, scope="openid offline_access")
    rp = op.rp(token=token)
    rp.revoke_token(
        op.metadata()["revocation_endpoint"],
        token["refresh_token"],
        token_type_hint="refresh_token",
    )
    info = httpx.get(
        op.metadata()["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert info.status_code == 401


def test_rp_initiated_logout(op):
    token, browser, _ = _code_flow(op)
    metadata = op.metadata()
    out = browser.open(
        metadata["end_session_endpoint"]
        + f"?id_token_hint={token['id_token']}&post_logout_redirect_uri={LOGOUT_REDIRECT}"
        + "&state=s1"
    )
    assert out.status_code == 302
    assert out.headers["location"] == f"{LOGOUT_REDIRECT}?state=s1"
    rp = op.rp()
    url, _ = rp.create_authorization_url(metadata["authorization_endpoint"], prompt="none")
    assert callback_params(browser.authorize(url, sign_in=False))["error"] == "login_required"
