"""What someone types in the username box is never stored (issue 12, point 6): throttles and
failed sign-in events are keyed by a keyed hash of the folded typed name."""

from __future__ import annotations

from sqlalchemy import select

from server.db import AuditEvent, LoginThrottle
from tests.oidc.conftest import authorize_url, sign_in

TYPED = "Correct-Horse-Battery-77"  # a password typed into the username box


def _stored(database) -> list[str]:
    with database.session() as session:
        events = session.scalars(select(AuditEvent)).all()
        keys = session.scalars(select(LoginThrottle.key)).all()
        texts = [str(v) for e in events for v in (e.actor_name, e.target_label, e.detail)]
        return [*texts, *keys]


def test_a_failed_sign_in_keeps_no_trace_of_the_typed_name(http, district, database):
    location = http.get(authorize_url(district.client_id)).headers["location"]
    failed = sign_in(http, location, TYPED, "whatever")
    assert failed.status_code == 401
    stored = _stored(database)
    assert not [s for s in stored if TYPED.casefold() in s.casefold()], stored
    with database.session() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "signin.failure")
        ).one()
        assert event.actor_name.startswith("typed:") and event.target_label == event.actor_name


def test_the_hashed_key_still_throttles_the_same_name_in_any_case(http, district, database):
    location = http.get(authorize_url(district.client_id)).headers["location"]
    for typed in ("Lisa", "LISA", "lisa ", "lIsA", "lisa"):
        assert sign_in(http, location, typed, "wrong").status_code == 401
    throttled = sign_in(http, location, "Lisa", district.students["lisa"]["password"])
    assert throttled.status_code == 429
    with database.session() as session:
        keys = session.scalars(select(LoginThrottle.key)).all()
    assert not [k for k in keys if "lisa" in k.casefold()], keys


def test_a_failed_staff_sign_in_keeps_no_trace_of_the_typed_name(app_context, district, database):
    from starlette.testclient import TestClient

    from server.app import create_app

    app = create_app(app_context.settings, database=database)
    with TestClient(app) as client:
        refused = client.post("/admin/login", data={"username": TYPED, "password": "x"})
        assert refused.status_code == 401
    stored = _stored(database)
    assert not [s for s in stored if TYPED.casefold() in s.casefold()], stored
    with database.session() as session:
        failures = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "staff.signin_failure")
        ).all()
    assert len(failures) == 1
