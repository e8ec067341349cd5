"""A student signs in to an app through the authorization code flow."""

from __future__ import annotations

from tests.oidc.conftest import (
    ISSUER,
    code_flow,
    exchange,
    pkce_pair,
    verify_id_token,
)


def test_student_signs_in_and_the_app_gets_a_signed_id_token(http, district):
    callback = code_flow(http, district.client_id, "LISA", "correct horse battery", nonce="n-1")
    token = exchange(http, district, callback["code"])
    assert token.status_code == 200, token.text
    body = token.json()
    assert "refresh_token" not in body
    claims = verify_id_token(http, body["id_token"])
    assert claims["iss"] == ISSUER
    assert claims["aud"] == [district.client_id]
    assert claims["nonce"] == "n-1"
    assert claims["sub"] == district.students["lisa"]["id"]
    assert claims["preferred_username"] == "lisa"
    assert claims["email"] == "lisa@example.org"
    assert claims["class_ids"] == [district.students["lisa"]["class"]]
    assert claims["school_ids"] == [district.students["lisa"]["school"]]
    assert claims["grades"] == ["02"]
    assert "student" in claims["roles"]
    assert claims["auth_time"] <= claims["iat"]

    info = http.get("/oauth/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200
    assert info.json()["sub"] == claims["sub"]


def test_public_client_must_use_pkce_with_s256(http, district):
    start = http.get(
        "/oauth/authorize?response_type=code&scope=openid&redirect_uri=https://app.example/callback"
        f"&client_id={district.public_client_id}&state=s"
    )
    assert start.status_code == 302
    assert "error=invalid_request" in start.headers["location"]

    verifier, challenge = pkce_pair()
    plain = http.get(
        "/oauth/authorize?response_type=code&scope=openid&redirect_uri=https://app.example/callback"
        f"&client_id={district.public_client_id}&code_challenge={verifier}"
        "&code_challenge_method=plain"
    )
    assert "error=invalid_request" in plain.headers["location"]

    callback = code_flow(
        http,
        district.public_client_id,
        "lisa",
        "correct horse battery",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    data = {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": "https://app.example/callback",
        "client_id": district.public_client_id,
    }
    wrong = http.post("/oauth/token", data={**data, "code_verifier": pkce_pair()[0]})
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
