"""A school uploads its spreadsheet: template, matching, trial run, round trip through export."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from server.db import AuditEvent, Org, SchoolClass, User
from server.domain import credentials, roster, users
from server.domain.actors import connection_actor, system_actor
from server.domain.connections import get_connection
from server.imports.exports import export
from server.imports.school_csv import COLUMNS, template


@pytest.fixture
def school(tenancy) -> str:
    with tenancy.database.session() as session:
        actor = system_actor(tenancy.tenant_id)
        org = roster.create_org(
            session, actor, {"name": "Maple Primary", "type": "school", "sourced_id": "maple"}
        )
        return org.id


def school_csv(tmp_path, rows, name="school.csv", header=COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
    path = tmp_path / name
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


ROWS = [
    ["Ava Adams", "", "3", "3A", "F", "Yes", "WBRI", "No", "No", ""],
    ["Ben Brown", "BBrown", "Year 3", "3A", "M", "", "NOBT", "", "Yes", ""],
    ["Chloe Chen", "", "R", "Reception", "f", "No", "", "No", "No", "a long passphrase"],
]


def test_the_template_has_the_columns_and_one_example_row():
    lines = template().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert lines[1].startswith("# Example (skipped): Ava Adams,,7,7A,F")


def test_a_school_csv_creates_students_and_classes_and_is_idempotent(tenancy, tmp_path, school):
    path = school_csv(tmp_path, ROWS)
    report = tenancy.run(path, connection="School upload")
    assert report.status == "applied", report.as_dict()
    rows = list(report.rows())
    students = [r for r in rows if not (r["key"] or "").startswith("class:")]
    assert [r["key"] for r in students] == ["avaadams", "BBrown", "chloechen"]
    assert {r["key"] for r in rows if r["key"].startswith("class:")} == {
        "class:3A",
        "class:Reception",
    }
    with tenancy.database.session() as session:
        ava = session.scalars(select(User).where(User.username == "avaadams")).one()
        assert ava.grades == ["03"] and ava.gender == "female" and ava.ethnicity == "WBRI"
        assert ava.demographic_flags == {"pupil_premium": True, "send": False, "eal": False}
        assert ava.credential.state == "pending"
        chloe = session.scalars(select(User).where(User.username == "chloechen")).one()
        assert chloe.grades == ["KG"] and chloe.credential.state == "active"
        assert {c.title for c in session.scalars(select(SchoolClass))} == {"3A", "Reception"}

    again = tenancy.run(path, connection="School upload")
    assert dict(again.outcomes) == {"unchanged": 3}, again.as_dict()
    assert [r["message"] for r in again.rows()] == [
        "Matched by full name and class.",
        "Matched by username.",
        "Matched by full name and class.",
    ]


def test_matching_by_full_name_and_class_lets_a_spreadsheet_rename_a_username(
    tenancy, tmp_path, school
):
    tenancy.run(school_csv(tmp_path, ROWS), connection="School upload")
    renamed = [["Ava Adams", "ava.adams", "3", "3A", "F", "Yes", "WBRI", "No", "No", ""]]
    trial = tenancy.run(
        school_csv(tmp_path, renamed, "b.csv"), connection="School upload", dry_run=True
    )
    row = next(trial.rows())
    assert row["outcome"] == "updated" and row["message"] == "Matched by full name and class."
    assert row["changes"]["username"] == ["avaadams", "ava.adams"]
    assert tenancy.count(User, username="ava.adams") == 0, "a trial run writes nothing"


def test_bad_rows_of_a_school_csv_get_their_codes(tenancy, tmp_path, school):
    rows = [
        ["Ava Adams", "", "3", "", "F", "", "", "", "", ""],  # R101 class
        ["Ben Brown", "", "3", "3A", "Q", "", "", "", "", ""],  # R102 gender
        ["Cal Cole", "", "Year 42", "3A", "M", "", "", "", "", ""],  # R102 year
        ["Dee Dunn", "", "3", "3A", "F", "", "WHITE", "", "", ""],  # R102 ethnicity
        ["Eve Egan", "", "3", "3A", "F", "maybe", "", "", "", ""],  # R102 flag
        ["Fay Fox", "fay", "3", "3A", "F", "", "", "", "", ""],
        ["Fay Fox", "FAY", "3", "3A", "F", "", "", "", "", ""],  # R103 duplicate username
        ["Gus Gray", "g u s", "3", "3A", "M", "", "", "", "", ""],  # R105
        ["Hal Hill", "", "3", "3A", "M", "", "", "", "", "hal"],  # R106
    ]
    report = tenancy.run(school_csv(tmp_path, rows), connection="School upload")
    got = [(r["row"], r["code"]) for r in report.rows() if r["code"]]
    assert got == [
        (2, "R101"),
        (3, "R102"),
        (4, "R102"),
        (5, "R102"),
        (6, "R102"),
        (8, "R103"),
        (9, "R105"),
        (10, "R106"),
    ]
    assert report.status == "refused" and tenancy.count(User) == 0


def test_a_missing_column_is_f002_and_the_sso_guard_covers_the_password_column(
    tenancy, tmp_path, school
):
    path = school_csv(tmp_path, [["Ava Adams", "3"]], header=["Student Full Name", "Year Group"])
    report = tenancy.run(path, connection="School upload")
    assert report.file_errors[0]["code"] == "F002" and "Username" in report.summary + str(
        report.file_errors
    )
    path = school_csv(tmp_path, [ROWS[2]], "sso.csv")
    report = tenancy.run(path, connection="Clever")
    assert [r["code"] for r in report.rows()] == ["R107"]


def test_a_full_school_import_deactivates_missing_students(tenancy, tmp_path, school):
    many = ROWS + [[f"Kid{n} Kay", "", "3", "3A", "M", "", "", "", "", ""] for n in range(10)]
    tenancy.run(school_csv(tmp_path, many), connection="School upload")
    report = tenancy.run(
        school_csv(tmp_path, many[:-1], "b.csv"), connection="School upload", mode="full"
    )
    assert report.status == "applied", report.summary
    w201 = [r for r in report.rows() if r["code"] == "W201"]
    assert [r["key"] for r in w201] == ["kid9kay"]


@pytest.mark.parametrize("fmt", ["school-csv", "xlsx"])
def test_export_edit_trial_run_apply_round_trip(tenancy, tmp_path, school, fmt):
    tenancy.run(school_csv(tmp_path, ROWS), connection="School upload")
    with tenancy.database.session() as session:
        actor = system_actor(tenancy.tenant_id, "teacher desk")
        ava = session.scalars(select(User).where(User.username == "avaadams")).one()
        temporary = credentials.issue_temporary_password(session, actor, ava, box=tenancy.box)
    out = tmp_path / f"export.{'xlsx' if fmt == 'xlsx' else 'csv'}"
    with tenancy.database.session() as session:
        count = export(
            session,
            system_actor(tenancy.tenant_id, "cli"),
            tenancy.box,
            fmt,
            out,
            school_ids=[school],
        )
    assert count == 3
    rows = _read(out, fmt)
    assert rows[0] == list(COLUMNS)
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["Ava Adams"][COLUMNS.index("Password")] == temporary
    assert by_name["Chloe Chen"][COLUMNS.index("Password")] == "", "activated: never shown"
    with tenancy.database.session() as session:
        reveals = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "credential.reveal")
        )
        assert [e.target_label for e in reveals] == ["avaadams"]

    unchanged = tenancy.run(out, connection="School upload")
    assert dict(unchanged.outcomes) == {"unchanged": 3}, unchanged.as_dict()

    by_name["Ben Brown"][COLUMNS.index("Username")] = "ben.brown"
    by_name["Ava Adams"][COLUMNS.index("Class")] = "3B"
    edited = _write(
        tmp_path / f"edited.{'xlsx' if fmt == 'xlsx' else 'csv'}", [rows[0], *by_name.values()], fmt
    )
    trial = tenancy.run(edited, connection="School upload", dry_run=True)
    assert trial.status == "valid"
    changed = {r["key"]: r for r in trial.rows() if r["outcome"] != "unchanged"}
    assert changed["ben.brown"]["changes"]["username"] == ["BBrown", "ben.brown"]
    assert changed["avaadams"]["changes"]["class"] == ["3A", "3B"]
    assert "class:3B" in changed
    applied = tenancy.run(edited, connection="School upload")
    assert applied.status == "applied"
    assert tenancy.count(User, username="ben.brown") == 1
    with tenancy.database.session() as session:
        assert session.scalars(select(Org.id)).all() == [school]


def _read(path, fmt) -> list[list[str]]:
    if fmt == "xlsx":
        from openpyxl import load_workbook

        sheet = load_workbook(path).active
        return [
            ["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)
        ]
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def _write(path, rows, fmt):
    if fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook()
        for row in rows:
            book.active.append(row)
        book.save(path)
        return path
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_a_full_school_import_keeps_students_whose_rows_it_skips(tenancy, tmp_path, school):
    tenancy.run(school_csv(tmp_path, ROWS), connection="School upload")
    rows = [list(row) for row in ROWS]
    rows[1][4] = "Q"  # Ben's row cannot be read (R102), but it is listed
    report = tenancy.run(
        school_csv(tmp_path, rows, "b.csv"),
        connection="School upload",
        mode="full",
        skip_invalid=True,
    )
    assert report.status == "applied"
    assert [r["code"] for r in report.rows() if r["code"]] == ["R102"]
    assert tenancy.count(User, status="active") == 3


# The miMove template's help page lists Gender as "Male, Female, Non-Binary"
# (/work/shared/seeds/001_*.txt); OneRoster sex is male/female/other/unspecified.
GENDER_WORDS = [
    ("Male", "male"),
    ("FEMALE", "female"),
    ("Non-Binary", "other"),
    ("non-binary", "other"),
    ("Non Binary", "other"),
    ("NB", "other"),
    ("x", "other"),
    ("m", "male"),
    ("U", "unspecified"),
]


@pytest.mark.parametrize(("gender", "sex"), GENDER_WORDS)
def test_the_templates_gender_values_in_any_case_and_short_forms_are_accepted(
    tenancy, tmp_path, school, gender, sex
):
    row = ["Robin Reed", "", "5", "5A", gender, "No", "NOBT", "No", "No", ""]
    report = tenancy.run(school_csv(tmp_path, [row]), connection="School upload")
    assert report.status == "applied", report.as_dict()
    with tenancy.database.session() as session:
        assert session.scalars(select(User.gender)).one() == sex


def test_an_unknown_gender_is_r102_naming_the_accepted_values(tenancy, tmp_path, school):
    row = ["Robin Reed", "", "5", "5A", "Mail", "No", "NOBT", "No", "No", ""]
    report = tenancy.run(school_csv(tmp_path, [row]), connection="School upload", dry_run=True)
    found = [r for r in report.rows() if r["code"]]
    assert [r["code"] for r in found] == ["R102"]
    assert "Male, Female, Non-Binary" in found[0]["message"]


def _upload(client, token, name: str, body: bytes, *, dry_run: bool = False):
    """A school admin's upload through the admin JSON API (the staff page runs the same job)."""
    return client.post(
        "/admin/api/imports",
        data={"connection": "School upload", "school": "maple", "dry_run": str(dry_run).lower()},
        files={"file": (name, body, "text/csv")},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_the_downloaded_template_imported_unchanged_creates_nobody(
    client, tenancy, school, admin_token
):
    # Issue 14 item 12: the template's sample row is a comment the importer skips.
    template_file = client.get("/admin/import/template.csv")
    assert template_file.status_code == 200
    assert "Ava Adams" in template_file.text, "the template still shows an example"
    for dry_run in (True, False):
        answer = _upload(
            client, admin_token, "template.csv", template_file.content, dry_run=dry_run
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == ("valid" if dry_run else "applied")
        assert body["codes"] == {} and body["file_errors"] == []
        assert "created" not in body["outcomes"]
    assert tenancy.count(User) == 0 and tenancy.count(SchoolClass) == 0


def test_a_username_that_belongs_to_a_different_person_is_a_warning_not_a_rename(
    client, tenancy, school, admin_token, tmp_path
):
    # Issue 14 item 12: same username, different name: the other child is left as they are.
    tenancy.run(school_csv(tmp_path, [ROWS[1]]), connection="School upload")
    clash = [["Zoe Zimmer", "bbrown", "4", "4A", "F", "No", "", "No", "No", ""]]
    body = school_csv(tmp_path, clash, "clash.csv").read_bytes()
    for dry_run in (True, False):
        answer = _upload(client, admin_token, "clash.csv", body, dry_run=dry_run)
        assert answer.status_code == 200, answer.text
        [row] = [r for r in answer.json()["row_results"] if r["row"] == 2]
        assert row["code"] == "W205" and row["outcome"] == "skipped"
        assert "Ben Brown" in row["message"] and "Zoe Zimmer" in row["message"]
        assert row["changes"] == {}
    ben = tenancy.count(User, username="BBrown", given_name="Ben", family_name="Brown")
    assert ben == 1 and tenancy.count(User) == 1
    legend = client.get("/admin/import/codes.json").json()
    assert "different person" in legend["W205"]


def test_staff_cannot_give_a_new_or_edited_account_someone_elses_username(
    client, tenancy, school, admin_token
):
    made = client.post(
        "/admin/api/users",
        json={"given_name": "Ben", "family_name": "Brown", "username": "bbrown"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert made.status_code == 201, made.text
    again = client.post(
        "/admin/api/users",
        json={"given_name": "Zoe", "family_name": "Zimmer", "username": "BBROWN"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert again.status_code == 409 and "already used" in again.json()["detail"]
    assert tenancy.count(User, given_name="Ben") == 1 and tenancy.count(User) == 1


def test_a_family_name_of_two_words_is_still_the_same_child(client, tenancy, school, admin_token):
    # Issue 14 item 3: the file has one name column; "Ann Van Dyke" is given "Ann", family
    # "Van Dyke" in Rollcall. The row must be offered as a possible duplicate (W204), and a
    # row in her class must match her rather than create "annvandyke2".
    with tenancy.database.session() as session:
        upload = get_connection(session, tenancy.tenant_id, "School upload")
        actor = connection_actor(upload)  # as an earlier file of this school's would have
        ann = users.create_user(
            session,
            actor,
            {
                "given_name": "Ann",
                "family_name": "Van Dyke",
                "grades": ["03"],
                "gender": "female",
                "primary_role": "student",
                "roles": [users.RoleAssignment(school, "student")],
            },
        )
        roster.enroll(
            session,
            actor,
            ann,
            roster.create_class(session, actor, {"title": "3A", "school_id": school}),
        )
    header = ",".join(COLUMNS) + "\r\n"
    other_class = (header + "Ann Van Dyke,,3,3B,F,,,,,\r\n").encode()
    answer = _upload(client, admin_token, "a.csv", other_class, dry_run=True).json()
    [row] = [r for r in answer["row_results"] if r["key"] and not r["key"].startswith("class:")]
    assert row["code"] == "W204", row
    assert "Ann Van Dyke (annvandyke)" in row["message"], row
    same_class = (header + "Ann Van Dyke,,3,3A,F,,,,,\r\n").encode()
    answer = _upload(client, admin_token, "b.csv", same_class, dry_run=True).json()
    [row] = answer["row_results"]
    assert row["key"] == "annvandyke", row["message"]
    assert row["message"] == "Matched by full name and class."
