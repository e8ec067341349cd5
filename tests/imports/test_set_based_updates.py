"""The set-based write path of imports, for changed records (issue 15): a re-pointed
enrollment or a renamed org, session or course is updated with the rest of its batch (one
UPDATE ``executemany``, the audit events in one more), under the same rules as one at a time
(R109 ownership, one audit event per change, a bad row reported on its row).

Speed is measured in ``bench/imports.py``; these tests count statements."""

from __future__ import annotations

from sqlalchemy import select

from server.db import AuditEvent, Course, Enrollment, Org, SchoolClass
from tests.imports.conftest import statements
from tests.imports.packages import district, package

STUDENTS = 600
SCHOOLS = 300


def _events(tenancy, action: str) -> list[AuditEvent]:
    with tenancy.database.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _k2(files) -> None:
    """A second class of the same school and course."""
    files["classes.csv"].append({**files["classes.csv"][0], "sourcedId": "k2", "title": "3B"})


def test_re_pointed_enrollments_are_updated_a_batch_at_a_time(tenancy, tmp_path):
    """measure_deact.py (2,000 users): a full import re-pointing 3,415 enrollments (the same
    sourcedId, another class) sent ~11k statements, an UPDATE and an audit INSERT per row."""
    files = district("1.1", students=STUDENTS)
    _k2(files)
    first = tenancy.run(package(tmp_path / "first.zip", "1.1", files))
    assert first.status == "applied", first.summary
    for row in files["enrollments.csv"][1:]:
        row["classSourcedId"] = "k2"

    with statements(tenancy.database) as sent:
        moved = tenancy.run(package(tmp_path / "moved.zip", "1.1", files))

    assert moved.status == "applied", moved.summary
    assert moved.outcomes["updated"] == STUDENTS, moved.summary
    assert sent() < STUDENTS // 4, f"{sent()} statements to re-point {STUDENTS} enrollments"
    with tenancy.database.session() as session:
        classes = dict(session.execute(select(SchoolClass.sourced_id, SchoolClass.id)).all())
        kid = session.scalars(select(Enrollment).where(Enrollment.sourced_id == "e-u7")).one()
        assert (kid.class_id, kid.version) == (classes["k2"], 2)
    events = _events(tenancy, "enrollment.update")
    assert len(events) == len({e.target_id for e in events}) == STUDENTS
    assert events[0].changes == {"class_id": [classes["k1"], classes["k2"]]}
    assert {e.actor_name for e in events} == {"SIS"}


def _schools(files, suffix: str = "") -> None:
    files["orgs.csv"] += [
        {
            "sourcedId": f"s-{n}",
            "name": f"School {n}{suffix}",
            "type": "school",
            "parentSourcedId": "d1",
        }
        for n in range(SCHOOLS)
    ]
    files["courses.csv"] += [
        {**files["courses.csv"][0], "sourcedId": f"c-{n}", "title": f"Course {n}{suffix}"}
        for n in range(SCHOOLS)
    ]


def test_renamed_orgs_and_courses_are_updated_a_batch_at_a_time(tenancy, tmp_path):
    """Orgs, academic sessions and courses were updated one by one through the domain (an
    UPDATE and an audit INSERT each)."""
    files = district("1.1", students=3)
    _schools(files)
    first = tenancy.run(package(tmp_path / "first.zip", "1.1", files))
    assert first.status == "applied", first.summary
    files = district("1.1", students=3)
    _schools(files, " (renamed)")

    with statements(tenancy.database) as sent:
        renamed = tenancy.run(package(tmp_path / "renamed.zip", "1.1", files))

    assert renamed.status == "applied", renamed.summary
    assert renamed.outcomes["updated"] == 2 * SCHOOLS, renamed.summary
    assert sent() < SCHOOLS // 2, f"{sent()} statements to rename {SCHOOLS} orgs and courses"
    with tenancy.database.session() as session:
        org = session.scalars(select(Org).where(Org.sourced_id == "s-7")).one()
        course = session.scalars(select(Course).where(Course.sourced_id == "c-7")).one()
        org_id = org.id
        assert (org.name, org.version, course.title) == (
            "School 7 (renamed)",
            2,
            "Course 7 (renamed)",
        )
    orgs, courses = _events(tenancy, "org.update"), _events(tenancy, "course.update")
    assert len(orgs) == len(courses) == SCHOOLS
    [school_7] = [event for event in orgs if event.target_id == org_id]
    assert school_7.changes == {"name": ["School 7", "School 7 (renamed)"]}


