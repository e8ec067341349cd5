"""Malformed requests to every endpoint of the provider."""

from __future__ import annotations

from starlette.testclient import TestClient

from server.app import create_app
from tests.oidc.conftest import ISSUER, REDIRECT


def test_malformed_requests_get_protocol_errors_never_a_crash(app_context, district):
    """Bad input answers 4xx in the protocol's own format; a quote in a parameter too."""
    app = create_app(app_context.settings, database=app_context.database)
    c = TestClient(app, base_url=ISSUER, follow_redirects=False, raise_server_exceptions=False)
    cid = district.client_id
    probes = [
        (
            "GET",
            f'/oauth/authorize?client_id={cid}&response_type=code&redirect_uri=https://x/"a\\b',
        ),
        (
            "GET",
            f"/oauth/authorize?client_id={cid}&response_type=code&redirect_uri={REDIRECT}&code_challenge=%22%22&code_challenge_method=S256",
        ),
        (
            "GET",
            f"/oauth/authorize?client_id={cid}&response_type=code&redirect_uri={REDIRECT}&scope=openid&prompt=none%20login",
        ),
        ("GET", f"/oauth/authorize?client_id={cid}&response_type=token&redirect_uri={REDIRECT}"),
        ("GET", "/oauth/authorize?client_id=%00&response_type=code"),
        ("GET", "/oauth/authorize"),
        ("GET", f"/oauth/authorize?client_id={cid}&client_id=x&response_type=code"),
        ("POST", "/oauth/token"),
        ("POST", "/oauth/token?grant_type=authorization_code"),
        ("POST", "/oauth/introspect"),
        ("POST", "/oauth/revoke"),
        ("GET", "/oauth/logout?id_token_hint=abc.def.ghi"),
        ("GET", "/oauth/logout?id_token_hint=%%%"),
        ("GET", "/oauth/logout?post_logout_redirect_uri=https://x"),
        ("GET", "/login?next=//evil.example"),
        ("POST", "/login"),
        ("GET", "/login/change"),
        ("POST", "/login/badge"),
        ("GET", "/login/badge?badge=zzz"),
        ("GET", "/activate/xyz"),
        ("POST", "/activate/xyz"),
        ("GET", "/oauth/userinfo?access_token=x"),
    ]
    for method, url in probes:
        r = c.request(method, url)
        assert r.status_code < 500, (url, r.text[:300])
    for body in [
        b'{"a":1}',
        b"\xff\xfe",
        b"grant_type=refresh_token&refresh_token=",
        b"grant_type=client_credentials&scope=%22",
    ]:
        r = c.post(
            "/oauth/token",
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
            auth=(district.api_client_id, district.api_client_secret),
        )
        assert r.status_code < 500
    r = c.post("/oauth/token", content=b'{"a":1}', headers={"content-type": "application/json"})
    assert r.status_code < 500
