"""The sign-in pages as a student meets them."""

from __future__ import annotations

import re

from server import districts
from server.db import AuditEvent, CredentialState, utcnow
from server.domain import signin, users
from server.domain.actors import connection_actor, system_actor
from server.domain.signin import ACCOUNT_FREE_FAILURES
from tests.oidc.conftest import (
    LOGOUT_REDIRECT,
    REDIRECT,
    authorize_url,
    code_flow,
    csrf_of,
    exchange,
    query_of,
    sign_in,
    verify_id_token,
)


def _login_location(http, district, **extra):
    start = http.get(authorize_url(district.client_id, **extra))
    assert start.status_code == 302
    assert start.headers["location"].startswith("/login?")
    return start.headers["location"]


def test_temporary_password_forces_a_change_before_the_code(http, district, database):
    location = _login_location(http, district)
    signed = sign_in(http, location, "bart", district.students["bart"]["password"])
    assert signed.status_code == 303
    change_url = signed.headers["location"]
    assert change_url.startswith("/login/change")
    # the app cannot get a code yet
    assert http.get(query_of(location)["next"]).headers["location"].startswith("/login")

    page = http.get(change_url)
    csrf = csrf_of(page.text)
    next_path = query_of(change_url)["next"]
    weak = http.post(
        "/login/change",
        data={"password": "bart", "confirm": "bart", "csrf": csrf, "next": next_path},
    )
    assert weak.status_code == 400
    assert "at least 8" in weak.text or "characters" in weak.text
    same = http.post(
        "/login/change",
        data={
            "password": district.students["bart"]["password"],
            "confirm": district.students["bart"]["password"],
            "csrf": csrf,
            "next": next_path,
        },
    )
    assert same.status_code == 400
    done = http.post(
        "/login/change",
        data={
            "password": "skateboard comet",
            "confirm": "skateboard comet",
            "csrf": csrf,
            "next": next_path,
        },
    )
    assert done.status_code == 303
    back = http.get(done.headers["location"])
    assert back.headers["location"].startswith(REDIRECT)
    token = exchange(http, district, query_of(back.headers["location"])["code"])
    assert verify_id_token(http, token.json()["id_token"])["preferred_username"] == "bart"
    with database.session() as session:
        user = users.get_user(
            session, system_actor(district.tenant_id), district.students["bart"]["id"]
        )
        assert user.credential.state == CredentialState.ACTIVE
        assert user.credential.temporary_secret is None


def test_wrong_password_does_not_say_whether_the_username_exists(http, district, database):
    location = _login_location(http, district)
    known = sign_in(http, location, "lisa", "wrong password")
    unknown = sign_in(http, location, "nobody-here", "wrong password")
    assert known.status_code == unknown.status_code == 401
    assert "do not match" in known.text and "do not match" in unknown.text
    with database.session() as session:
        actions = [e.action for e in session.query(AuditEvent).all()]
    assert actions.count("signin.failure") == 2


def test_repeated_failures_slow_the_account_down_without_locking_it(http, district, monkeypatch):
    # The clock stands still: the first delay is 2 s, which a slow machine could otherwise
    # let pass between the fifth failure and the next attempt.
    now = utcnow()
    monkeypatch.setattr(signin, "utcnow", lambda: now)
    location = _login_location(http, district)
    for _ in range(5):
        assert sign_in(http, location, "lisa", "wrong").status_code == 401
    slowed = sign_in(http, location, "lisa", "correct horse battery")
    assert slowed.status_code == 429
    assert "Wait" in slowed.text
    # another student at the same school address is not affected
    other = sign_in(http, location, "bart", "wrong")
    assert other.status_code == 401


def _error_of(html: str) -> str:
    match = re.search(r'id="error">([^<]*)<', html)
    assert match, html
    return match.group(1)


def test_an_sso_account_answers_and_slows_down_like_an_unknown_name(http, district, database):
    # Issue 11 defect 8: any password on a Clever account got 403 "Sign in with Clever" and
    # was never throttled, which told anyone which usernames exist and which are Clever's.
    with database.session() as session:
        actor = system_actor(district.tenant_id)
        clever = districts.sso_connection(session, actor, "Clever")
        school = districts.school(session, actor, "Clever School")
        districts.student(
            session,
            connection_actor(clever),
            school,
            "Milhouse",
            "Van Houten",
            username="milhouse",
        )
    location = _login_location(http, district)
    sso = sign_in(http, location, "milhouse", "anything")
    unknown = sign_in(http, location, "nobody-here", "anything")
    assert sso.status_code == unknown.status_code == 401
    assert _error_of(sso.text) == _error_of(unknown.text)
    assert "rollcall_session" not in sso.headers.get("set-cookie", "")
    for _ in range(ACCOUNT_FREE_FAILURES - 1):
        assert sign_in(http, location, "milhouse", "anything").status_code == 401
    assert sign_in(http, location, "milhouse", "anything").status_code == 429
    # Where to sign in instead is told to everyone, before any username is typed.
    assert "Clever" in http.get(location).text


