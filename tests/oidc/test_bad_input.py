"""Malformed requests to every endpoint of the provider."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from starlette.testclient import TestClient

from server.app import create_app
from tests.oidc.conftest import ISSUER, REDIRECT
from tests.wire import page_refusal


# What each malformed request must answer, in the protocol's own format:
#   ("redirect", error): a 302 back to the registered redirect URI carrying ``error=`` (RFC 6749
#     §4.1.2.1: once client and redirect URI are trusted, errors go to the client);
#   ("page", title): an HTML page and no redirect (§4.1.2.1: an unknown client or redirect URI
#     is never redirected to; OIDC RP-Initiated Logout §3 likewise for logout);
#   ("json", status, error): an OAuth error body (RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 7662 §2.3);
#   ("to", location): a redirect inside Rollcall.
def _probes(cid: str) -> list[tuple[str, str, tuple]]:
    authorize = f"/oauth/authorize?client_id={cid}&response_type=code&redirect_uri={REDIRECT}"
    invalid_link = ("page", 400, "This sign-in link is not valid")
    signed_out = ("page", 400, "You are signed out")
    unauthenticated = ("json", 401, "invalid_client")
    return [
        (
            "GET",
            f'/oauth/authorize?client_id={cid}&response_type=code&redirect_uri=https://x/"a\\b',
            invalid_link,
        ),
        (
            "GET",
            f"{authorize}&code_challenge=%22%22&code_challenge_method=S256",
            ("redirect", "invalid_request"),
        ),
        ("GET", f"{authorize}&scope=openid&prompt=none%20login", ("redirect", "invalid_request")),
        (
            "GET",
            f"/oauth/authorize?client_id={cid}&response_type=token&redirect_uri={REDIRECT}",
            ("redirect", "unsupported_response_type"),
        ),
        ("GET", "/oauth/authorize?client_id=%00&response_type=code", invalid_link),
        ("GET", "/oauth/authorize", invalid_link),
        ("GET", f"/oauth/authorize?client_id={cid}&client_id=x&response_type=code", invalid_link),
        ("POST", "/oauth/token", ("json", 400, "unsupported_grant_type")),
        ("POST", "/oauth/token?grant_type=authorization_code", unauthenticated),
        ("POST", "/oauth/introspect", unauthenticated),
        ("POST", "/oauth/revoke", unauthenticated),
        ("GET", "/oauth/logout?id_token_hint=abc.def.ghi", signed_out),
        ("GET", "/oauth/logout?id_token_hint=%%%", signed_out),
        ("GET", "/oauth/logout?post_logout_redirect_uri=https://x", signed_out),
        ("POST", "/login", ("page", 400, "The page was open too long")),
        ("GET", "/login/change", ("to", "/login?next=")),
        ("POST", "/login/badge", ("page", 400, "The page was open too long")),
        ("GET", "/login/badge?badge=zzz", ("page", 200, "Sign in with your badge")),  # no oracle
        ("GET", "/activate/xyz", ("page", 410, "This link has expired")),
        ("POST", "/activate/xyz", ("page", 410, "This link has expired")),
    ]


def _check(response, expected: tuple, where: str) -> None:
    kind, *details = expected
    if kind == "redirect":
        assert response.status_code == 302, where
        location = urlsplit(response.headers["location"])
        assert location._replace(query="").geturl() == REDIRECT, where
        assert parse_qs(location.query)["error"] == [details[0]], where
    elif kind == "page":
        page_refusal(response, *details)
    elif kind == "json":
        status, error = details
        assert response.status_code == status, where
        assert response.headers["content-type"] == "application/json", where
        assert response.json()["error"] == error, where
    else:
        assert response.status_code == 303 and response.headers["location"] == details[0], where


def test_malformed_requests_get_protocol_errors_never_a_crash(app_context, district):
    """Bad input answers 4xx in the protocol's own format; a quote in a parameter too."""
    app = create_app(app_context.settings, database=app_context.database)
    c = TestClient(app, base_url=ISSUER, follow_redirects=False, raise_server_exceptions=False)
    for method, url, expected in _probes(district.client_id):
        response = c.request(method, url)
        _check(response, expected, f"{method} {url}: {response.status_code} {response.text[:300]}")
    api = (district.api_client_id, district.api_client_secret)
    for body, error in [
        (b'{"a":1}', "unsupported_grant_type"),
        (b"\xff\xfe", "unsupported_grant_type"),
        (b"grant_type=refresh_token&refresh_token=", "unauthorized_client"),
        (b"grant_type=client_credentials&scope=%22", "invalid_scope"),
    ]:
        form = {"content-type": "application/x-www-form-urlencoded"}
        response = c.post("/oauth/token", content=body, headers=form, auth=api)
        _check(response, ("json", 400, error), f"{body!r}: {response.text[:300]}")
    response = c.post(
        "/oauth/token", content=b'{"a":1}', headers={"content-type": "application/json"}
    )
    _check(response, ("json", 400, "unsupported_grant_type"), response.text[:300])


def test_a_sign_in_page_never_carries_an_outside_next_address(http):
    page = http.get("/login?next=//evil.example")
    assert page.status_code == 200 and 'name="next" value=""' in page.text
    assert "evil.example" not in page.text


def test_userinfo_without_a_token_it_takes_gets_the_bearer_challenge(http):
    """RFC 6750 §3 (OIDC Core §5.3.3): a request without authentication it accepts (here the
    token in the query string, §2.3, which this endpoint does not take) gets 401 and the bare
    ``Bearer`` challenge: no error code, and never a made-up one."""
    for answer in (http.get("/oauth/userinfo?access_token=x"), http.get("/oauth/userinfo")):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == 'Bearer realm="userinfo"'
        assert "missing_authorization" not in answer.text
