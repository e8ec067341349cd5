"""QR badges, activation links, signing-key rotation and the CLI of the provider."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from server import districts
from server.db import AuditEvent, CredentialState, utcnow
from server.domain import activation, badges, credentials, keys, roster, roster_views, users
from server.domain.actors import system_actor
from server.errors import NotAllowed
from tests.oidc.conftest import (
    authorize_url,
    code_flow,
    csrf_of,
    exchange,
    query_of,
    sign_in,
    verify_id_token,
)
from tests.scim.helpers import EDU_USER, USER
from tests.wire import page_refusal

DEAD_BADGE = "This badge does not work. Ask your teacher for a new one."
EXPIRED = "This link has expired"


def _badge_sign_in(http, token, pin=None, next_path=""):
    page = http.get("/login/badge", params={"badge": token, "next": next_path})
    data = {"badge": token, "csrf": csrf_of(page.text), "next": next_path}
    if pin is not None:
        data["pin"] = pin
    return http.post("/login/badge", data=data)


def test_young_student_signs_in_with_a_badge_and_pin(http, district, database, box):
    with database.session() as session:
        actor = system_actor(district.tenant_id)
        lisa = users.get_user(session, actor, district.students["lisa"]["id"])
        issued = badges.issue_badge(session, actor, lisa, box=box, pin="4321")
    start = http.get(authorize_url(district.client_id))
    next_path = query_of(start.headers["location"])["next"]
    page = http.get("/login/badge", params={"badge": issued.token, "next": next_path})
    assert 'id="pin"' in page.text
    wrong = _badge_sign_in(http, issued.token, "0000", next_path)
    page_refusal(wrong, 401, "Wrong PIN. Try again.")
    ok = _badge_sign_in(http, issued.token, "4321", next_path)
    assert ok.status_code == 303
    back = http.get(ok.headers["location"])
    code = query_of(back.headers["location"])["code"]
    claims = verify_id_token(http, exchange(http, district, code).json()["id_token"])
    assert claims["sub"] == district.students["lisa"]["id"]


def test_badges_only_for_enabled_grades_and_voiding_is_audited(http, district, database, box):
    with database.session() as session:
        actor = system_actor(district.tenant_id)
        bart = users.get_user(session, actor, district.students["bart"]["id"])
        with pytest.raises(NotAllowed):
            badges.issue_badge(session, actor, bart, box=box)
        lisa = users.get_user(session, actor, district.students["lisa"]["id"])
        first = badges.issue_badge(session, actor, lisa, box=box)
        second = badges.issue_badge(session, actor, lisa, box=box)
        # a password reset does not void the badge
        credentials.issue_temporary_password(session, actor, lisa, box=box)
        assert badges.reveal_badge(session, actor, lisa, box=box) == second.token
    page_refusal(_badge_sign_in(http, first.token), 401, DEAD_BADGE)
    assert _badge_sign_in(http, second.token).status_code == 303
    with database.session() as session:
        actor = system_actor(district.tenant_id)
        lisa = users.get_user(session, actor, district.students["lisa"]["id"])
        klass = roster_views.list_classes(session, actor)[0]
        assert badges.void_class_badges(session, actor, klass) == 1
        voids = session.query(AuditEvent).filter(AuditEvent.action == "badge.void").count()
        assert voids == 2
    http.cookies.clear()
    page_refusal(_badge_sign_in(http, second.token), 401, DEAD_BADGE)


def test_badge_expires_with_the_term(database, box, district):
    with database.session() as session:
        actor = system_actor(district.tenant_id)
        today = date.today()
        roster.create_academic_session(
            session,
            actor,
            {
                "title": "Autumn",
                "type": "term",
                "start_date": (today - timedelta(days=10)).isoformat(),
                "end_date": (today + timedelta(days=20)).isoformat(),
                "school_year": str(today.year),
            },
        )
        lisa = users.get_user(session, actor, district.students["lisa"]["id"])
        issued = badges.issue_badge(session, actor, lisa, box=box)
        assert issued.badge.expires_at.date() == today + timedelta(days=21)


def test_activation_link_sets_a_password_once(http, district, database):
    with database.session() as session:
        actor = system_actor(district.tenant_id)
        school = roster_views.list_schools(session, district.tenant_id)[0]
        maggie = districts.student(
            session,
            actor,
            school,
            "Maggie",
            "Simpson",
            username="maggie",
            email="maggie@example.org",
        )
        link = activation.create_activation_link(session, actor, maggie)
        assert maggie.credential.state == CredentialState.ISSUED
        nomail = districts.student(session, actor, school, "Ned", "Flanders", username="nedf")
        with pytest.raises(NotAllowed):
            activation.create_activation_link(session, actor, nomail)
    url = f"/activate/{link.secret}"
    page = http.get(url)
    assert page.status_code == 200 and "maggie" in page.text
    csrf = csrf_of(page.text)
    short = http.post(url, data={"password": "abc", "confirm": "abc", "csrf": csrf})
    assert short.status_code == 400
    done = http.post(
        url, data={"password": "pacifier stars", "confirm": "pacifier stars", "csrf": csrf}
    )
    assert done.status_code == 200 and "ready" in done.text
    page_refusal(http.get(url), 410, EXPIRED)
    callback = code_flow(http, district.client_id, "maggie", "pacifier stars")
    assert "code" in callback


def test_expired_activation_link_is_refused(http, district, database):
    with database.session() as session:
        actor = system_actor(district.tenant_id)
        lisa = users.get_user(session, actor, district.students["lisa"]["id"])
        link = activation.create_activation_link(session, actor, lisa, lifetime=timedelta(0))
    page_refusal(http.get(f"/activate/{link.secret}"), 410, EXPIRED)


def test_rotated_keys_keep_old_tokens_verifiable(http, district, database, settings):
    callback = code_flow(http, district.client_id, "lisa", "correct horse battery")
    old_token = exchange(http, district, callback["code"]).json()["id_token"]
    before = {k["kid"] for k in http.get("/oauth/jwks").json()["keys"]}
    with database.session() as session:
        box = keys.signing_box(settings.secret_key)
        new_kids = keys.rotate_keys(session, system_actor(district.tenant_id), box)
    after = {k["kid"] for k in http.get("/oauth/jwks").json()["keys"]}
    assert before < after and set(new_kids) <= after
    assert verify_id_token(http, old_token)["sub"] == district.students["lisa"]["id"]
    fresh = code_flow(http, district.client_id, "lisa", "correct horse battery", prompt="login")
    new_token = exchange(http, district, fresh["code"]).json()["id_token"]
    from joserfc import jws

    assert jws.extract_compact(new_token.encode()).protected["kid"] in new_kids
    # a day later the retired keys leave the key set
    with database.session() as session:
        from server.db import SigningKey

        for row in session.query(SigningKey).filter(SigningKey.retired_at.is_not(None)):
            row.retired_at = utcnow() - timedelta(days=2)
    assert {k["kid"] for k in http.get("/oauth/jwks").json()["keys"]} == set(new_kids)


def test_es256_on_request(http, district, database):
    from server.domain import authorization, oauth

    with database.session() as session:
        client = oauth.find_client(session, district.client_id)
        authorization.set_id_token_algorithm(session, client, "ES256")
    callback = code_flow(http, district.client_id, "lisa", "correct horse battery")
    id_token = exchange(http, district, callback["code"]).json()["id_token"]
    from joserfc import jws

    assert jws.extract_compact(id_token.encode()).protected["alg"] == "ES256"
    assert verify_id_token(http, id_token)["sub"]


def test_cli_registers_clients_and_rotates_keys(tmp_path, monkeypatch, capsys):
    from server.cli.main import main

    monkeypatch.setenv("ROLLCALL_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ROLLCALL_DATABASE_URL", raising=False)
    assert (
        main(
            [
                "client",
                "add",
                "Reader",
                "--redirect-uri",
                "https://r.example/cb",
                "--post-logout-redirect-uri",
                "https://r.example/bye",
                "--json",
            ]
        )
        == 0
    )
    client = json.loads(capsys.readouterr().out)
    assert client["client_id"] and client["client_secret"]
    assert main(["client", "add", "Phone", "--redirect-uri", "app:/cb", "--public", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["client_secret"] is None
    assert main(["oneroster-client", "add", "Gradebook", "--json"]) == 0
    api = json.loads(capsys.readouterr().out)
    assert any("v1p2/scope/roster-core.readonly" in s for s in api["scopes"])
    assert any("v1p1/scope/roster.readonly" in s for s in api["scopes"])
    assert main(["keys", "rotate", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["kids"]) == 2
    assert main(["client", "add", "Reader", "--redirect-uri", "https://r/cb", "--json"]) == 1


def _adopt_by_sso(http, database, tenant_id: str, *usernames: str) -> None:
    """Clever, set to adopt by username, pushes the students over SCIM (SSO linking)."""
    from server.domain import connections

    with database.session() as session:
        token = connections.create_connection(
            session,
            system_actor(tenant_id),
            "Clever",
            "scim",
            sso_provider="Clever",
            adopt_by="username",
        ).token
    for username in usernames:
        body = {
            "schemas": [USER, EDU_USER],
            "userName": username,
            EDU_USER: {"grades": ["02"]},  # the badge grade stays enabled: only SSO refuses
        }
        pushed = http.post(
            "/scim/v2/Users",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert pushed.status_code == 201, pushed.text


def test_linking_to_sso_voids_badges_activation_links_and_temporary_passwords(
    http, district, database, box
):
    # Issue 11 defect 3: a badge issued while the account was manual still signed in after
    # an SSO connection adopted it.
    with database.session() as session:
        actor = system_actor(district.tenant_id)
        lisa = users.get_user(session, actor, district.students["lisa"]["id"])
        bart = users.get_user(session, actor, district.students["bart"]["id"])
        badge = badges.issue_badge(session, actor, lisa, box=box).token
        link = activation.create_activation_link(session, actor, bart, for_print=True).secret
    _adopt_by_sso(http, database, district.tenant_id, "lisa", "bart")
    page_refusal(_badge_sign_in(http, badge), 401, DEAD_BADGE)
    page_refusal(http.get(f"/activate/{link}"), 410, EXPIRED)
    from tests.oidc.conftest import sign_in

    temporary = sign_in(http, "/login", "bart", district.students["bart"]["password"])
    assert temporary.status_code != 303
    with database.session() as session:
        voids = session.query(AuditEvent).filter(AuditEvent.action == "credential.void").count()
        assert voids == 2


def test_badge_and_link_sign_in_recheck_the_guard(http, district, database, box):
    # A badge or link that escaped the sweep (issued before the sweep existed) still fails.
    with database.session() as session:
        actor = system_actor(district.tenant_id)
        lisa = users.get_user(session, actor, district.students["lisa"]["id"])
        badge = badges.issue_badge(session, actor, lisa, box=box)
        link = activation.create_activation_link(session, actor, lisa, for_print=True)
        badge_id, link_id = badge.badge.id, link.token.id
    _adopt_by_sso(http, database, district.tenant_id, "lisa")
    from server.db import ActivationToken, Badge

    with database.session() as session:  # as rows written before this release would be
        session.get(Badge, badge_id).voided_at = None
        session.get(ActivationToken, link_id).expires_at = utcnow() + timedelta(days=1)
    page_refusal(_badge_sign_in(http, badge.token), 401, DEAD_BADGE)
    page_refusal(http.get(f"/activate/{link.secret}"), 410, EXPIRED)


def test_a_wrong_pin_says_wrong_pin_and_is_throttled_like_a_wrong_password(
    http, district, database, box
):
    # Issue 14 item 13: the student is told "Wrong PIN", not that the badge does not work.
    from server.domain.signin import ACCOUNT_FREE_FAILURES
    from tests.oidc.test_sign_in_pages import _error_of, _login_location

    with database.session() as session:
        actor = system_actor(district.tenant_id)
        lisa = users.get_user(session, actor, district.students["lisa"]["id"])
        issued = badges.issue_badge(session, actor, lisa, box=box, pin="4321")
    wrong = _badge_sign_in(http, issued.token, "0000")
    assert wrong.status_code == 401 and _error_of(wrong.text) == "Wrong PIN. Try again."
    unknown = _badge_sign_in(http, "no-such-badge", "0000")
    assert unknown.status_code == 401 and "does not work" in _error_of(unknown.text)
    for _ in range(ACCOUNT_FREE_FAILURES - 1):
        assert _badge_sign_in(http, issued.token, "0000").status_code == 401
    slowed = _badge_sign_in(http, issued.token, "4321")
    assert slowed.status_code == 429 and "Too many tries" in _error_of(slowed.text)
    # Issue 11 item 8 still holds: username and password answer alike whatever the account.
    location = _login_location(http, district)
    answers = {
        _error_of(sign_in(http, location, name, "not the password").text)
        for name in ("lisa", "bart", "nobody-here")
    }
    assert answers == {"That username and password do not match. Check them and try again."}
