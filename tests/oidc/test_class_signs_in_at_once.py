"""A whole class signs in at the same moment from one school address."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx

from server.app import create_app
from tests.live import bound_socket, serving, url_of
from tests.oidc.conftest import csrf_of


def test_a_class_typing_at_once_gets_answers_not_errors(settings, database, district):
    sock = bound_socket()
    base = url_of(sock)
    app = create_app(replace(settings, issuer=base), database=database)

    def attempt(number: int) -> int:
        with httpx.Client(base_url=base, timeout=30) as browser:
            page = browser.get("/login")
            password = "correct horse battery" if number % 2 else f"wrong {number}"
            response = browser.post(
                "/login",
                data={"username": "lisa", "password": password, "csrf": csrf_of(page.text)},
            )
            return response.status_code

    with serving(app, sock), ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(attempt, range(16)))
    assert set(statuses) <= {303, 401, 429}
    assert 401 in statuses
