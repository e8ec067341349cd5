"""Headless Chromium signs an SSO-linked student in through the district's provider (issue 17).

Both Rollcalls run on 127.0.0.1: the one under test, and a second one playing the district's
OpenID Connect provider (``tests/oidc/upstream_provider.py``). The student presses "Sign in
with Clever", signs in there, and lands back at the app, which gets Rollcall's ID token.
"""

from __future__ import annotations

from dataclasses import replace

import httpx

from server.app import create_app
from server.domain import oauth
from server.domain.actors import system_actor
from tests.live import bound_socket, serving, url_of
from tests.oidc.conftest import (
    REDIRECT,
    authorize_url,
    exchange,
    phone_at_the_app,
    query_of,
    verify_id_token,
)
from tests.oidc.upstream_provider import (
    Upstream,
    provision_twin,
    sign_in_at_clever,
    upstream_fixture,  # noqa: F401 (fixture 'upstream')
)


def register_at_upstream(upstream: Upstream, callback: str) -> Upstream:
    """The district registers this Rollcall's callback as a client of its provider."""
    with upstream.database.session() as session:
        actor = system_actor(upstream.tenant_id, "clever")
        client = oauth.create_client(session, actor, "Rollcall live", redirect_uris=[callback])
        return replace(upstream, client_id=client.client.client_id, client_secret=client.secret)


def test_sso_student_signs_in_through_clever_in_a_real_browser(
    settings, database, box, district, upstream, browser
):
    sock = bound_socket()
    base = url_of(sock)
    registered = register_at_upstream(upstream, base + "/login/upstream/callback")
    twin = provision_twin(database, box, district, registered)
    app = create_app(replace(settings, issuer=base), database=database)
    with serving(app, sock), phone_at_the_app(browser) as (page, landed):
        page.goto(base + authorize_url(district.client_id, state="app-state"))
        sign_in_at_clever(page, upstream)
        page.wait_for_url(REDIRECT + "*")
        assert page.get_by_role("heading").inner_text() == "Welcome back"
        query = query_of(landed[-1])
        assert query["state"] == "app-state"
        with httpx.Client(base_url=base) as http:
            token = exchange(http, district, query["code"])
            assert token.status_code == 200, token.text
            claims = verify_id_token(http, token.json()["id_token"])
    assert claims["iss"] == base and claims["sub"] == twin.twin_id
    assert claims["amr"] == ["fed"] and claims["acr"] == upstream.url
