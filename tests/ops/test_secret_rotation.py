"""Issue 13 defect 6: ``ROLLCALL_SECRET_KEY`` can be rotated: a key ring opens what the old key
sealed, ``rollcall secrets rotate`` re-seals everything, and a key that opens nothing stops
start-up with a clear error instead of 500s."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from server.app import create_app
from server.db import (
    AuditEvent,
    Connection,
    LoginThrottle,
    OAuthClientKind,
    Org,
    SigningKey,
    utcnow,
)
from server.domain import audit, badges, oauth, oauth1, retention, roster_views, users
from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.secrets import SecretBox
from server.domain.sources import UPSTREAM_PURPOSE, set_upstream
from server.domain.tenants import get_tenant
from server.web.cookies import COOKIE_NAME
from tests.conftest import TEST_SECRET
from tests.live import ROOT
from tests.oidc.conftest import csrf_of as oidc_csrf_of
from tests.web.conftest import sign_in

NEW_KEY = "the-new-secret-key-of-the-district-2027"


@pytest.fixture
def sealed_things(app, district, database):
    """Signing keys (made by the first JWKS request), a temporary password (the district's),
    a QR badge, an OAuth 1.0a consumer secret and an upstream client secret, all sealed under
    the old key ``TEST_SECRET``."""
    with TestClient(app) as client:
        kids = {key["kid"] for key in client.get("/oauth/jwks").json()["keys"]}
    with database.session() as session:
        actor = system_actor(get_tenant(session, "Springfield").id)
        hub = create_connection(session, actor, "Hub", "oneroster_rest").connection
        set_upstream(
            session,
            actor,
            hub,
            box=SecretBox(TEST_SECRET, UPSTREAM_PURPOSE),
            base_url="http://127.0.0.1:9/v1p2",
            token_url="http://127.0.0.1:9/token",
            client_id="hub-client",
            client_secret="hub-secret",
        )
        lisa = users.get_user(session, actor, district.other_student)  # grade 02: badges allowed
        badges.issue_badge(session, actor, lisa, box=badges.badge_box(TEST_SECRET))
        gradebook = oauth.create_client(session, actor, "Gradebook", kind=OAuthClientKind.API)
        oauth1.issue_consumer_secret(
            session, actor, gradebook.client, oauth1.consumer_box(TEST_SECRET)
        )
    return kids


def _reveal(app, district):
    with TestClient(app) as client:
        answer = client.post(
            f"/admin/api/users/{district.manual_student}/password/reveal",
            headers={"Authorization": f"Bearer {district.api_token}"},
        )
    return answer


def test_a_new_key_with_the_old_in_the_ring_reads_everything_and_rotate_reseals_it(
    sealed_things, settings, database, district, rollcall, monkeypatch
):
    monkeypatch.setenv("ROLLCALL_SECRET_KEY", NEW_KEY)
    # the new key alone: refused, nothing changed, and the message says what to do
    code, _, err = rollcall("secrets", "rotate")
    assert code == 1 and "ROLLCALL_OLD_SECRET_KEYS" in err and "signing key" in err

    ring = replace(settings, secret_key=NEW_KEY, old_secret_keys=(TEST_SECRET,))
    revealed = _reveal(create_app(ring, database=database), district)
    assert revealed.status_code == 200 and revealed.json()["password"] == district.temporary

    monkeypatch.setenv("ROLLCALL_OLD_SECRET_KEYS", TEST_SECRET)
    code, out, _ = rollcall("secrets", "rotate", "--json")
    assert code == 0, out
    resealed = json.loads(out)["resealed"]
    assert resealed["signing key"] == 2 and resealed["temporary password"] == 1
    assert resealed["upstream secret of Hub"] == 1
    assert resealed["badge"] == 1 and resealed["OAuth 1.0a secret"] == 1

    alone = create_app(replace(settings, secret_key=NEW_KEY), database=database)
    assert _reveal(alone, district).json()["password"] == district.temporary
    with TestClient(alone) as client:
        kids = {key["kid"] for key in client.get("/oauth/jwks").json()["keys"]}
    assert kids == sealed_things  # the same keys, so issued ID tokens still verify
    with database.session() as session:
        assert len(session.scalars(select(SigningKey)).all()) == 2
        hub = session.scalars(select(Connection).where(Connection.name == "Hub")).one()
        stored = hub.settings["upstream"]["client_secret_sealed"]
    assert (
        SecretBox(NEW_KEY, UPSTREAM_PURPOSE).open(base64.b64decode(stored), hub.id) == "hub-secret"
    )
    monkeypatch.delenv("ROLLCALL_OLD_SECRET_KEYS")
    code, out, _ = rollcall("secrets", "rotate", "--json")
    assert code == 0 and json.loads(out)["resealed"] == {}


def test_serve_with_a_key_that_opens_nothing_stops_with_one_clear_line(sealed_things, environment):
    started = subprocess.run(
        [sys.executable, "-m", "server.cli.main", "serve", "--port", "9"],
        env={**environment, "ROLLCALL_SECRET_KEY": NEW_KEY},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert started.returncode == 1
    assert "ROLLCALL_OLD_SECRET_KEYS" in started.stderr and "Traceback" not in started.stderr


def _note_then_purge(database, keys, user_id: str, *, again: bool = False) -> set[str]:
    """Audit a note about the student, delete and purge them (the clock set past the retention
    period); returns the targets of the notes, which the purge turns into pseudonyms. ``again``
    brings the same person back first (as a backup restored from before the purge would)."""
    with database.session() as session:
        actor = system_actor(get_tenant(session, "Springfield").id)
        if again:
            school = roster_views.find_by_sourced_id(session, Org, actor.tenant_id, "lincoln")
            users.create_user(
                session,
                actor,
                {
                    "id": user_id,
                    "given_name": "Bart",
                    "family_name": "Simpson",
                    "roles": [users.RoleAssignment(school.id, "student")],
                },
            )
        audit.record(session, actor, "note", target_kind="user", target_id=user_id)
        users.delete_user(session, actor, users.get_user(session, actor, user_id), override=True)
        retention.enforce(session, actor, secret_key=keys, now=utcnow() + timedelta(days=31))
        return set(session.scalars(select(AuditEvent.target_id).where(AuditEvent.action == "note")))


def test_pseudonyms_and_typed_name_hashes_stay_the_same_across_a_rotation(
    app, settings, district, database, rollcall, monkeypatch
):
    # issue 12 item 4: a purged student keeps one pseudonym, and a throttle keeps counting the
    # same typed name, after `rollcall secrets rotate` and the old key's removal
    before = _note_then_purge(database, TEST_SECRET, district.manual_student)
    assert len(before) == 1 and district.manual_student not in before
    wrong = {"username": "skinner", "password": "not-the-password"}
    with TestClient(app) as client:
        assert client.post("/admin/login", data=wrong).status_code == 401
    monkeypatch.setenv("ROLLCALL_SECRET_KEY", NEW_KEY)
    monkeypatch.setenv("ROLLCALL_OLD_SECRET_KEYS", TEST_SECRET)
    code, out, _ = rollcall("secrets", "rotate", "--json")
    assert code == 0, out
    alone = create_app(replace(settings, secret_key=NEW_KEY), database=database)
    with TestClient(alone) as client:
        assert client.post("/admin/login", data=wrong).status_code == 401
    with database.session() as session:
        throttles = session.scalars(
            select(LoginThrottle).where(LoginThrottle.key.startswith("staff:"))
        ).all()
    assert [row.failures for row in throttles] == [2]  # the same key counted both failures
    after = _note_then_purge(database, NEW_KEY, district.manual_student, again=True)
    assert after == before  # one person, one pseudonym, under the new key alone
    assert json.loads(out)["resealed"]["pseudonym key of Springfield"] == 1


def _staff_page(app, cookie: str):
    with TestClient(app, base_url="http://testserver") as client:
        client.cookies.set(COOKIE_NAME, cookie, path="/admin")
        return client.get("/admin/users", follow_redirects=False)


def test_staff_stay_signed_in_across_a_key_rotation_and_are_signed_out_cleanly_without_it(
    app, settings, database, district
):
    with sign_in(app, "skinner", district.admin_password) as browser:
        old_cookie = browser.cookies[COOKIE_NAME]
    ring = create_app(
        replace(settings, secret_key=NEW_KEY, old_secret_keys=(TEST_SECRET,)), database=database
    )
    page = _staff_page(ring, old_cookie)
    assert page.status_code == 200, page.headers.get("location")
    resigned = page.cookies[COOKIE_NAME]  # signed again with the new key
    assert resigned != old_cookie
    alone = create_app(replace(settings, secret_key=NEW_KEY), database=database)
    assert _staff_page(alone, resigned).status_code == 200  # the new key alone reads it
    gone = _staff_page(alone, old_cookie)  # the old key left the ring: signed out, no 500
    assert gone.status_code == 303 and gone.headers["location"].startswith("/admin/login")


def test_a_student_changing_a_temporary_password_across_a_key_rotation_is_not_sent_back(
    app, settings, database, district
):
    """The student session is a database token; the form's CSRF token (signed with the key)
    of a page opened before the restart is still accepted with the old key in the ring."""
    with TestClient(app, base_url="http://testserver") as student:
        login = student.get("/login")
        signed_in = student.post(
            "/login",
            data={
                "username": "bartsimpson",
                "password": district.temporary,
                "csrf": oidc_csrf_of(login.text),
            },
            follow_redirects=False,
        )
        assert signed_in.status_code == 303 and "/login/change" in signed_in.headers["location"]
        form = student.get("/login/change")
        cookies = dict(student.cookies)
    ring = create_app(
        replace(settings, secret_key=NEW_KEY, old_secret_keys=(TEST_SECRET,)), database=database
    )
    with TestClient(ring, base_url="http://testserver", cookies=cookies) as student:
        changed = student.post(
            "/login/change",
            data={
                "password": "a new long passphrase 9",
                "confirm": "a new long passphrase 9",
                "csrf": oidc_csrf_of(form.text),
            },
            follow_redirects=False,
        )
        assert changed.status_code == 303, changed.text
        assert "Signed in as bartsimpson" in student.get("/login/done").text
