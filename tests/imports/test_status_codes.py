"""Malformed files and rows: every status code of SPEC §10 reported on the row that has it."""

from __future__ import annotations

import pytest

from server.db import ImportRowResult, ImportRun, Org, SchoolClass, User
from server.domain import users
from server.domain.actors import system_actor
from tests.imports.packages import csv_text, district, package


def codes(report) -> dict[str, list]:
    found: dict[str, list] = {}
    for row in report.rows():
        if row["code"]:
            found.setdefault(row["code"], []).append(row)
    return found


def test_a_file_that_is_not_a_zip_is_f001(tenancy, tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"this is not a zip file at all")
    report = tenancy.run(path)
    assert report.status == "failed"
    assert report.file_errors[0]["code"] == "F001"


def test_a_csv_in_another_encoding_is_f001(tenancy, tmp_path):
    path = package(
        tmp_path / "latin.zip",
        "1.1",
        {},
        manifest={"file.orgs": "bulk"},
        raw={
            "orgs.csv": "sourcedId,status,dateLastModified,name,type\ns1,,,Caf\xe9,school\n".encode(
                "latin-1"
            )
        },
    )
    report = tenancy.run(path)
    assert report.status == "failed" and report.file_errors[0]["code"] == "F001"
    assert tenancy.count(User) == 0


def test_a_missing_required_column_is_f002(tenancy, tmp_path):
    files = district()
    header = [
        "sourcedId",
        "status",
        "dateLastModified",
        "enabledUser",
        "orgSourcedIds",
        "role",
        "username",
        "familyName",
    ]
    path = package(tmp_path / "p.zip", "1.1", files, headers={"users.csv": header})
    report = tenancy.run(path, dry_run=True)
    assert report.status == "failed"
    assert report.file_errors[0] == {
        "code": "F002",
        "file": "users.csv",
        "message": report.file_errors[0]["message"],
    }
    assert "givenName" in report.file_errors[0]["message"]


def test_a_missing_or_inconsistent_manifest_is_f003(tenancy, tmp_path):
    report = tenancy.run(package(tmp_path / "a.zip", "1.1", district(), with_manifest=False))
    assert report.file_errors[0]["code"] == "F003"
    files = district()
    del files["enrollments.csv"]
    path = package(tmp_path / "b.zip", "1.1", files, manifest={"file.enrollments": "bulk"})
    report = tenancy.run(path)
    assert report.file_errors[0]["code"] == "F003"
    assert "enrollments.csv" in report.file_errors[0]["message"]
    path = package(tmp_path / "c.zip", "1.1", district(), manifest={"oneroster.version": "9"})
    assert tenancy.run(path).file_errors[0]["code"] == "F003"


def test_row_errors_carry_their_codes_and_refuse_the_apply(tenancy, tmp_path):
    files = district(students=8)
    rows = files["users.csv"]
    rows[1]["sourcedId"] = ""  # R101
    rows[2]["enabledUser"] = "yes"  # R102 boolean
    rows[3]["role"] = "wizard"  # R102 enumeration
    rows[4]["grades"] = "99"  # R102 grade
    rows.append(dict(rows[5]))  # R103 duplicate sourcedId
    rows[6]["username"] = "bad name"  # R105
    rows[7]["password"] = "password"  # R106
    files["enrollments.csv"][0]["classSourcedId"] = "nope"  # R108
    files["enrollments.csv"][8]["beginDate"] = "2026-13-40"  # R102 date
    report = tenancy.run(package(tmp_path / "p.zip", "1.1", files))
    found = codes(report)
    assert report.status == "refused"
    assert {row["row"] for row in found["R101"]} == {3}
    assert {row["row"] for row in found["R102"] if row["file"] == "users.csv"} == {4, 5, 6}
    assert any(r["file"] == "enrollments.csv" for r in found["R102"])
    assert found["R103"][0]["row"] == 11 and found["R103"][0]["key"] == "u5"
    assert found["R105"][0]["key"] == "u6"
    assert "common" in found["R106"][0]["message"]
    assert any(r["file"] == "enrollments.csv" and "nope" in r["message"] for r in found["R108"])
    assert tenancy.count(User) == 0, "a refused apply writes nothing"

    applied = tenancy.run(package(tmp_path / "p.zip", "1.1", files), skip_invalid=True)
    assert applied.status == "applied"
    assert tenancy.count(User) == 3  # u0, u5, u8
    assert tenancy.user("u8").status == "active" and tenancy.user("u6") is None


