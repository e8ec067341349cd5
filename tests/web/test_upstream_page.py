"""Staff set the sign-in provider of an SSO connection in the admin UI (issue 17).

The provider is a second Rollcall on 127.0.0.1 (``tests/oidc/upstream_provider.py``): the page
discovers it before storing anything.
"""

from __future__ import annotations

from sqlalchemy import select

from server.db import Connection
from server.domain import upstream_signin
from tests.oidc.upstream_provider import upstream_fixture  # noqa: F401 (fixture 'upstream')
from tests.web.conftest import csrf_of, sign_in

PAGE = "/admin/connections/Clever/sign-in"


def test_admin_sets_the_sign_in_provider_of_an_sso_connection(app, district, upstream, database):
    client = sign_in(app, "skinner", district.admin_password)
    listing = client.get("/admin/connections").text
    assert f'href="{PAGE}"' in listing
    form = client.get(PAGE)
    assert form.status_code == 200
    assert "/login/upstream/callback</code>" in form.text
    saved = client.post(
        PAGE,
        data={
            "csrf_token": csrf_of(form.text),
            "issuer": upstream.url,
            "client_id": upstream.client_id,
            "client_secret": upstream.client_secret,
            "scopes": "openid profile",
            "link_claim": "sub",
        },
    )
    assert saved.status_code == 200, saved.text
    assert 'id="configured"' in saved.text and upstream.url in saved.text
    assert upstream.client_secret not in saved.text
    with database.session() as session:
        clever = session.scalars(select(Connection).where(Connection.name == "Clever")).one()
        stored = clever.settings[upstream_signin.SETTINGS_KEY]
        assert stored["issuer"] == upstream.url and stored["scopes"] == "openid profile"
        assert upstream.client_secret not in str(stored)


def test_an_issuer_that_cannot_be_discovered_is_not_stored(app, district, database, dead_url):
    client = sign_in(app, "skinner", district.admin_password)
    form = client.get(PAGE)
    refused = client.post(
        PAGE,
        data={
            "csrf_token": csrf_of(form.text),
            "issuer": dead_url,
            "client_id": "x",
            "client_secret": "y",
        },
    )
    assert refused.status_code == 400
    assert "The issuer cannot be discovered" in refused.text
    with database.session() as session:
        clever = session.scalars(select(Connection).where(Connection.name == "Clever")).one()
        assert upstream_signin.SETTINGS_KEY not in (clever.settings or {})


def test_a_teacher_cannot_open_the_page(app, district):
    teacher = sign_in(app, "edna", district.teacher_password)
    assert teacher.get(PAGE).status_code == 403
