"""A nightly full sync of an unchanged district costs next to nothing (issue 15 item 2: the
batch is diffed against stored hashes in SQL), and still sees every change made elsewhere.

Speed itself is measured in ``bench/imports.py``; these tests count the SQL statements a run
sends, which grow with the rows only when rows are applied one by one."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from server.db import AuditEvent, Enrollment, Org, SchoolClass
from tests.imports.conftest import bearer, statements
from tests.imports.packages import district, package

STUDENTS = 1200


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_an_unchanged_reimport_sends_a_few_statements_per_batch_not_per_row(
    tenancy, tmp_path, version
):
    path = package(tmp_path / "district.zip", version, district(version, students=STUDENTS))
    first = tenancy.run(path)
    assert first.status == "applied", first.summary
    with statements(tenancy.database) as sent:
        again = tenancy.run(path)
    assert again.status == "applied", again.summary
    people = STUDENTS + 1
    assert again.outcomes["unchanged"] >= 2 * people  # users and enrollments
    assert again.outcomes["updated"] == again.outcomes["created"] == 0
    # users.csv and enrollments.csv are 2 x 1,201 rows in 6 batches of 500
    assert sent() < people // 4, f"{sent()} statements for an unchanged re-import"


def test_a_change_made_by_staff_is_seen_by_the_next_unchanged_reimport(
    tenancy, tmp_path, client, admin_token
):
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=3))
    assert tenancy.run(path).status == "applied"
    assert tenancy.run(path).outcomes["updated"] == 0
    user = tenancy.user("u2")
    answer = client.patch(
        f"/admin/api/users/{user.id}",
        json={"given_name": "Renamed", "override": True},
        headers=bearer(admin_token),
    )
    assert answer.status_code == 200, answer.text

    report = tenancy.run(path)

    row = next(row for row in report.as_dict()["row_results"] if row["key"] == "u2")
    assert row["outcome"] == "updated"
    assert row["changes"]["given_name"] == ["Renamed", "Stub"]
    assert tenancy.user("u2").given_name == "Stub"
    assert tenancy.run(path).outcomes["updated"] == 0


def test_an_account_deactivated_by_staff_is_reactivated_by_the_next_reimport(
    tenancy, tmp_path, client, admin_token
):
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=3))
    assert tenancy.run(path).status == "applied"
    assert tenancy.run(path).status == "applied"
    user = tenancy.user("u1")
    answer = client.patch(
        f"/admin/api/users/{user.id}",
        json={"active": False, "override": True},
        headers=bearer(admin_token),
    )
    assert answer.status_code == 200, answer.text

    report = tenancy.run(path)

    row = next(row for row in report.as_dict()["row_results"] if row["key"] == "u1")
    assert (row["outcome"], row["code"]) == ("reactivated", "W202")
    assert tenancy.user("u1").status == "active"


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_first_import_creates_users_with_a_few_statements_per_batch(tenancy, tmp_path, version):
    path = package(tmp_path / "district.zip", version, district(version, students=STUDENTS))
    with statements(tenancy.database) as sent:
        first = tenancy.run(path)
    assert first.status == "applied", first.summary
    people = STUDENTS + 1
    assert first.outcomes["created"] >= 2 * people
    assert {tenancy.user(f"u{n}").username for n in (1, STUDENTS)} == {
        "Stua.Denta",
        "Stuatd.Dentatd",
    }
    # one statement or more per row when users are created one by one
    assert sent() < people // 2, f"{sent()} statements for a first import"


def test_a_first_import_creates_classes_with_a_few_statements_per_batch(tenancy, tmp_path):
    """Issue 15 item 2: classes were created one by one through ``roster.create_class`` (a
    sourcedId query, the school, the term, a flush and an audit INSERT each)."""
    classes = 600
    files = district("1.1", students=2)
    (template,) = files["classes.csv"]
    files["classes.csv"] = [
        {**template, "sourcedId": f"k{n}", "title": f"Class {n}", "classCode": f"C{n}"}
        for n in range(1, classes + 1)
    ]
    path = package(tmp_path / "district.zip", "1.1", files)
    with statements(tenancy.database) as sent:
        first = tenancy.run(path)
    assert first.status == "applied", first.summary
    assert tenancy.count(SchoolClass) == classes
    with tenancy.database.session() as session:
        made = session.scalars(select(AuditEvent).where(AuditEvent.action == "class.create"))
        labels = {event.target_label for event in made}
        assert labels == {f"Class {n}" for n in range(1, classes + 1)}
        k7 = session.scalars(select(SchoolClass).where(SchoolClass.sourced_id == "k7")).one()
        school = session.get(Org, k7.school_id)
        assert ([t.sourced_id for t in k7.terms], school.sourced_id) == (["t1"], "s1")
    assert sent() < classes // 2, f"{sent()} statements for a first import of {classes} classes"


def test_a_first_import_enrolls_with_one_insert_per_batch_and_no_object_per_row(tenancy, tmp_path):
    """Issue 15: a first import spent ~40% of its time in enrollments, most of it building an
    ORM object per new enrollment and flushing them (cProfile of ``bench.imports``). New
    enrollments of a batch now go in with one Core ``executemany``, their audit events too,
    with the same changes ``enroll`` records."""
    students = 600
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=students))
    built: list[Enrollment] = []

    def count(target, *_) -> None:
        built.append(target)

    event.listen(Enrollment, "init", count)
    try:
        with statements(tenancy.database) as sent:
            first = tenancy.run(path)
    finally:
        event.remove(Enrollment, "init", count)
    assert first.status == "applied", first.summary
    people = students + 1
    assert tenancy.count(Enrollment) == people
    assert built == [], f"{len(built)} Enrollment objects built for {people} new enrollments"
    assert sent() < people // 2, f"{sent()} statements for a first import"
    with tenancy.database.session() as session:
        made = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "enrollment.create")
        ).all()
        assert len(made) == people
        e1 = session.scalars(select(Enrollment).where(Enrollment.sourced_id == "e-u1")).one()
        (audited,) = [event for event in made if event.target_id == e1.id]
        assert (audited.target_label, audited.changes["role"]) == ("e-u1", [None, e1.role])
        assert audited.changes["class_id"] == [None, e1.class_id]
        assert (e1.status, e1.version, e1.extra) == ("active", 1, {})


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_each_further_batch_of_unchanged_rows_costs_two_statements(tenancy, tmp_path, version):
    """A batch of unchanged rows is checked with two statements whatever its file: its keys
    marked seen (the duplicates, R103, come back from that same INSERT) and the stored hashes
    read (an enrollment's with the user and class it names, in one SELECT)."""
    sent_by_size = {}
    for students in (400, 800):  # the second district lists the first one's rows and more
        path = package(tmp_path / f"{students}.zip", version, district(version, students))
        assert tenancy.run(path).status == "applied"
        # the second run stores the hashes of rows whose parent the first one created with them
        assert tenancy.run(path).status == "applied"
        with statements(tenancy.database) as sent:
            again = tenancy.run(path)
        assert again.outcomes["unchanged"] == again.row_count, again.summary
        sent_by_size[students] = sent()
    # 401 -> 801 rows: one more batch of 500 in users.csv and enrollments.csv (and roles.csv)
    batches = 2 if version == "1.1" else 3
    further = sent_by_size[800] - sent_by_size[400]
    assert further <= 2 * batches, f"{further} statements for {batches} more unchanged batches"
