"""Row verdicts of the OneRoster CSV 1.2.1 binding that Rollcall once got silently wrong."""

from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import select

from server.db import Enrollment
from tests.imports.packages import district, full_district, package


def rows_of(report, key: str) -> list[dict]:
    return [row for row in report.rows() if row["key"] == key]


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_delta_that_repoints_an_enrollment_moves_it(tenancy, tmp_path, version):
    files = district(version, students=2)
    tenancy.run(package(tmp_path / "bulk.zip", version, files))
    moved = dict(files["enrollments.csv"][1], userSourcedId="u2")
    files["enrollments.csv"][2]["status"] = "tobedeleted"
    delta = {"enrollments.csv": [files["enrollments.csv"][2], moved]}
    report = tenancy.run(package(tmp_path / "delta.zip", version, delta, mode="delta"))
    assert report.status == "applied", report.as_dict()
    assert rows_of(report, "e-u1")[0]["outcome"] == "updated"
    u2 = tenancy.user("u2").id
    with tenancy.database.session() as session:
        enrollment = session.scalars(select(Enrollment).where(Enrollment.sourced_id == "e-u1"))
        assert enrollment.one().user_id == u2


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_repointing_an_enrollment_to_a_missing_user_or_class_is_r108(tenancy, tmp_path, version):
    files = district(version, students=1)
    tenancy.run(package(tmp_path / "bulk.zip", version, files))
    rows = [
        dict(files["enrollments.csv"][1], userSourcedId="nobody"),
        dict(files["enrollments.csv"][0], classSourcedId="no-class"),
    ]
    report = tenancy.run(
        package(tmp_path / "d.zip", version, {"enrollments.csv": rows}, mode="delta")
    )
    assert report.status == "refused"
    assert [r["code"] for r in rows_of(report, "e-u1")] == ["R108"]
    assert "nobody" in rows_of(report, "e-u1")[0]["message"]
    assert [r["code"] for r in rows_of(report, "e-u0")] == ["R108"]


# Required cells: OneRoster 1.1 CSV Tables §2 and 1.2.1 CSV Tables §3 (the "Required" column),
# as LongsightGroup/oneroster checks them (src/one-roster-csv-rostering-record-engine.ts).
REQUIRED_BY_SPEC = {
    "orgs.csv": ("s1", ["name", "type"]),
    "academicSessions.csv": ("t1", ["title", "type", "startDate", "endDate", "schoolYear"]),
    "courses.csv": ("c1", ["title", "orgSourcedId"]),
    "classes.csv": (
        "k1",
        ["title", "courseSourcedId", "classType", "schoolSourcedId", "termSourcedIds"],
    ),
    "enrollments.csv": ("e-u1", ["classSourcedId", "schoolSourcedId", "userSourcedId", "role"]),
}
REQUIRED_CASES = [
    (version, file, key, column)
    for version in ("1.1", "1.2")
    for file, (key, columns) in REQUIRED_BY_SPEC.items()
    for column in columns
]
REQUIRED_CASES += [
    ("1.1", "users.csv", "u1", c)
    for c in ["enabledUser", "orgSourcedIds", "role", "username", "givenName", "familyName"]
]
REQUIRED_CASES += [
    ("1.2", "users.csv", "u1", c) for c in ["enabledUser", "username", "givenName", "familyName"]
]
REQUIRED_CASES += [
    ("1.2", "roles.csv", "r-u1", c) for c in ["userSourcedId", "roleType", "role", "orgSourcedId"]
]
REQUIRED_CASES += [
    ("1.2", "userProfiles.csv", "p1", c)
    for c in ["userSourcedId", "profileType", "vendorId", "credentialType", "username"]
]