def test_deactivated_student_is_told_to_ask_their_teacher(http, district, database):
    with database.session() as session:
        actor = system_actor(district.tenant_id)
        user = users.get_user(session, actor, district.students["lisa"]["id"])
        users.deactivate_user(session, actor, user)
    response = sign_in(http, _login_location(http, district), "lisa", "correct horse battery")
    assert response.status_code == 403
    assert "Ask your teacher" in response.text


def test_forms_need_their_csrf_token_and_cookies_are_locked_down(http, district):
    location = _login_location(http, district)
    page = http.get(location)
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    forged = http.post(
        "/login", data={"username": "lisa", "password": "correct horse battery", "csrf": "x"}
    )
    assert forged.status_code == 400
    ok = sign_in(http, location, "lisa", "correct horse battery")
    session_cookie = ok.headers["set-cookie"]
    assert "rollcall_session" in session_cookie
    assert "HttpOnly" in session_cookie and "Secure" not in session_cookie


def test_prompt_none_answers_login_required_without_a_session(http, district):
    response = http.get(authorize_url(district.client_id, prompt="none", state="abc"))
    assert response.status_code == 302
    query = query_of(response.headers["location"])
    assert query["error"] == "login_required"
    assert query["state"] == "abc"


def test_prompt_none_with_a_session_issues_a_code_silently(http, district):
    code_flow(http, district.client_id, "lisa", "correct horse battery")
    silent = http.get(authorize_url(district.client_id, prompt="none"))
    assert silent.status_code == 302
    assert "code=" in silent.headers["location"]


def test_prompt_login_and_max_age_ask_for_a_fresh_sign_in(http, district):
    code_flow(http, district.client_id, "lisa", "correct horse battery")
    again = http.get(authorize_url(district.client_id, prompt="login"))
    assert again.headers["location"].startswith("/login")
    import time

    time.sleep(1.1)
    old = http.get(authorize_url(district.client_id, max_age="0"))
    assert old.headers["location"].startswith("/login")
    fresh = code_flow(http, district.client_id, "lisa", "correct horse battery", max_age="1")
    claims = verify_id_token(http, exchange(http, district, fresh["code"]).json()["id_token"])
    assert "auth_time" in claims


def test_login_hint_fills_the_username(http, district):
    location = _login_location(http, district, login_hint="lisa")
    assert 'value="lisa"' in http.get(location).text


def test_unregistered_redirect_uri_gets_an_error_page_not_a_redirect(http, district):
    response = http.get(authorize_url(district.client_id, redirect_uri="https://evil.example/"))
    assert response.status_code == 400
    assert "not valid" in response.text
    missing = http.get(
        f"/oauth/authorize?client_id={district.client_id}&redirect_uri={REDIRECT}&state=z"
    )
    assert missing.status_code == 302
    assert query_of(missing.headers["location"])["error"] == "unsupported_response_type"


def test_request_objects_are_refused_cleanly(http, district):
    response = http.get(authorize_url(district.client_id, request="eyJ.x.y"))
    assert query_of(response.headers["location"])["error"] == "request_not_supported"


def test_logout_ends_the_session_and_returns_to_the_app(http, district):
    callback = code_flow(http, district.client_id, "lisa", "correct horse battery")
    id_token = exchange(http, district, callback["code"]).json()["id_token"]
    out = http.get(
        "/oauth/logout",
        params={
            "id_token_hint": id_token,
            "post_logout_redirect_uri": LOGOUT_REDIRECT,
            "state": "bye",
        },
    )
    assert out.status_code == 302
    assert out.headers["location"] == LOGOUT_REDIRECT + "?state=bye"
    after = http.get(authorize_url(district.client_id, prompt="none"))
    assert query_of(after.headers["location"])["error"] == "login_required"
    unregistered = http.get(
        "/oauth/logout",
        params={"client_id": district.client_id, "post_logout_redirect_uri": "https://evil/"},
    )
    assert unregistered.status_code == 400


def test_sessions_stay_in_their_tenant(http, district, database):
    from server.domain import oauth
    from server.domain.tenants import create_tenant

    with database.session() as session:
        other = create_tenant(session, "Shelbyville District")
        foreign = oauth.create_client(
            session, system_actor(other.id), "Shelbyville App", redirect_uris=[REDIRECT]
        )
    code_flow(http, district.client_id, "lisa", "correct horse battery")
    crossing = http.get(authorize_url(foreign.client.client_id, prompt="none"))
    assert query_of(crossing.headers["location"])["error"] == "login_required"
    location = http.get(authorize_url(foreign.client.client_id)).headers["location"]
    assert sign_in(http, location, "lisa", "correct horse battery").status_code == 401
