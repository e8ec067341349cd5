"""Classes created a batch at a time (issue 15): a first import's classes go in with one Core
``executemany`` for the classes and one for their terms, building no ORM object, under the
rules of ``roster.create_class`` (the checks of ``class_values_to_create``, the folded title,
ownership, one ``class.create`` audit event each with the same changes).

Speed is measured in ``bench/imports.py``; these tests count objects and statements."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event, inspect, select

from server.db import AcademicSession, AuditEvent, Course, Org, SchoolClass
from server.districts import school
from server.domain import bulk_roster, roster
from tests.imports.conftest import built, statements
from tests.imports.packages import district, package

CLASSES = 300


def _classes(files) -> None:
    first = files["classes.csv"][0]
    files["classes.csv"] += [
        {**first, "sourcedId": f"k-{n}", "title": f"Maths {n}", "classCode": ""}
        for n in range(CLASSES)
    ]


def test_a_first_import_builds_no_object_for_the_classes_it_creates(tenancy, tmp_path):
    """cProfile of a first import: ``create_classes`` took 1 ms per class (an ORM object, its
    terms collection and folded title, and their flush)."""
    files = district("1.1", students=3)
    _classes(files)
    with built(SchoolClass) as made, statements(tenancy.database) as sent:
        first = tenancy.run(package(tmp_path / "d.zip", "1.1", files))
    assert first.status == "applied", first.summary
    assert made == [], f"{len(made)} ORM objects built for {CLASSES + 1} new classes"
    assert sent() < 120, f"{sent()} statements for a first import with {CLASSES} classes"
    with tenancy.database.session() as session:
        klass = session.scalars(select(SchoolClass).where(SchoolClass.sourced_id == "k-7")).one()
        term = session.scalars(select(AcademicSession)).one()
        assert (klass.title, klass.title_folded, klass.class_code, klass.version) == (
            "Maths 7",
            "maths 7",
            None,
            1,
        )
        assert [t.id for t in klass.terms] == [term.id]
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "class.create"))
        by_target = {event.target_id: event for event in events}
    assert len(by_target) == CLASSES + 1
    assert by_target[klass.id].changes["terms"] == [None, [term.id]]
    assert by_target[klass.id].target_label == "Maths 7"


def test_classes_created_in_bulk_are_the_classes_create_class_makes(session, system):
    """One definition of a new class for both paths: every column, the terms and the audit
    event's changes agree."""
    org = school(session, system)
    term = roster.create_academic_session(session, system, {"title": "Fall", "type": "term"})
    fields = {
        "title": " Ártés 3A ",
        "school_id": org.id,
        "class_code": "AR3A",
        "class_type": "homeroom",
        "grades": ["04", "03"],
        "periods": ["1"],
        "external_id": "Ext-1",
        "term_ids": [term.id],
    }
    (made,) = bulk_roster.create_classes(session, system, [{**fields, "sourced_id": "bulk-1"}])
    one = roster.create_class(session, system, {**fields, "sourced_id": "one-1"})
    session.flush()
    session.expire_all()
    bulk = session.get(SchoolClass, made.id)
    assert bulk is not None and made.sourced_id == "bulk-1"
    assert _columns(bulk) == _columns(one)
    assert [t.id for t in bulk.terms] == [t.id for t in one.terms] == [term.id]
    events = {
        e.target_id: e
        for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "class.create"))
    }
    assert events[made.id].target_label == events[one.id].target_label == "Ártés 3A"
    assert events[made.id].changes == events[one.id].changes
    assert events[made.id].changes["title"] == [None, "Ártés 3A"]


OWN = ("id", "sourced_id", "created_at", "updated_at")


def _columns(record) -> dict:
    mapper = inspect(record).mapper
    return {c.key: getattr(record, c.key) for c in mapper.column_attrs if c.key not in OWN}


