"""Every sign-in attempt is audited (SECURITY.md, Audit; SPEC §8): each try at the student
sign-in page, the badge page and the staff sign-in page adds exactly one event, whatever
its outcome (signed in, wrong, unknown, SSO account, inactive, voided or expired badge,
throttled), in the tenant of the account or badge it named."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from server import districts as builders
from server.db import AuditEvent, Badge, utcnow
from server.domain import badges, users
from server.domain.actors import connection_actor, system_actor
from server.domain.signin import ACCOUNT_FREE_FAILURES
from server.domain.staff import create_staff
from tests.oidc.conftest import PASSWORD, csrf_of, sign_in

SIGN_IN_EVENTS = ("signin.", "staff.signin")


def _events(database) -> list[str]:
    with database.session() as session:
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id))
        return [a for a in actions if a.startswith(SIGN_IN_EVENTS)]


def _one_event_each(database, attempt, times: int = 1) -> list[str]:
    """Run ``attempt`` ``times`` times; the sign-in events it added (one per try expected)."""
    before = len(_events(database))
    answers = [attempt() for _ in range(times)]
    added = _events(database)[before:]
    assert len(added) == times, (added, [a.status_code for a in answers])
    return added


def _badge(http, token, pin=None):
    page = http.get("/login/badge", params={"badge": token, "next": ""})
    data = {"badge": token, "csrf": csrf_of(page.text), "next": ""}
    if pin is not None:
        data["pin"] = pin
    return http.post("/login/badge", data=data)


def test_every_password_attempt_is_one_event(http, district, database):
    with database.session() as session:
        actor = system_actor(district.tenant_id)
        clever = builders.sso_connection(session, actor)
        org = builders.school(session, actor, "Clever School")
        builders.student(session, connection_actor(clever), org, "Mil", "Houten", username="mil")
        gone = builders.student(session, actor, org, "Nel", "Muntz", username="nelson")
        users.deactivate_user(session, actor, gone)

    def attempt(username, password):
        return lambda: sign_in(http, "/login", username, password)

    assert _one_event_each(database, attempt("lisa", PASSWORD)) == ["signin.success"]
    assert _one_event_each(database, attempt("lisa", "wrong")) == ["signin.failure"]
    assert _one_event_each(database, attempt("nobody-here", "wrong")) == ["signin.failure"]
    assert _one_event_each(database, attempt("mil", "anything")) == ["signin.failure"]
    assert _one_event_each(database, attempt("nelson", "anything")) == ["signin.failure"]
    throttled = _one_event_each(database, attempt("lisa", "wrong"), ACCOUNT_FREE_FAILURES + 1)
    assert throttled[-1] == "signin.throttled"


def test_every_badge_attempt_with_a_known_badge_is_one_event(http, district, database, box):
    with database.session() as session:
        actor = system_actor(district.tenant_id)
        lisa = users.get_user(session, actor, district.students["lisa"]["id"])
        plain = badges.issue_badge(session, actor, lisa, box=box).token
    assert _one_event_each(database, lambda: _badge(http, plain)) == ["signin.success"]
    with database.session() as session:
        lisa = users.get_user(session, actor, district.students["lisa"]["id"])
        badges.void_badge(session, actor, lisa)
    assert _one_event_each(database, lambda: _badge(http, plain)) == ["signin.refused"]
    with database.session() as session:
        lisa = users.get_user(session, actor, district.students["lisa"]["id"])
        expiring = badges.issue_badge(session, actor, lisa, box=box)
        session.get(Badge, expiring.badge.id).expires_at = utcnow() - timedelta(minutes=1)
    assert _one_event_each(database, lambda: _badge(http, expiring.token)) == ["signin.refused"]
    with database.session() as session:
        lisa = users.get_user(session, actor, district.students["lisa"]["id"])
        pinned = badges.issue_badge(session, actor, lisa, box=box, pin="4321").token
    wrong = _one_event_each(
        database, lambda: _badge(http, pinned, "0000"), ACCOUNT_FREE_FAILURES + 1
    )
    assert set(wrong[:-1]) == {"signin.failure"} and wrong[-1] == "signin.throttled"
    assert _badge(http, pinned, "4321").status_code == 429


def test_every_staff_attempt_is_one_event(http, district, database):
    with database.session() as session:
        made = create_staff(session, system_actor(district.tenant_id), "skinner", "district_admin")

    def attempt(password):
        return lambda: http.post("/admin/login", data={"username": "skinner", "password": password})

    assert _one_event_each(database, attempt(made.password)) == ["staff.signin"]
    wrong = _one_event_each(database, attempt("wrong"), ACCOUNT_FREE_FAILURES + 1)
    assert set(wrong[:-1]) == {"staff.signin_failure"}
    assert wrong[-1] == "staff.signin_throttled"
