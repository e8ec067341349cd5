"""Every page a student sees passes axe-core and fits a 390 px phone (issue 14, item 8).

Headless Debian Chromium walks the sign-in pages on a live Rollcall as a student would: the
sign-in page (and its error), badge sign-in (and "Wrong PIN"), the forced password change
(and its error), an activation link (and a used one), the "not linked yet" end of an upstream
sign-in, the sign-in done and signed-out pages, and a broken sign-in link. Rollcall has no
consent or account-chooser screen (``oidc/authorize.py``). axe-core is the copy vendored in
``tests/browser/vendor``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from server.app import create_app
from server.domain import activation, badges, users
from server.domain.actors import system_actor
from tests.browser.conftest import axe_violations
from tests.live import bound_socket, serving, url_of
from tests.oidc.conftest import authorize_url, fill_new_password, fill_sign_in
from tests.oidc.test_upstream_browser import register_at_upstream
from tests.oidc.upstream_provider import (
    provision_twin,
    sign_in_at_clever,
    upstream_fixture,  # noqa: F401 (fixture 'upstream')
)

PHONE = {"width": 390, "height": 844}


@pytest.fixture(params=["light", "dark"])
def student_page(browser, request):
    """A phone-sized page, in the light and the dark colour scheme, that axe-core may be
    injected into (the CSP would refuse it)."""
    context = browser.new_context(viewport=PHONE, bypass_csp=True, color_scheme=request.param)
    yield context.new_page()
    context.close()


class Walk:
    """Checks each page a student reaches; collects what is wrong with each."""

    def __init__(self, page) -> None:
        self.page = page
        self.problems: dict[str, list[str]] = {}

    def check(self, name: str) -> None:
        found = axe_violations(self.page)
        width = self.page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            found.append(f"wider than a {PHONE['width']} px phone: {width} px")
        if found:
            self.problems[name] = found


def _badge_and_link(database, district, box) -> tuple[str, str]:
    with database.session() as session:
        actor = system_actor(district.tenant_id)
        lisa = users.get_user(session, actor, district.students["lisa"]["id"])
        badge = badges.issue_badge(session, actor, lisa, box=box, pin="4321").token
        link = activation.create_activation_link(session, actor, lisa)
        return badge, link.secret


def test_every_student_page_passes_axe_and_fits_a_phone(
    settings, database, box, district, upstream, student_page
):
    sock = bound_socket()
    base = url_of(sock)
    provision_twin(
        database,
        box,
        district,
        register_at_upstream(upstream, base + "/login/upstream/callback"),
        twin={"external_id": "someone-else"},  # Milhouse at Clever has no twin here
    )
    badge, secret = _badge_and_link(database, district, box)
    app = create_app(replace(settings, issuer=base), database=database)
    page, walk = student_page, Walk(student_page)
    with serving(app, sock):
        page.goto(base + authorize_url(district.client_id))
        walk.check("sign-in")
        fill_sign_in(page, "lisa", "not her password")
        walk.check("sign-in, wrong password")

        page.goto(f"{base}/login/badge")
        walk.check("badge sign-in")
        page.goto(f"{base}/login/badge?badge={badge}")
        walk.check("badge with a PIN")
        page.get_by_label("PIN").fill("0000")
        page.get_by_role("button", name="Sign in").click()
        walk.check("badge, wrong PIN")

        page.goto(base + authorize_url(district.client_id))
        fill_sign_in(page, "bart", district.students["bart"]["password"])
        page.wait_for_url("**/login/change**")
        walk.check("password change")
        fill_new_password(page, "short")
        walk.check("password change, refused")

        page.goto(f"{base}/activate/{secret}")
        walk.check("activation")
        page.goto(f"{base}/activate/not-a-link")
        walk.check("activation, used or unknown link")

        page.goto(base + authorize_url(district.client_id))
        sign_in_at_clever(page, upstream)
        page.wait_for_url(base + "/login/upstream/callback**")
        assert "not linked" in page.get_by_role("heading", level=1).inner_text()
        walk.check("upstream account not linked")

        page.goto(f"{base}/login/done")
        walk.check("signed in, no app")
        page.goto(f"{base}/oauth/logout")
        walk.check("signed out")
        page.goto(f"{base}/oauth/authorize?client_id=nobody&response_type=code")
        walk.check("broken sign-in link")
    assert not walk.problems, "\n".join(f"{k}: {v}" for k, v in walk.problems.items())