def test_a_first_import_builds_no_object_for_its_orgs_sessions_and_courses(tenancy, tmp_path):
    """Orgs, academic sessions and courses were created one by one through the ORM (a SELECT
    for the sourcedId, an INSERT and an audit INSERT each). A school's parent may be a
    district of the same batch; a term's parent a year of the same batch."""
    files = district("1.1", students=3)
    files["orgs.csv"] += [
        {"sourcedId": f"s-{n}", "name": f"School {n}", "type": "school", "parentSourcedId": "d1"}
        for n in range(CLASSES)
    ]
    files["academicSessions.csv"] += [
        {**files["academicSessions.csv"][0], "sourcedId": f"t-{n}", "title": f"Term {n}"}
        for n in range(CLASSES)
    ]
    files["courses.csv"] += [
        {**files["courses.csv"][0], "sourcedId": f"c-{n}", "title": f"Course {n}"}
        for n in range(CLASSES)
    ]
    with built(Org, AcademicSession, Course) as made, statements(tenancy.database) as sent:
        first = tenancy.run(package(tmp_path / "d.zip", "1.1", files))
    assert first.status == "applied", first.summary
    assert made == [], f"{len(made)} ORM objects built for {3 * CLASSES + 4} new records"
    assert sent() < 120, f"{sent()} statements for {3 * CLASSES} orgs, sessions and courses"
    with tenancy.database.session() as session:
        ids = dict(session.execute(select(Org.sourced_id, Org.id)).all())
        school7 = session.get(Org, ids["s-7"])
        course = session.scalars(select(Course).where(Course.sourced_id == "c-7")).one()
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "org.create"))
        by_target = {event.target_id: event for event in events}
        assert (school7.name, school7.type, school7.parent_id) == ("School 7", "school", ids["d1"])
        assert (course.title, course.org_id, course.grades) == ("Course 7", ids["s1"], ["03"])
    assert len(by_target) == CLASSES + 2
    assert by_target[school7.id].changes["parent_id"] == [None, ids["d1"]]
    assert tenancy.count(AcademicSession) == CLASSES + 1
    assert tenancy.count(Course) == CLASSES + 1


def test_a_bad_org_row_falls_back_to_row_by_row_and_parents_still_resolve(tenancy, tmp_path):
    """A new district and its new school in one batch, beside a school naming an unknown
    parent (R108): the batch is redone row by row, the ids it had given the new records are
    forgotten, and the school names the district as it was finally created."""
    files = district("1.1", students=3)
    files["orgs.csv"] += [
        {"sourcedId": "d2", "name": "North District", "type": "district"},
        {"sourcedId": "s2", "name": "North School", "type": "school", "parentSourcedId": "d2"},
        {"sourcedId": "s3", "name": "Lost School", "type": "school", "parentSourcedId": "nope"},
    ]
    report = tenancy.run(package(tmp_path / "d.zip", "1.1", files), skip_invalid=True)
    rows = {r["key"]: r for r in report.as_dict()["row_results"] if r["file"] == "orgs.csv"}
    assert rows["s3"]["code"] == "R108"
    assert {rows[key]["outcome"] for key in ("d1", "s1", "d2", "s2")} == {"created"}
    with tenancy.database.session() as session:
        ids = dict(session.execute(select(Org.sourced_id, Org.id)).all())
        assert session.get(Org, ids["s2"]).parent_id == ids["d2"]
        created = session.scalars(
            select(AuditEvent.target_id).where(AuditEvent.action == "org.create")
        ).all()
    assert sorted(created) == sorted(ids.values()) and "s3" not in ids


def _updates_of_roster(database) -> tuple[Any, list[str]]:
    """A listener and the tables of the roster records (not users, not enrollments) that
    ``UPDATE`` statements sent to ``database`` name."""
    updated: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:
        found = re.match(r'\s*UPDATE\s+"?(\w+)', statement, re.IGNORECASE)
        if found and found.group(1) in ("orgs", "academic_sessions", "courses", "classes"):
            updated.append(found.group(1))

    return note, updated


def test_a_first_import_writes_the_row_hashes_of_its_new_records_with_them(tenancy, tmp_path):
    """Issue 15: the orgs, terms, courses and classes a first import creates are inserted with
    their row hashes (as users and enrollments are), not inserted and then updated to store
    them (a second write of each row, and rows the replay of a prepared import could not move
    from the copy); the re-import of the same package still finds every row unchanged."""
    files = district("1.1", students=3)
    _classes(files)
    for name, key in (("academicSessions.csv", "t"), ("courses.csv", "c")):
        first = files[name][0]  # more than one row: a file of one is written row by row
        files[name] += [{**first, "sourcedId": f"{key}-{n}"} for n in range(3)]
    archive = package(tmp_path / "d.zip", "1.1", files)
    note, updated = _updates_of_roster(tenancy.database)
    event.listen(tenancy.database.engine, "before_cursor_execute", note)
    try:
        first = tenancy.run(archive)
    finally:
        event.remove(tenancy.database.engine, "before_cursor_execute", note)
    assert first.status == "applied", first.summary
    assert updated == [], f"UPDATEs after the INSERTs of a first import: {sorted(set(updated))}"
    again = tenancy.run(archive)
    assert again.status == "applied", again.summary
    outcomes = {(r["file"], r["outcome"]) for r in again.as_dict()["row_results"]}
    assert ("classes.csv", "unchanged") in outcomes
    assert {outcome for _, outcome in outcomes} == {"unchanged"}, outcomes
