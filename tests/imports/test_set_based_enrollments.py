"""The enrollment path of imports, set-based (issue 15): a batch of enrollments.csv rows
reads the users and classes it names as tuples (``server.domain.record_refs``), builds no
ORM object for them, and keeps every rule of one enrollment at a time (R108, R109, one audit
event per enrollment, the same event ``roster.enroll`` records).

Speed is measured in ``bench/imports.py``; these tests count objects and statements."""

from __future__ import annotations

from sqlalchemy import select

from server.db import AuditEvent, Enrollment, SchoolClass, User
from server.districts import klass, school, student
from server.domain import roster
from server.domain.enrollments import Enrolled, NewEnrollment, enroll_many
from server.domain.record_refs import classes_named, users_named
from tests.imports.conftest import loaded
from tests.imports.packages import district, package

STUDENTS = 1200  # three batches of enrollments


def test_enrollment_batches_load_no_user_or_class(tenancy, tmp_path):
    """cProfile of a first import at 5,000 users: resolving the batches' userSourcedId and
    classSourcedId populated 25k ORM objects (1.4 s of 11.6 s)."""
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=STUDENTS))
    with loaded(User, SchoolClass) as read:
        first = tenancy.run(path)
    assert first.status == "applied", first.summary
    assert read == [], f"{len(read)} users and classes loaded as ORM objects"
    rows = [r for r in first.as_dict()["row_results"] if r["file"] == "enrollments.csv"]
    assert len(rows) == STUDENTS + 1 and {r["outcome"] for r in rows} == {"created"}
    ava = tenancy.user("u7").id
    with tenancy.database.session() as session:
        kid = session.scalars(select(Enrollment).where(Enrollment.sourced_id == "e-u7")).one()
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "enrollment.create")
        ).all()
        k1 = session.scalars(select(SchoolClass).where(SchoolClass.sourced_id == "k1")).one()
        assert (kid.class_id, kid.school_id, kid.user_id) == (
            k1.id,
            k1.school_id,
            ava,
        )
    assert len(events) == len({e.target_id for e in events}) == STUDENTS + 1


def test_re_pointed_enrollments_load_no_user(tenancy, tmp_path):
    """A full import re-pointing every enrollment to another class loaded each user it
    named in full (with its roles, grades and credential) to check the user's tenant."""
    files = district("1.1", students=600)
    files["classes.csv"].append({**files["classes.csv"][0], "sourcedId": "k2", "title": "3B"})
    assert tenancy.run(package(tmp_path / "first.zip", "1.1", files)).status == "applied"
    for row in files["enrollments.csv"]:
        row["classSourcedId"] = "k2"
    with loaded(User, SchoolClass) as read:
        moved = tenancy.run(package(tmp_path / "moved.zip", "1.1", files))
    assert moved.status == "applied", moved.summary
    assert moved.outcomes["updated"] == 601, moved.summary
    assert [type(r).__name__ for r in read] == [], f"{len(read)} users and classes loaded"


def test_an_enrollment_naming_a_user_of_another_tenant_is_refused(tenancy, tmp_path, database):
    """Tuples are read in the importing tenant: another tenant's user with the same
    sourcedId is not found (R108), and nothing of the batch is half-written."""
    from server.domain.actors import system_actor
    from server.domain.tenants import create_tenant

    with database.session() as session:
        other = create_tenant(session, "Shelbyville")
        system = system_actor(other.id)
        kid = student(session, system, school(session, system), "Ava", "Adams")
        kid.sourced_id = "ghost"
    files = district("1.1", students=3)
    files["enrollments.csv"].append({**files["enrollments.csv"][1], "sourcedId": "e-g"})
    files["enrollments.csv"][-1]["userSourcedId"] = "ghost"
    report = tenancy.run(package(tmp_path / "d.zip", "1.1", files), skip_invalid=True)
    rows = {r["key"]: r for r in report.as_dict()["row_results"] if r["file"] == "enrollments.csv"}
    assert rows["e-g"]["code"] == "R108" and "ghost" in rows["e-g"]["message"]
    assert {rows[f"e-u{n}"]["outcome"] for n in range(4)} == {"created"}


def test_enroll_many_with_tuples_records_what_enroll_records(session, system):
    """One definition of a new enrollment for both paths: the row and the audit event of an
    enrollment made from the tuples an import reads equal those of ``roster.enroll``."""
    org = school(session, system)
    maths = klass(session, system, org)
    ava, ben = student(session, system, org, "Ava", "A"), student(session, system, org, "Ben", "B")
    session.flush()
    people = users_named(session, system.tenant_id, [ava.sourced_id])
    classes = classes_named(session, system.tenant_id, [maths.sourced_id])
    dates = {"begin_date": "2026-09-01", "end_date": None}
    (made,) = enroll_many(
        session,
        system,
        [
            NewEnrollment(
                people[ava.sourced_id],
                classes[maths.sourced_id],
                role="teacher",
                sourced_id="bulk",
                **dates,
            )
        ],
    )
    one = roster.enroll(session, system, ben, maths, role="teacher", sourced_id="one", **dates)
    assert isinstance(made, Enrolled)
    bulk = session.get(Enrollment, made.id)
    own = ("id", "user_id", "sourced_id", "created_at", "updated_at")
    columns = [c.key for c in Enrollment.__table__.columns if c.key not in own]
    assert {c: getattr(bulk, c) for c in columns} == {c: getattr(one, c) for c in columns}
    events = {
        e.target_label: e
        for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "enrollment.create"))
    }
    bulk_changes, one_changes = events["bulk"].changes, events["one"].changes
    assert bulk_changes.pop("user_id") == [None, ava.id]
    assert one_changes.pop("user_id") == [None, ben.id]
    assert bulk_changes == one_changes
    assert bulk_changes["begin_date"] == [None, "2026-09-01"] and "end_date" not in bulk_changes
