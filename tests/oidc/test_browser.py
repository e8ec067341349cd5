"""A real browser (headless Chromium) signs a student in with a temporary password, is forced
to choose a new one, and lands back at the app, which gets a valid ID token.

Chromium comes from the Debian package (``/usr/bin/chromium``; ``make test`` installs it when
apt-get is available); playwright drives it. The browser is never downloaded.
"""

from __future__ import annotations

import os
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from server.app import create_app
from tests.live import bound_socket, serving, url_of
from tests.oidc.conftest import REDIRECT, authorize_url, exchange, verify_id_token

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"{CHROMIUM} is missing: install the Debian 'chromium' package (make test does "
    "this when apt-get is available) to run the browser test",
)


def test_student_changes_a_temporary_password_in_a_real_browser(
    settings, database, district, browser
):
    sock = bound_socket()
    app = create_app(replace(settings, issuer=url_of(sock)), database=database)
    landed: list[str] = []
    with serving(app, sock) as base:
        context = browser.new_context(viewport={"width": 390, "height": 800})
        try:
            page = context.new_page()

            def arrive(route):
                landed.append(route.request.url)
                route.fulfill(status=200, content_type="text/html", body="<h1>Welcome back</h1>")

            page.route(REDIRECT + "*", arrive)
            page.goto(base + authorize_url(district.client_id, state="browser-state"))
            page.get_by_label("Username").fill("Bart")
            page.get_by_label("Password").fill(district.students["bart"]["password"])
            page.get_by_role("button", name="Sign in").click()

            page.wait_for_url("**/login/change**")
            page.get_by_label("New password").fill("short")
            page.get_by_label("Type it again").fill("short")
            page.get_by_role("button", name="Save and continue").click()
            page.wait_for_url("**/login/change**")
            assert page.get_by_role("alert").is_visible()

            page.get_by_label("New password").fill("skateboard comet")
            page.get_by_label("Type it again").fill("skateboard comet")
            page.get_by_role("button", name="Save and continue").click()
            page.wait_for_url(REDIRECT + "*")
            assert page.get_by_role("heading").inner_text() == "Welcome back"
        finally:
            context.close()

        query = {k: v[0] for k, v in parse_qs(urlsplit(landed[-1]).query).items()}
        assert query["state"] == "browser-state"
        with httpx.Client(base_url=base) as http:
            token = exchange(http, district, query["code"])
            assert token.status_code == 200, token.text
            claims = verify_id_token(http, token.json()["id_token"])
        assert claims["iss"] == base
        assert claims["preferred_username"] == "bart"
        assert claims["sub"] == district.students["bart"]["id"]
