"""enroll_many follows enroll's rules, in bulk."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from server.db import AuditEvent, Enrollment
from server.districts import klass, school, student
from server.domain import roster, roster_status
from server.domain.enrollments import NewEnrollment, enroll_many
from server.errors import Conflict, InvalidValue


def test_enroll_many_creates_audits_and_reuses_what_exists(session, system):
    org = school(session, system)
    maths = klass(session, system, org)
    ava, ben = (
        student(session, system, org, "Ava", "Adams"),
        student(session, system, org, "Ben", "B"),
    )
    roster_status.set_status(
        session, system, roster.enroll(session, system, ben, maths), "inactive"
    )
    made = enroll_many(
        session,
        system,
        [
            NewEnrollment(ava, maths, sourced_id="e1", begin_date="2026-09-01"),
            NewEnrollment(ava, maths, begin_date="2026-09-02"),  # same triple: same enrollment
            NewEnrollment(ben, maths, sourced_id="e2"),  # existing (inactive): reactivated
            NewEnrollment(ava, maths, role="teacher"),
        ],
    )
    assert made[0] is made[1] and made[0].sourced_id == "e1"
    assert made[0].begin_date.isoformat() == "2026-09-02", "updated like enroll() does"
    assert made[2].status == "active" and made[2].sourced_id != "e2"
    assert session.get(Enrollment, made[3].id).role == "teacher"  # new: inserted, no object
    assert session.scalar(select(Enrollment.id).where(Enrollment.sourced_id == "e1"))
    creates = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "enrollment.create")
    ).all()
    assert len(creates) == 3  # ben's first enrollment, e1, the teacher one


def test_enroll_many_refuses_bad_roles_and_taken_sourced_ids(session, system):
    org = school(session, system)
    maths = klass(session, system, org)
    ava = student(session, system, org, "Ava", "Adams")
    with pytest.raises(InvalidValue):
        enroll_many(session, system, [NewEnrollment(ava, maths, role="wizard")])
    enroll_many(session, system, [NewEnrollment(ava, maths, sourced_id="e1")])
    with pytest.raises(Conflict):
        enroll_many(session, system, [NewEnrollment(ava, maths, role="aide", sourced_id="e1")])


def _stored(session, enrollment_id: str) -> tuple:
    """An enrollment's columns and its creation event's changes as stored, its own ids and
    times left out."""
    found = {"id": enrollment_id}
    row = session.execute(
        text(
            'SELECT role, "primary", school_id, begin_date, end_date, status, version, extra '
            "FROM enrollments WHERE id = :id"
        ),
        found,
    ).one()
    changes = session.execute(
        text(
            "SELECT changes FROM audit_events "
            "WHERE action = 'enrollment.create' AND target_id = :id"
        ),
        found,
    ).scalar_one()
    return tuple(row), json.loads(changes) if isinstance(changes, str) else changes


def test_enroll_many_stores_what_enroll_stores(session, system):
    """A new enrollment's row and audit event, written by enroll_many without an ORM object
    or a dict per row (issue 15), are those ``roster.enroll`` writes."""
    org = school(session, system)
    maths = klass(session, system, org)
    ava = student(session, system, org, "Ava", "Adams")
    ben = student(session, system, org, "Ben", "B")
    items = [
        {"primary": True},
        {"role": "teacher", "begin_date": "2026-09-01", "end_date": "2027-07-01"},
    ]
    for given in items:
        one = roster.enroll(session, system, ava, maths, **given)
        session.flush()
        [many] = enroll_many(session, system, [NewEnrollment(ben, maths, **given)])
        row, changes = _stored(session, one.id)
        many_row, many_changes = _stored(session, many.id)
        assert many_row == row
        assert changes.pop("user_id") == [None, ava.id]
        assert many_changes.pop("user_id") == [None, ben.id]
        assert many_changes == changes and changes["class_id"] == [None, maths.id]