def test_a_username_of_another_account_is_r104(tenancy, tmp_path):
    tenancy.run(package(tmp_path / "a.zip", "1.1", district()))
    new = dict(district()["users.csv"][1], sourcedId="u9", username="STUA.DENTA")
    report = tenancy.run(package(tmp_path / "b.zip", "1.1", {"users.csv": [new]}, mode="delta"))
    assert codes(report)["R104"][0]["key"] == "u9"
    assert report.status == "refused"


def test_a_record_of_another_connection_is_r109(tenancy, tmp_path):
    tenancy.run(package(tmp_path / "a.zip", "1.1", district()))
    report = tenancy.run(package(tmp_path / "a.zip", "1.1", district()), connection="Clever")
    found = codes(report)
    assert {row["key"] for row in found["R109"]} >= {"s1", "u0", "u1", "e-u1"}
    assert "owned by the connection 'SIS'" in found["R109"][0]["message"]


def test_a_password_for_an_sso_account_is_r107(tenancy, tmp_path):
    files = district()
    files["users.csv"][1]["password"] = "a long enough passphrase"
    report = tenancy.run(package(tmp_path / "p.zip", "1.1", files), connection="Clever")
    found = codes(report)
    assert [row["key"] for row in found["R107"]] == ["u1"]
    assert "Clever" in found["R107"][0]["message"]


def test_a_full_import_deactivates_what_is_missing_w201_and_brings_it_back_w202(tenancy, tmp_path):
    tenancy.run(package(tmp_path / "a.zip", "1.1", district(students=9)))
    files = district(students=9)
    files["users.csv"] = [u for u in files["users.csv"] if u["sourcedId"] != "u9"]
    files["enrollments.csv"] = [e for e in files["enrollments.csv"] if e["userSourcedId"] != "u9"]
    report = tenancy.run(package(tmp_path / "b.zip", "1.1", files))
    assert report.status == "applied", report.summary
    found = codes(report)
    assert {(r["file"], r["key"]) for r in found["W201"]} == {
        ("users.csv", "u9"),
        ("enrollments.csv", "e-u9"),
    }
    assert tenancy.user("u9").status == "inactive"

    report = tenancy.run(package(tmp_path / "a.zip", "1.1", district(students=9)))
    assert [r["key"] for r in codes(report)["W202"]] == ["u9", "e-u9"]
    assert tenancy.user("u9").status == "active"
    assert tenancy.count(User) == 10, "reactivated, not duplicated"


def test_the_shrink_guard_stops_a_full_import_that_would_remove_too_many(tenancy, tmp_path):
    tenancy.run(package(tmp_path / "a.zip", "1.1", district(students=9)))
    files = district(students=9)
    files["users.csv"] = files["users.csv"][:5]
    files["enrollments.csv"] = files["enrollments.csv"][:5]
    path = package(tmp_path / "b.zip", "1.1", files)
    trial = tenancy.run(path, dry_run=True)
    assert trial.status == "invalid"
    assert trial.shrink == {
        "would_deactivate": 5,
        "active_in_scope": 10,
        "threshold": 0.2,
        "tripped": True,
        "allowed": False,
    }
    assert "allow deactivating that many" in trial.summary and "--" not in trial.summary
    refused = tenancy.run(path)
    assert refused.status == "refused" and tenancy.count(User, status="active") == 10
    allowed = tenancy.run(path, allow_shrink=True)
    assert allowed.status == "applied" and tenancy.count(User, status="active") == 5
    assert tenancy.run(path, mode="delta").outcomes.keys() == {"unchanged"}


