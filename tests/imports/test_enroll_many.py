"""enroll_many follows enroll's rules, in bulk."""

from __future__ import annotations

import pytest
from sqlalchemy import select

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
