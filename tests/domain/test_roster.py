"""Classes and enrollments: owned, versioned, audited, idempotent, soft-deleted then purged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from server.db import AuditEvent, Enrollment, RecordStatus, SchoolClass, utcnow
from server.districts import klass, school, sso_connection, student
from server.domain import roster, roster_status, roster_views
from server.domain.actors import connection_actor
from server.errors import ManagedBySource, NotFound, RequiredValue


def test_enrolling_twice_keeps_one_enrollment(session, system):
    org = school(session, system)
    pupil, maths = student(session, system, org, "Ada", "Kay"), klass(session, system, org)
    first = roster.enroll(session, system, pupil, maths)
    again = roster.enroll(session, system, pupil, maths)
    assert again.id == first.id
    assert [u.id for u in roster_views.class_members(session, system, maths)] == [pupil.id]


def test_unenrolled_student_leaves_the_class_and_comes_back(session, system):
    org = school(session, system)
    pupil, maths = student(session, system, org, "Ada", "Kay"), klass(session, system, org)
    enrollment = roster.enroll(session, system, pupil, maths)
    roster_status.set_status(session, system, enrollment, RecordStatus.INACTIVE)
    assert roster_views.class_members(session, system, maths) == []
    roster.enroll(session, system, pupil, maths)
    assert enrollment.status == RecordStatus.ACTIVE


def test_class_updates_are_versioned_audited_and_idempotent(session, system):
    maths = klass(session, system, school(session, system))
    assert roster.update_record(session, system, maths, {"title": "Maths 3B"}) == {
        "title": ["Maths 3A", "Maths 3B"]
    }
    assert maths.version == 2
    assert roster.update_record(session, system, maths, {"title": "Maths 3B"}) == {}
    assert maths.version == 2
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.target_id == maths.id))
    assert list(actions) == ["class.create", "class.update"]


def test_a_synced_class_is_guarded_against_manual_edits(session, system):
    org = school(session, system)
    clever = connection_actor(sso_connection(session, system, "Clever"))
    synced = roster.create_class(session, clever, {"title": "Art", "school_id": org.id})
    with pytest.raises(ManagedBySource, match="managed by Clever"):
        roster.update_record(session, system, synced, {"title": "Drawing"})
    assert roster.update_record(session, system, synced, {"title": "Drawing"}, override=True)


def test_class_needs_a_title_and_an_existing_school(session, system):
    with pytest.raises(RequiredValue):
        roster.create_class(session, system, {"title": "", "school_id": "x"})
    with pytest.raises(NotFound):
        roster.create_class(session, system, {"title": "Art", "school_id": "no-such-school"})


def test_deleted_classes_and_enrollments_are_purged_after_retention(session, system):
    org = school(session, system)
    pupil, maths = student(session, system, org, "Ada", "Kay"), klass(session, system, org)
    enrollment = roster.enroll(session, system, pupil, maths)
    roster_status.set_status(session, system, enrollment, RecordStatus.DELETED)
    roster_status.set_status(session, system, maths, RecordStatus.DELETED)
    assert roster_status.purge_deleted_records(session, system) == 0
    for record in (enrollment, maths):
        record.updated_at = utcnow() - timedelta(days=31)
    session.flush()
    assert roster_status.purge_deleted_records(session, system) == 2
    assert session.scalars(select(SchoolClass)).all() == []
    assert session.scalars(select(Enrollment)).all() == []
