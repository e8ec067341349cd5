"""Every HTML page carries the browser hardening headers (issue 11: HTTP hardening).

The pages are found by walking the route table (``tests.app.test_route_table``) twice, as a
stranger and as a signed-in district admin, so a page added later is checked too.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from starlette.testclient import TestClient

from server.app import create_app
from server.db import Tenant
from server.domain.actors import system_actor
from server.domain.staff import create_staff
from tests.app.test_route_table import _concrete, _routes, _sample_ids

TEMPLATES = [*Path("oidc/templates").glob("*.html"), *Path("server/web/templates").glob("*.html")]


def _html_pages(app, database) -> dict[str, dict[str, str]]:
    """GET every route as a stranger and as a district admin: {path: headers} of HTML answers."""
    ids = _sample_ids(database)
    with database.session() as session:
        tenant = session.query(Tenant).one()
        admin = create_staff(session, system_actor(tenant.id), "skinner", "district_admin")
    stranger = TestClient(app, follow_redirects=False)
    staff = TestClient(app, follow_redirects=False)
    signed = staff.post("/admin/login", data={"username": "skinner", "password": admin.password})
    assert signed.status_code == 303
    pages = {}
    for method, template in _routes(app.routes):
        if method != "GET":
            continue
        path = _concrete(template, ids)
        for client in (stranger, staff):
            response = client.get(path)
            if response.headers.get("content-type", "").startswith("text/html"):
                pages[f"{path} {response.status_code}"] = dict(response.headers)
    return pages


def test_every_html_page_forbids_inline_scripts_framing_and_sniffing(settings, database):
    app = create_app(settings, database=database)
    with TestClient(app):
        pages = _html_pages(app, database)
    assert len(pages) >= 12, sorted(pages)  # sign-in, activation, badge and the staff pages
    for page, headers in pages.items():
        policy = headers.get("content-security-policy", "")
        directives = dict(
            [*part.strip().split(" ", 1), ""][:2] for part in policy.split(";") if part.strip()
        )
        assert directives.get("script-src") == "'self'", page
        assert directives.get("frame-ancestors") == "'none'", page
        assert headers.get("x-content-type-options") == "nosniff", page
        assert headers.get("referrer-policy") == "no-referrer", page
        assert "strict-transport-security" not in headers, page  # the issuer is http here


def test_hsts_is_sent_when_the_issuer_is_https(settings, database):
    https = replace(settings, issuer="https://rollcall.example.org")
    with TestClient(create_app(https, database=database)) as client:
        for path in ("/login", "/admin/login", "/healthz"):
            hsts = client.get(path).headers.get("strict-transport-security", "")
            assert hsts.startswith("max-age=31536000"), path


def test_templates_hold_no_inline_script_or_event_handler():
    # The CSP would block them: every script is a static file (server/web/static/admin.js).
    assert TEMPLATES
    for template in TEMPLATES:
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template
        assert not re.search(r"\son[a-z]+\s*=", text), template
        assert "javascript:" not in text, template
