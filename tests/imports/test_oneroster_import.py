"""A district imports its SIS export as OneRoster CSV 1.1 and 1.2, bulk and delta."""

from __future__ import annotations

import pytest

from server.db import AcademicSession, Course, Enrollment, Org, SchoolClass, User
from tests.imports.packages import district, package


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_bulk_package_creates_the_district_and_a_second_run_changes_nothing(
    tenancy, tmp_path, version
):
    path = package(tmp_path / "sis.zip", version, district(version))
    report = tenancy.run(path)
    assert report.status == "applied", report.as_dict()
    assert report.format == f"oneroster-{version}"
    assert report.outcomes["created"] == 2 + 1 + 1 + 1 + 4 + 4
    assert tenancy.count(Org) == 2 and tenancy.count(AcademicSession) == 1
    assert tenancy.count(Course) == 1 and tenancy.count(SchoolClass) == 1
    assert tenancy.count(User) == 4 and tenancy.count(Enrollment) == 4
    teacher = tenancy.user("u0")
    assert teacher.primary_role == "teacher" and teacher.username == "Tina.Teacher"
    assert [r.role for r in teacher.roles] == ["teacher"]
    student = tenancy.user("u1")
    assert student.grades == ["03"] and student.identifier == "ID-u1"

    again = tenancy.run(path)
    assert again.status == "applied"
    assert dict(again.outcomes) == {"unchanged": report.row_count}, again.as_dict()


def test_a_trial_run_reports_the_change_set_and_writes_nothing(tenancy, tmp_path):
    path = package(tmp_path / "sis.zip", "1.1", district())
    report = tenancy.run(path, dry_run=True)
    assert report.status == "valid"
    assert report.outcomes["created"] == 13
    assert tenancy.count(User) == 0 and tenancy.count(Org) == 0


def test_a_delta_changes_only_what_it_lists_and_tobedeleted_deactivates(tenancy, tmp_path):
    tenancy.run(package(tmp_path / "bulk.zip", "1.2", district("1.2")))
    delta = {
        "users.csv": [
            {
                "sourcedId": "u1",
                "status": "active",
                "dateLastModified": "2026-09-01T00:00:00Z",
                "enabledUser": "true",
                "username": "Stua.Denta",
                "givenName": "Stella",
                "familyName": "Denta",
                "identifier": "ID-u1",
                "email": "stua@example.org",
                "grades": "04",
                "primaryOrgSourcedId": "s1",
                "preferredGivenName": "Stua",
            },
            {
                "sourcedId": "u2",
                "status": "tobedeleted",
                "dateLastModified": "2026-09-01T00:00:00Z",
                "givenName": "Stub",
                "familyName": "x",
            },
        ]
    }
    report = tenancy.run(package(tmp_path / "delta.zip", "1.2", delta, mode="delta"))
    assert report.status == "applied", report.as_dict()
    rows = {row["key"]: row for row in report.rows()}
    assert rows["u1"]["outcome"] == "updated"
    assert rows["u1"]["changes"]["given_name"] == ["Stua", "Stella"]
    assert rows["u1"]["changes"]["grades"] == [["03"], ["04"]]
    assert rows["u2"]["outcome"] == "deactivated"
    assert tenancy.user("u2").status == "inactive"
    assert tenancy.user("u3").status == "active"
    # 1.2 delta without roles.csv leaves the roles as they are
    assert [r.role for r in tenancy.user("u1").roles] == ["student"]
