"""X-Forwarded-For names the client only when a configured proxy sent it (issue 11 defect 8).

Served by uvicorn on 127.0.0.1 with the options ``rollcall serve`` uses, because the header is
read (or not) by the server stack, not by the routes.
"""

from __future__ import annotations

from dataclasses import replace

import httpx
from sqlalchemy import select

from server.app import create_app
from server.config import load_settings
from server.db import LoginThrottle
from server.domain.tenants import create_tenant
from tests.live import serving
from tests.oidc.conftest import csrf_of


def _fail_sign_in_through(settings, database, forwarded_for: str) -> set[str]:
    """One wrong password sent with X-Forwarded-For; returns the throttle's address keys."""
    with database.session() as session:
        create_tenant(session, "Springfield")
    app = create_app(settings, database=database)
    with serving(app) as base, httpx.Client(base_url=base) as client:
        csrf = csrf_of(client.get("/login").text)
        answer = client.post(
            "/login",
            data={"username": "nobody", "password": "wrong", "csrf": csrf, "next": ""},
            headers={"X-Forwarded-For": forwarded_for},
        )
        assert answer.status_code == 401, answer.text
    with database.session() as session:
        keys = session.scalars(select(LoginThrottle.key).where(LoginThrottle.key.like("address:%")))
        return set(keys)


def test_a_client_cannot_choose_its_own_throttle_key(settings, database):
    assert _fail_sign_in_through(settings, database, "203.0.113.9") == {"address:127.0.0.1"}


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(settings, database):
    behind_proxy = replace(settings, trusted_proxies=("127.0.0.1",))
    keys = _fail_sign_in_through(behind_proxy, database, "203.0.113.9")
    assert keys == {"address:203.0.113.9"}


def test_trusted_proxies_come_from_the_environment(tmp_path):
    env = {"ROLLCALL_DATA_DIR": str(tmp_path), "ROLLCALL_TRUSTED_PROXIES": "10.0.0.1, 10.1.0.0/16"}
    assert load_settings(env).trusted_proxies == ("10.0.0.1", "10.1.0.0/16")
    assert load_settings({"ROLLCALL_DATA_DIR": str(tmp_path)}).trusted_proxies == ()