def test_a_bad_row_among_updates_is_reported_on_its_row_and_the_others_are_updated(
    tenancy, tmp_path
):
    """The batch falls back to row by row: the bad row gets its code, the rest change."""
    files = district("1.1", students=20)
    _k2(files)
    first = tenancy.run(package(tmp_path / "first.zip", "1.1", files))
    assert first.status == "applied", first.summary
    for row in files["enrollments.csv"][1:]:
        row["classSourcedId"] = "k2"
    files["enrollments.csv"][5]["beginDate"] = "2026-13-45"

    moved = tenancy.run(package(tmp_path / "moved.zip", "1.1", files), skip_invalid=True)

    assert moved.status == "applied", moved.summary
    rows = moved.as_dict()["row_results"]
    bad = [row for row in rows if row["outcome"] == "error"]
    assert [(row["key"], row["code"]) for row in bad] == [("e-u5", "R102")]
    assert moved.outcomes["updated"] == 19, moved.summary
    assert len(_events(tenancy, "enrollment.update")) == 19


def test_changed_users_are_updated_a_batch_at_a_time(tenancy, tmp_path):
    """bench.imports' 1% delta (another family name) and measure_deact.py: each changed
    user was an UPDATE and an audit INSERT of its own (``users.update_user``)."""
    files = district("1.1", students=STUDENTS)
    first = tenancy.run(package(tmp_path / "first.zip", "1.1", files))
    assert first.status == "applied", first.summary
    for row in files["users.csv"]:
        row["familyName"] += "x"
    files = {"users.csv": files["users.csv"]}

    with statements(tenancy.database) as sent:
        changed = tenancy.run(package(tmp_path / "changed.zip", "1.1", files), mode="delta")

    assert changed.status == "applied", changed.summary
    assert changed.outcomes["updated"] == STUDENTS + 1, changed.summary
    assert sent() < STUDENTS // 4, f"{sent()} statements to change {STUDENTS} users"
    kid = tenancy.user("u7")
    assert (kid.family_name, kid.family_folded, kid.version) == ("Dentgx", "dentgx", 2)
    events = _events(tenancy, "user.update")
    assert len(events) == len({e.target_id for e in events}) == STUDENTS + 1
    assert [e.changes for e in events if e.target_id == kid.id] == [
        {"family_name": ["Dentg", "Dentgx"]}
    ]


def test_a_user_of_another_connection_among_updates_is_refused_on_its_row(tenancy, tmp_path):
    """Ownership (R109) holds for users updated a batch at a time: the batch falls back to
    row by row, the other connection's user is reported on its row, the rest change."""
    files = district("1.1", students=20)
    first = tenancy.run(package(tmp_path / "first.zip", "1.1", files))
    assert first.status == "applied", first.summary
    theirs = {**files["users.csv"][3], "sourcedId": "zz", "username": "Other.Kid"}
    clever = {"users.csv": [theirs]}
    made = tenancy.run(package(tmp_path / "clever.zip", "1.1", clever), "Clever", mode="delta")
    assert made.status == "applied", made.summary
    for row in files["users.csv"]:
        row["familyName"] += "x"
    changed = {"users.csv": [*files["users.csv"][:9], {**theirs, "familyName": "Mine"}]}

    report = tenancy.run(
        package(tmp_path / "changed.zip", "1.1", changed), mode="delta", skip_invalid=True
    )

    assert report.status == "applied", report.summary
    bad = [row for row in report.as_dict()["row_results"] if row["outcome"] == "error"]
    assert [(row["key"], row["code"]) for row in bad] == [("zz", "R109")]
    assert report.outcomes["updated"] == 9, report.summary
    assert tenancy.user("zz").family_name == theirs["familyName"]
    assert tenancy.user("u7").family_name == "Dentgx"


def test_users_moved_to_another_school_in_a_batch_keep_one_version_step(tenancy, tmp_path):
    """A user's columns go in with the batch's UPDATE, its new role rows with the ORM's flush:
    the roles are stored, the version goes up once, one audit event names both changes."""
    files = district("1.1", students=20)
    files["orgs.csv"].append({**files["orgs.csv"][1], "sourcedId": "s2", "name": "Other"})
    first = tenancy.run(package(tmp_path / "first.zip", "1.1", files))
    assert first.status == "applied", first.summary
    for row in files["users.csv"]:
        row |= {"orgSourcedIds": "s2", "familyName": row["familyName"] + "x"}

    moved = tenancy.run(package(tmp_path / "moved.zip", "1.1", {"users.csv": files["users.csv"]}))

    assert moved.status == "applied", moved.summary
    assert moved.outcomes["updated"] == 21, moved.summary
    kid = tenancy.user("u7")
    with tenancy.database.session() as session:
        s2 = session.scalars(select(Org.id).where(Org.sourced_id == "s2")).one()
    assert [(r.org_id, r.role) for r in kid.roles] == [(s2, "student")]
    assert (kid.family_name, kid.primary_org_id, kid.version) == ("Dentgx", s2, 2)
    events = [e for e in _events(tenancy, "user.update") if e.target_id == kid.id]
    assert len(events) == 1
    assert set(events[0].changes) >= {"family_name", "roles"}