@pytest.mark.parametrize(("version", "file", "key", "column"), REQUIRED_CASES)
def test_an_empty_required_cell_is_r101_and_keeps_the_stored_value(
    tenancy, tmp_path, version, file, key, column
):
    files = full_district(version)
    assert tenancy.run(package(tmp_path / "bulk.zip", version, files)).status == "applied"
    before = tenancy.export(f"oneroster-{version}", tmp_path / "before.zip").read_bytes()
    row = next(r for r in files[file] if r["sourcedId"] == key)
    row[column] = ""
    delta = {file: [row]} if file != "roles.csv" else {file: [row], "users.csv": files["users.csv"]}
    report = tenancy.run(package(tmp_path / "delta.zip", version, delta, mode="delta"))
    found = [r for r in report.rows() if r["key"] == key and r["file"] == file]
    assert [r["code"] for r in found] == ["R101"], report.as_dict()
    assert column in found[0]["message"]
    assert report.status == "refused"
    after = tenancy.export(f"oneroster-{version}", tmp_path / "after.zip").read_bytes()
    assert zip_texts(after) == zip_texts(before)


def zip_texts(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize(
    ("file", "column", "value"),
    [
        ("users.csv", "dateLastModified", "1/05/2023"),
        ("users.csv", "sourcedId", "u 9"),
        ("users.csv", "sourcedId", "u#9"),
        ("enrollments.csv", "userSourcedId", "u 1"),
        ("classes.csv", "termSourcedIds", "t1,t 2"),
    ],
)
def test_a_bad_date_time_or_guid_is_r102(tenancy, tmp_path, version, file, column, value):
    """LongsightGroup/oneroster reports these as row.invalid_datetime / row.invalid_guid."""
    files = district(version)
    files[file][0][column] = value
    mode = "delta" if column == "dateLastModified" else "bulk"
    if mode == "delta":
        files[file][0]["status"] = "active"
    report = tenancy.run(package(tmp_path / "p.zip", version, files, mode=mode), dry_run=True)
    found = [r for r in report.rows() if r["file"] == file and r["row"] == 2]
    assert [r["code"] for r in found] == ["R102"], report.as_dict()
    assert column in found[0]["message"]


def test_a_primary_org_that_does_not_exist_is_r108(tenancy, tmp_path):
    files = district("1.2")
    files["users.csv"][1]["primaryOrgSourcedId"] = "no-such-school"
    report = tenancy.run(package(tmp_path / "p.zip", "1.2", files), dry_run=True)
    found = [r for r in report.rows() if r["key"] == "u1"]
    assert [r["code"] for r in found] == ["R108"]
    assert "no-such-school" in found[0]["message"]


def test_a_12_bulk_user_without_a_role_row_is_r101(tenancy, tmp_path):
    files = district("1.2")
    files["roles.csv"] = [r for r in files["roles.csv"] if r["userSourcedId"] != "u2"]
    report = tenancy.run(package(tmp_path / "p.zip", "1.2", files), dry_run=True)
    found = [r for r in report.rows() if r["key"] == "u2" and r["file"] == "users.csv"]
    assert [r["code"] for r in found] == ["R101"]
    assert "roles.csv" in found[0]["message"]


REPAIRS = [
    ("classes.csv", "classType", "Scheduled", "bulk", "'Scheduled' → 'scheduled'"),
    ("users.csv", "enabledUser", "TRUE", "bulk", "'TRUE' → 'true'"),
    ("users.csv", "dateLastModified", "", "delta", "dateLastModified '' →"),
    (
        "users.csv",
        "dateLastModified",
        "2026-01-05T10:00:00Z",
        "bulk",
        "'2026-01-05T10:00:00Z' → ''",
    ),
    ("users.csv", "status", "active", "bulk", "status 'active' → ''"),
]


@pytest.mark.parametrize(("file", "column", "value", "mode", "text"), REPAIRS)
def test_a_lenient_repair_is_w203_on_its_row_and_strict_refuses_it(
    tenancy, tmp_path, file, column, value, mode, text
):
    files = district("1.1")
    for name in files:
        for row in files[name]:
            if mode == "delta":
                row |= {"status": "active", "dateLastModified": "2026-01-05T10:00:00.000Z"}
    files[file][0][column] = value
    path = package(tmp_path / "p.zip", "1.1", files, mode=mode)
    report = tenancy.run(path, dry_run=True)
    assert report.status == "valid", report.as_dict()
    found = [r for r in report.rows() if r["file"] == file and r["row"] == 2]
    assert [r["code"] for r in found] == ["W203"]
    assert found[0]["message"].startswith("value repaired: ") and text in found[0]["message"]
    assert [r for r in report.rows() if r["code"] == "W203"] == found

    strict = tenancy.run(path, dry_run=True, lenient=False)
    assert strict.status == "invalid"
    found = [r for r in strict.rows() if r["file"] == file and r["row"] == 2]
    assert [r["code"] for r in found] == ["R102"] and text in found[0]["message"]


def test_a_school_listed_before_its_district_is_imported(tenancy, tmp_path):
    """References are to the package, not to earlier rows (oat-sa/oneroster-import's sample
    orgs.csv lists a school before its parent)."""
    files = district("1.1")
    files["orgs.csv"].reverse()
    report = tenancy.run(package(tmp_path / "p.zip", "1.1", files))
    assert report.status == "applied", [r for r in report.rows() if r["code"]]


def test_a_delta_with_only_roles_changes_the_roles_it_lists(tenancy, tmp_path):
    files = full_district("1.2")
    assert tenancy.run(package(tmp_path / "bulk.zip", "1.2", files)).status == "applied"
    stamp = {"status": "active", "dateLastModified": "2026-01-05T10:00:00.000Z"}
    moved = next(r for r in files["roles.csv"] if r["sourcedId"] == "r-u1-s2")
    gone = next(r for r in files["roles.csv"] if r["sourcedId"] == "r-u2")
    rows = [
        moved | stamp | {"beginDate": "2026-09-01"},
        gone | stamp | {"status": "tobedeleted"},
        dict(gone, sourcedId="r-new", orgSourcedId="s2", role="aide") | stamp,
        dict(gone, sourcedId="r-x", userSourcedId="nobody") | stamp,
    ]
    report = tenancy.run(package(tmp_path / "d.zip", "1.2", {"roles.csv": rows}, mode="delta"))
    by_key = {r["key"]: r for r in report.rows()}
    assert by_key["u1"]["outcome"] == "updated" and by_key["u2"]["outcome"] == "updated"
    assert by_key["nobody"]["code"] == "R108"
    applied = tenancy.run(package(tmp_path / "d.zip", "1.2", {"roles.csv": rows[:3]}, mode="delta"))
    assert applied.status == "applied", applied.as_dict()
    u1, u2 = tenancy.user("u1"), tenancy.user("u2")
    assert {(r.sourced_id, str(r.begin_date)) for r in u1.roles} == {
        ("r-u1", "2026-08-01"),
        ("r-u1-s2", "2026-09-01"),
    }
    assert {(r.sourced_id, r.role) for r in u2.roles} == {("r-new", "aide")}


def test_a_role_given_to_another_user_in_a_delta_leaves_the_first(tenancy, tmp_path):
    files = full_district("1.2")
    assert tenancy.run(package(tmp_path / "bulk.zip", "1.2", files)).status == "applied"
    stamp = {"status": "active", "dateLastModified": "2026-01-05T10:00:00.000Z"}
    moved = next(r for r in files["roles.csv"] if r["sourcedId"] == "r-u1-s2")
    delta = {"roles.csv": [moved | stamp | {"userSourcedId": "u2"}]}
    report = tenancy.run(package(tmp_path / "d.zip", "1.2", delta, mode="delta"))
    assert report.status == "applied", report.as_dict()
    assert {r.sourced_id for r in tenancy.user("u1").roles} == {"r-u1"}
    assert {r.sourced_id for r in tenancy.user("u2").roles} == {"r-u2", "r-u1-s2"}
