"""Tokens: refresh rotation and reuse, code reuse, revocation, introspection, client
credentials for OneRoster apps, and deactivation."""

from __future__ import annotations

from server.domain import oauth, users
from server.domain.actors import system_actor
from tests.oidc.conftest import code_flow, exchange
from tests.wire import oauth_error

ROSTER_CORE = "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly"


def _tokens(http, district, scope="openid profile offline_access"):
    callback = code_flow(http, district.client_id, "lisa", "correct horse battery", scope=scope)
    response = exchange(http, district, callback["code"])
    assert response.status_code == 200, response.text
    return response.json()


def _refresh(http, district, refresh_token):
    return http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(district.client_id, district.client_secret),
    )


def test_refresh_tokens_rotate_and_reuse_revokes_the_family(http, district, database):
    first = _tokens(http, district)
    assert "refresh_token" in first
    second = _refresh(http, district, first["refresh_token"])
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]

    replay = _refresh(http, district, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # the whole family is gone: the rotated refresh token and its access token too
    oauth_error(_refresh(http, district, rotated["refresh_token"]), 400, "invalid_grant")
    with database.session() as session:
        assert oauth.authenticate_access_token(session, rotated["access_token"]) is None


def test_reusing_a_code_fails_and_revokes_what_it_issued(http, district, database):
    callback = code_flow(http, district.client_id, "lisa", "correct horse battery")
    first = exchange(http, district, callback["code"])
    assert first.status_code == 200
    again = exchange(http, district, callback["code"])
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    with database.session() as session:
        assert oauth.authenticate_access_token(session, first.json()["access_token"]) is None


def test_code_is_bound_to_its_redirect_uri_and_client(http, district):
    callback = code_flow(http, district.client_id, "lisa", "correct horse battery")
    wrong = exchange(http, district, callback["code"], redirect_uri="https://app.example/other")
    oauth_error(wrong, 400, "invalid_grant")
    bad_secret = http.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": callback["code"]},
        auth=(district.client_id, "nope"),
    )
    assert bad_secret.status_code == 401
    assert bad_secret.json()["error"] == "invalid_client"


def test_client_secret_post_works_too(http, district):
    callback = code_flow(http, district.client_id, "lisa", "correct horse battery")
    response = http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": "https://app.example/callback",
            "client_id": district.client_id,
            "client_secret": district.client_secret,
        },
    )
    assert response.status_code == 200, response.text


def test_revoking_a_refresh_token_ends_the_family(http, district, database):
    tokens = _tokens(http, district)
    revoked = http.post(
        "/oauth/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(district.client_id, district.client_secret),
    )
    assert revoked.status_code == 200
    oauth_error(_refresh(http, district, tokens["refresh_token"]), 400, "invalid_grant")
    with database.session() as session:
        assert oauth.authenticate_access_token(session, tokens["access_token"]) is None
    unknown = http.post(
        "/oauth/revoke",
        data={"token": "nothing"},
        auth=(district.client_id, district.client_secret),
    )
    assert unknown.status_code == 200


def test_introspection_tells_confidential_clients_what_a_token_grants(http, district):
    tokens = _tokens(http, district)
    auth = (district.client_id, district.client_secret)
    live = http.post("/oauth/introspect", data={"token": tokens["access_token"]}, auth=auth)
    assert live.status_code == 200
    body = live.json()
    assert body["active"] is True
    assert body["sub"] == district.students["lisa"]["id"]
    assert "openid" in body["scope"].split()
    refresh = http.post("/oauth/introspect", data={"token": tokens["refresh_token"]}, auth=auth)
    assert refresh.json()["active"] is True
    http.post("/oauth/revoke", data={"token": tokens["access_token"]}, auth=auth)
    dead = http.post("/oauth/introspect", data={"token": tokens["access_token"]}, auth=auth)
    assert dead.json() == {"active": False}
    public = http.post(
        "/oauth/introspect",
        data={"token": tokens["refresh_token"], "client_id": district.public_client_id},
    )
    oauth_error(public, 401, "invalid_client")


def test_oneroster_app_gets_a_client_credentials_token_the_api_accepts(http, district, database):
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": ROSTER_CORE},
        auth=(district.api_client_id, district.api_client_secret),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == ROSTER_CORE
    assert "refresh_token" not in body
    with database.session() as session:
        grant = oauth.authenticate_access_token(session, body["access_token"])
    assert grant is not None
    assert grant.user_id is None
    assert grant.scopes == {ROSTER_CORE}
    assert grant.tenant_id == district.tenant_id

    default = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(district.api_client_id, district.api_client_secret),
    )
    assert default.json()["scope"] == ROSTER_CORE
    other = http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "scope": "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-demographics.readonly",
        },
        auth=(district.api_client_id, district.api_client_secret),
    )
    assert other.status_code == 400
    assert other.json()["error"] == "invalid_scope"