def test_every_run_is_stored_with_its_rows(tenancy, tmp_path):
    report = tenancy.run(package(tmp_path / "a.zip", "1.1", district()), dry_run=True)
    with tenancy.database.session() as session:
        run = session.get(ImportRun, report.id)
        assert run.status == "valid" and run.dry_run and run.counts["outcomes"]["created"] == 13
        rows = session.query(ImportRowResult).filter_by(run_id=run.id).count()
        assert rows == report.row_count == 13


def test_lenient_reading_repairs_known_drift_with_warnings(tenancy, tmp_path):
    files = district("1.2")
    role_header = [
        "sourcedId",
        "status",
        "dateLastModified",
        "userSourcedId",
        "roleType",
        "role",
        "beginDate",
        "endDate",
        "orgSourcedId",
        "userProfile",
    ]
    path = package(
        tmp_path / "drift.zip",
        "1.2",
        files,
        headers={"roles.csv": role_header},
        manifest={"oneroster.version": "1.1", "file.roles": "bulk"},
    )
    report = tenancy.run(path)
    assert report.status == "applied", report.as_dict()
    messages = [w["message"] for w in report.warnings]
    assert any("'userProfile' read as 'userProfileSourcedId'" in m for m in messages)
    assert any("files are OneRoster 1.2" in m for m in messages)
    strict = tenancy.run(path, lenient=False)
    assert strict.status == "failed" and strict.file_errors[0]["code"] == "F003"


def test_inactive_manual_account_is_not_taken_over(tenancy, tmp_path):
    with tenancy.database.session() as session:
        actor = system_actor(tenancy.tenant_id)
        users.create_user(
            session, actor, {"given_name": "A", "family_name": "B", "username": "stua.denta"}
        )
    report = tenancy.run(package(tmp_path / "a.zip", "1.1", district()))
    assert codes(report)["R109"][0]["key"] == "u1"


def test_csv_text_helper_quotes_values():
    assert csv_text(["a"], [{"a": "x,y"}]) == 'a\r\n"x,y"\r\n'


def test_a_bad_row_in_a_batch_leaves_the_good_rows_of_that_batch_applied(tenancy, tmp_path):
    files = district()
    files["orgs.csv"].append({"sourcedId": "x1", "name": "Castle", "type": "castle"})
    report = tenancy.run(package(tmp_path / "p.zip", "1.1", files), skip_invalid=True)
    assert report.status == "applied"
    assert [(r["key"], r["code"]) for r in report.rows() if r["code"]] == [("x1", "R102")]
    assert report.outcomes["created"] == 13
    assert tenancy.count(SchoolClass) == 1 and tenancy.count(Org) == 2


def test_an_unreadable_row_is_not_deactivated_by_a_full_import_that_skips_it(tenancy, tmp_path):
    tenancy.run(package(tmp_path / "a.zip", "1.1", district()))
    files = district()
    files["users.csv"][2]["enabledUser"] = "maybe"
    report = tenancy.run(package(tmp_path / "b.zip", "1.1", files), skip_invalid=True)
    assert report.status == "applied"
    assert [(r["key"], r["code"]) for r in report.rows() if r["code"]] == [("u2", "R102")]
    assert tenancy.user("u2").status == "active"


@pytest.mark.postgres_only
def test_a_value_longer_than_its_column_is_a_row_error_not_a_crash(tenancy, tmp_path):
    """PostgreSQL only: SQLite does not enforce column lengths."""
    files = district()
    files["users.csv"][1]["givenName"] = "A" * 300
    report = tenancy.run(package(tmp_path / "p.zip", "1.1", files), skip_invalid=True)
    assert report.status == "applied"
    assert next((r["key"], r["code"]) for r in report.rows() if r["code"]) == ("u1", "R102")
