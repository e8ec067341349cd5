"""A real browser (headless Chromium) signs a student in with a temporary password, is forced
to choose a new one, and lands back at the app, which gets a valid ID token.

Chromium comes from the Debian package (``/usr/bin/chromium``; ``make test`` installs it when
apt-get is available); playwright drives it. The browser is never downloaded.
"""

from __future__ import annotations

from dataclasses import replace

import httpx

from server.app import create_app
from tests.live import bound_socket, serving, url_of
from tests.oidc.conftest import (
    REDIRECT,
    authorize_url,
    exchange,
    fill_new_password,
    fill_sign_in,
    phone_at_the_app,
    query_of,
    verify_id_token,
)


def test_student_changes_a_temporary_password_in_a_real_browser(
    settings, database, district, browser
):
    sock = bound_socket()
    app = create_app(replace(settings, issuer=url_of(sock)), database=database)
    with serving(app, sock) as base, phone_at_the_app(browser) as (page, landed):
        page.goto(base + authorize_url(district.client_id, state="browser-state"))
        fill_sign_in(page, "Bart", district.students["bart"]["password"])

        page.wait_for_url("**/login/change**")
        fill_new_password(page, "short")
        page.wait_for_url("**/login/change**")
        assert page.get_by_role("alert").is_visible()

        fill_new_password(page, "skateboard comet")
        page.wait_for_url(REDIRECT + "*")
        assert page.get_by_role("heading").inner_text() == "Welcome back"

        query = query_of(landed[-1])
        assert query["state"] == "browser-state"
        with httpx.Client(base_url=base) as http:
            token = exchange(http, district, query["code"])
            assert token.status_code == 200, token.text
            claims = verify_id_token(http, token.json()["id_token"])
        assert claims["iss"] == base
        assert claims["preferred_username"] == "bart"
        assert claims["sub"] == district.students["bart"]["id"]