def test_grants_are_kept_to_their_kind_of_client(http, district):
    oidc_cc = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(district.client_id, district.client_secret),
    )
    assert oidc_cc.status_code == 400
    assert oidc_cc.json()["error"] == "unauthorized_client"
    api_code = http.get(
        f"/oauth/authorize?response_type=code&client_id={district.api_client_id}"
        "&redirect_uri=https://app.example/callback"
    )
    # RFC 6749 section 4.1.2.1: no redirect to an address the client does not own, a page
    assert api_code.status_code == 400 and "location" not in api_code.headers
    assert "This sign-in link is not valid" in api_code.text


def test_deactivating_a_student_revokes_their_tokens(http, district, database):
    tokens = _tokens(http, district)
    with database.session() as session:
        user = users.get_user(
            session, system_actor(district.tenant_id), district.students["lisa"]["id"]
        )
        users.deactivate_user(session, system_actor(district.tenant_id), user)
    info = http.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert info.status_code == 401
    assert 'error="invalid_token"' in info.headers["www-authenticate"]
    oauth_error(_refresh(http, district, tokens["refresh_token"]), 400, "invalid_grant")


def test_userinfo_takes_the_token_from_the_header_or_the_body(http, district):
    tokens = _tokens(http, district, scope="openid email")
    body = http.post("/oauth/userinfo", data={"access_token": tokens["access_token"]})
    assert body.status_code == 200
    assert body.json() == {
        "sub": district.students["lisa"]["id"],
        "email": "lisa@example.org",
        "email_verified": False,
    }
    header = http.post(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert header.json() == body.json()
    assert http.get("/oauth/userinfo").status_code == 401
    no_openid = _tokens(http, district, scope="profile")
    narrow = http.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {no_openid['access_token']}"}
    )
    assert narrow.status_code == 403
    assert narrow.json()["error"] == "insufficient_scope"
    both = http.post(
        "/oauth/userinfo",
        data={"access_token": tokens["access_token"]},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    oauth_error(both, 400, "invalid_request")  # RFC 6750 section 2: one method per request
    bad = http.get("/oauth/userinfo", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]


def test_a_code_exchange_signs_without_reading_the_key_again(http, district, monkeypatch):
    """Issue 15: every exchange unsealed the RSA signing key and imported it again (the
    import checks the key: ~86 of the ~125 ms an exchange took). The key is imported once per
    process; the ID tokens still verify against the published key set with one ``kid``."""
    from joserfc import jws
    from joserfc.jwk import RSAKey

    from tests.oidc.conftest import verify_id_token

    imported: list[object] = []
    real = RSAKey.import_key.__func__

    def counting(cls, *args, **kwargs):
        imported.append(args[0])
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(RSAKey, "import_key", classmethod(counting))
    first = _tokens(http, district)["id_token"]
    imported.clear()
    second = _tokens(http, district)["id_token"]
    assert imported == []
    kids = {jws.extract_compact(t.encode()).protected["kid"] for t in (first, second)}
    assert len(kids) == 1
    for token in (first, second):
        assert verify_id_token(http, token)["sub"] == district.students["lisa"]["id"]


def test_a_code_exchange_reads_only_what_its_scopes_release(http, district, database):
    """Issue 15: an exchange read the user with its roles, grades and credential (four
    statements, a third of its CPU) to release ``sub`` and the profile claims. Roles and
    grades are read only when the ``roster`` scope asks for them (``test_code_flow.py``
    checks their values), the credential never."""
    from tests.oidc.conftest import verify_id_token
    from tests.scim.helpers import executed

    for scope, wanted in (("openid profile", set()), ("openid roster", {"roles", "grades"})):
        callback = code_flow(http, district.client_id, "lisa", "correct horse battery", scope=scope)
        with executed(database) as seen:
            response = exchange(http, district, callback["code"])
        assert response.status_code == 200, response.text
        claims = verify_id_token(http, response.json()["id_token"])
        assert claims["sub"] == district.students["lisa"]["id"]
        read = {
            name
            for name, table in (("roles", "user_roles"), ("grades", "user_grades"))
            if any(f"FROM {table}" in statement for statement, _ in seen)
        }
        assert read == wanted, (scope, read)
        assert not any("FROM credentials" in statement for statement, _ in seen), scope
