"""A package identical to one already applied, with nothing changed since, is not read row by
row (issue 15: the unchanged nightly full sync costs next to nothing), and reports exactly
what reading it row by row reports: one unchanged row per file row (SPEC §5).

Anything else sends the run down the row-level path, with today's outcome: a write to the
roster in between (staff, SCIM, another connection), a changed connection setting, a changed
byte, a row with a password, a run that was not clean. Speed is measured in
``bench/imports.py``; these tests count rows read, rows translated and statements sent."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from oneroster.csv_files import open_package
from server.db import ImportRun
from server.domain import roster
from server.domain.actors import system_actor
from server.domain.connections import create_connection, get_connection
from server.domain.import_runs import Report, RunStatus
from server.domain.package_runs import state_key
from server.domain.roster_state import roster_state
from server.imports.engine import ImportOptions, import_source, open_source
from tests.imports.conftest import Tenancy, bearer, statements
from tests.imports.packages import district, full_district, package

SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture
def scim_token(tenancy: Tenancy) -> str:
    with tenancy.database.session() as session:
        return create_connection(session, system_actor(tenancy.tenant_id), "Entra", "scim").token


def _rows(report: Report) -> list[tuple]:
    """The report's rows as stored, in order."""
    return [
        (r["file"], r["row"], r["key"], r["outcome"], r["code"], r["message"], r["changes"])
        for r in report.rows()
    ]


def _proven(tenancy: Tenancy, path: Path, **options) -> Report:
    """Apply ``path`` until a run of it is remembered as proven; returns that run. SQLite: the
    first import (its state after commit is exact); PostgreSQL: the first run that writes
    nothing (the second, or the third when the second stores row hashes the first could not)."""
    for _ in range(3):
        report = tenancy.run(path, **options)
        assert report.status == RunStatus.APPLIED, report.summary
        with tenancy.database.session() as session:
            if session.get(ImportRun, report.id).package_fingerprint is not None:
                return report
    raise AssertionError("no run of the package was remembered")


def _applied_twice(tenancy: Tenancy, path: Path) -> tuple[Report, Report]:
    """The run that proved ``path`` and the next run, skipped as identical."""
    proven = _proven(tenancy, path)
    again = tenancy.run(path)
    assert "identical to that of run" in again.summary, again.summary
    return proven, again


def _skipped(tenancy: Tenancy, path: Path, read_rows: list, **options) -> bool:
    """Whether the next run of ``path`` is skipped as identical (no row read one by one)."""
    read_rows.clear()
    report = tenancy.run(path, **options)
    assert report.status == RunStatus.APPLIED, report.summary
    return read_rows == [] and "identical to that of run" in report.summary


def _scim_create(client, token: str, user_name: str) -> str:
    answer = client.post(
        "/scim/v2/Users",
        json={"schemas": [SCIM_USER], "userName": user_name},
        headers=bearer(token),
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def test_an_identical_package_is_reported_unchanged_without_reading_a_row(
    tenancy, tmp_path, read_rows
):
    path = package(tmp_path / "district.zip", "1.1", full_district("1.1") | _no_passwords())
    first = _proven(tenancy, path)
    assert not first.codes, first.summary
    read_rows.clear()

    again = tenancy.run(path)

    assert again.status == RunStatus.APPLIED, again.summary
    assert read_rows == []
    assert again.outcomes["unchanged"] == again.row_count == first.row_count
    assert f"identical to that of run {first.id}" in again.summary
    assert "nothing has changed since" in again.summary
    # a third run is skipped too: the skipped run is proven at the same state
    read_rows.clear()
    third = tenancy.run(path)
    assert read_rows == [] and f"run {again.id}" in third.summary


def test_a_skipped_run_sends_as_many_statements_for_300_students_as_for_30(tenancy, tmp_path):
    counts = []
    for students in (30, 300):
        tenant = _another_tenancy(tenancy, f"District {students}")
        path = package(tmp_path / f"d{students}.zip", "1.1", district("1.1", students=students))
        _applied_twice(tenant, path)
        with statements(tenancy.database) as sent:
            report = tenant.run(path)
        assert "identical to that of run" in report.summary
        counts.append(sent())
    # 35 on SQLite: the files' rows stand for the proven run's in one INSERT (39 when each
    # file's rows were copied by an INSERT ... SELECT of its own)
    assert counts[0] == counts[1] < 36, counts


def test_the_report_of_a_skipped_run_is_the_row_level_report(tenancy, tmp_path, client, read_rows):
    """Same files, row numbers, keys and outcomes, in the same order, as the run that reads
    every row (made row by row here by another connection's write in between)."""
    files = full_district("1.1") | _no_passwords()
    path = package(tmp_path / "district.zip", "1.1", files)
    _, skipped = _applied_twice(tenancy, path)
    assert "identical to that of run" in skipped.summary
    with tenancy.database.session() as session:
        create_connection(session, system_actor(tenancy.tenant_id), "Other SIS", "oneroster")
    other_files = {"orgs.csv": [dict(files["orgs.csv"][2], sourcedId="elsewhere")]}
    other = package(tmp_path / "other.zip", "1.1", other_files, mode="delta")
    assert tenancy.run(other, connection="Other SIS").status == RunStatus.APPLIED
    read_rows.clear()

    row_level = tenancy.run(path)

    assert "identical" not in row_level.summary and read_rows != []
    assert _rows(skipped) == _rows(row_level)
    assert skipped.counts() == row_level.counts()
    assert {file for file, *_ in _rows(skipped)} == set(files)


def test_a_trial_run_of_an_identical_package_is_its_apply(tenancy, tmp_path, read_rows):
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=5))
    _proven(tenancy, path)
    read_rows.clear()

    trial = tenancy.run(path, dry_run=True)
    applied = tenancy.run(path)

    assert (trial.status, applied.status) == (RunStatus.VALID, RunStatus.APPLIED)
    assert read_rows == []
    assert _rows(trial) == _rows(applied) and trial.counts() == applied.counts()
    assert "identical to that of run" in trial.summary


def test_a_staff_edit_in_between_is_undone_row_by_row(
    tenancy, tmp_path, client, admin_token, read_rows
):
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=5))
    _applied_twice(tenancy, path)
    user = tenancy.user("u2")
    answer = client.patch(
        f"/admin/api/users/{user.id}",
        json={"given_name": "Renamed", "override": True},
        headers=bearer(admin_token),
    )
    assert answer.status_code == 200, answer.text
    read_rows.clear()

    report = tenancy.run(path)

    assert read_rows != [] and "identical" not in report.summary
    (row,) = [r for r in report.rows() if r["outcome"] != "unchanged"]
    assert (row["key"], row["outcome"]) == ("u2", "updated")
    assert row["changes"]["given_name"] == ["Renamed", "Stub"]
    assert tenancy.user("u2").given_name == "Stub"
    _proven(tenancy, path)  # proven again at the state the run left
    assert _skipped(tenancy, path, read_rows)


@pytest.mark.parametrize("write", ["create", "patch"])
def test_a_scim_write_of_another_connection_in_between_reads_every_row(
    tenancy, tmp_path, client, scim_token, read_rows, write
):
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=5))
    made = _scim_create(client, scim_token, "someone@school.example")  # a user of its own
    first, _ = _applied_twice(tenancy, path)
    if write == "create":
        _scim_create(client, scim_token, "another@school.example")
    else:
        answer = client.patch(
            f"/scim/v2/Users/{made}",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
            headers=bearer(scim_token),
        )
        assert answer.status_code == 200, answer.text
    read_rows.clear()

    report = tenancy.run(path)

    assert read_rows != [] and "identical" not in report.summary
    assert report.outcomes["unchanged"] == report.row_count == first.row_count
    _proven(tenancy, path)
    assert _skipped(tenancy, path, read_rows)


def test_a_changed_connection_setting_reads_every_row(
    tenancy, tmp_path, client, admin_token, read_rows
):
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=5))
    _applied_twice(tenancy, path)
    answer = client.patch(
        "/admin/api/connections/SIS", json={"default_role": "student"}, headers=bearer(admin_token)
    )
    assert answer.status_code == 200, answer.text
    read_rows.clear()

    report = tenancy.run(path)

    assert read_rows != [] and "identical" not in report.summary
    assert report.outcomes["unchanged"] == report.row_count
    _proven(tenancy, path)
    assert _skipped(tenancy, path, read_rows)


def test_one_changed_byte_reads_every_row(tenancy, tmp_path, read_rows):
    files = district("1.1", students=5)
    _applied_twice(tenancy, package(tmp_path / "a.zip", "1.1", files))
    files["users.csv"][3]["familyName"] = "Stuc"  # one byte
    changed = package(tmp_path / "b.zip", "1.1", files)
    read_rows.clear()

    report = tenancy.run(changed)

    assert read_rows != [] and "identical" not in report.summary
    assert report.outcomes["updated"] == 1
    assert tenancy.user(files["users.csv"][3]["sourcedId"]).family_name == "Stuc"
    _proven(tenancy, changed)
    assert _skipped(tenancy, changed, read_rows)


def test_a_package_with_passwords_is_always_read_row_by_row(tenancy, tmp_path, read_rows):
    """sync_hashes never skips a row carrying a password: the stored one may have changed."""
    files = district("1.1", students=3)
    files["users.csv"][1]["password"] = "Correct-Horse-1-Battery"
    path = package(tmp_path / "district.zip", "1.1", files)
    for _ in range(3):
        assert tenancy.run(path).status == RunStatus.APPLIED
    read_rows.clear()

    report = tenancy.run(path)

    assert ("users.csv", "3") in read_rows and "identical" not in report.summary
    del files["users.csv"][1]["password"]  # the same package without it is remembered
    without = package(tmp_path / "without.zip", "1.1", files)
    _proven(tenancy, without)
    assert _skipped(tenancy, without, read_rows)


@pytest.mark.parametrize("problem", ["warning", "error"])
def test_a_run_that_was_not_clean_is_not_remembered(tenancy, tmp_path, read_rows, problem):
    files = district("1.1", students=3)
    if problem == "warning":
        files["users.csv"][1]["enabledUser"] = "TRUE"  # lenient reading repairs it: W203
    else:
        files["enrollments.csv"][1]["classSourcedId"] = "no-such-class"  # R108
    path = package(tmp_path / "district.zip", "1.1", files)
    options = {"skip_invalid": True}
    first = tenancy.run(path, **options)
    assert first.status == RunStatus.APPLIED and first.codes, first.summary
    tenancy.run(path, **options)
    read_rows.clear()

    again = tenancy.run(path, **options)

    assert read_rows != [] and "identical" not in again.summary
    assert again.codes == first.codes
    assert not _skipped(tenancy, path, read_rows, **options)
    # the same package without the problem is remembered
    if problem == "warning":
        files["users.csv"][1]["enabledUser"] = "true"
    else:
        files["enrollments.csv"][1]["classSourcedId"] = "k1"
    fixed = package(tmp_path / "fixed.zip", "1.1", files)
    _proven(tenancy, fixed)
    assert _skipped(tenancy, fixed, read_rows)


@pytest.mark.usefixtures("prepared_always")  # SQLite: a 600-student import, as a long one
def test_a_scim_write_committed_during_the_import_keeps_the_next_run_row_by_row(
    tenancy, tmp_path, client, scim_token, database_url, read_rows
):
    """PostgreSQL: the write commits while the import writes (READ COMMITTED): the state the
    import would remember is not the state after it, so the next run reads every row. SQLite:
    the write commits while the import prepares on its copy, so the import is prepared again
    after it (server/imports/prepared.py): the state it remembers is that after both, and the
    next run is proven identical."""
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=600))
    assert tenancy.run(path).status == RunStatus.APPLIED
    with tenancy.database.session() as session:
        connection_id = get_connection(session, tenancy.tenant_id, "SIS").id
    writer = threading.Thread(target=_scim_create, args=(client, scim_token, "late@school.example"))
    sqlite = database_url.startswith("sqlite")

    def progress(done: int) -> None:
        # rows done: in the write transaction (the read-ahead reports 0 while it reads)
        if done > 0 and writer.ident is None:
            writer.start()
            writer.join(timeout=60)  # committed while the import goes on

    # a row-level run (another connection's write made the first import's state old)
    _scim_create(client, scim_token, "before@school.example")
    source = open_source(path)
    try:
        during = import_source(
            tenancy.database,
            tenancy.box,
            tenancy.tenant_id,
            connection_id,
            source,
            ImportOptions(),
            progress=progress,
        )
    finally:
        source.close()
    writer.join(timeout=60)
    assert during.status == RunStatus.APPLIED, during.summary
    assert "identical" not in during.summary and writer.ident is not None
    read_rows.clear()

    after = tenancy.run(path)

    if sqlite:
        assert "identical" in after.summary and read_rows == []
        return
    assert read_rows != [] and "identical" not in after.summary
    assert after.outcomes["unchanged"] == after.row_count
    read_rows.clear()
    assert "identical" in tenancy.run(path).summary and read_rows == []  # now it is proven


@pytest.mark.postgres_only
def test_a_fold_of_the_change_rows_does_not_defeat_the_skip(tenancy, tmp_path, read_rows):
    """PostgreSQL folds ``roster_changes`` into ``roster_versions`` (migration 0014): it deletes
    n change rows and adds n to the version, so ``version + count`` (the remembered key) is
    the same before and after, though the raw state (count, highest id) is not."""
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=5))
    assert tenancy.run(path).status == RunStatus.APPLIED
    _fold(tenancy)  # the first fold makes the version row (and its epoch)
    with tenancy.database.session() as session:  # a change row waits to be folded
        system = system_actor(tenancy.tenant_id, "test")
        roster.create_org(session, system, {"name": "Annex", "type": "school", "sourced_id": "x"})
    _proven(tenancy, path)
    with tenancy.database.session() as session:
        before = roster_state(session, tenancy.tenant_id)
    _fold(tenancy)
    with tenancy.database.session() as session:
        after = roster_state(session, tenancy.tenant_id)
    assert before[2] > 0 and after[2] == 0 and before != after
    assert state_key(before) == state_key(after)

    assert _skipped(tenancy, path, read_rows)


def test_the_keys_listed_for_a_skipped_run_are_those_of_the_rows(tmp_path):
    """``Package.keys`` (the report of a skipped run) gives each row's number and key exactly
    as ``Package.rows`` reads them: short and long rows, blank lines, padded and neutralised
    keys, a repeated key column (the last wins), columns in another order."""
    users = (
        "givenName,sourcedId,familyName,sourcedId,extra\r\n"
        "A,x1,B,u1\r\n"
        "\r\n"
        "  ,  ,  \r\n"
        "A,x2,B,  u2  ,more,cells,than,the,header\r\n"
        "A,x3,B,'=u3\r\n"
        "A,x4\r\n"
        '"A,""q""",x5,B,"u\'5"\r\n'
    )
    path = package(tmp_path / "messy.zip", "1.1", {}, raw={"users.csv": users})
    with open_package(path) as read:
        read.modes["users.csv"] = "bulk"
        read._names["users.csv"] = "users.csv"
        rows = [(row.number, row.get("sourcedId")) for row in read.rows("users.csv")]
        assert list(read.keys("users.csv")) == rows
    assert rows[0] == (2, "u1") and (5, "u2") in rows and len(rows) == 7


def _fold(tenancy: Tenancy) -> None:
    with tenancy.database.session() as session:
        session.execute(text("SELECT roster_fold(:t)"), {"t": tenancy.tenant_id})


def _no_passwords() -> dict[str, list[dict[str, str]]]:
    files = full_district("1.1")
    for user in files["users.csv"]:
        user.pop("password", None)
    return {"users.csv": files["users.csv"]}


def _another_tenancy(tenancy: Tenancy, name: str) -> Tenancy:
    from server.domain.tenants import create_tenant

    with tenancy.database.session() as session:
        tenant = create_tenant(session, name)
        create_connection(session, system_actor(tenant.id, "test"), "SIS", "oneroster")
        return Tenancy(tenancy.database, tenancy.box, tenant.id, {})


def test_a_row_reported_with_a_message_is_said_again_on_the_next_run(tenancy, tmp_path, read_rows):
    """A delta's ``tobedeleted`` row for an enrollment that does not exist is unchanged, with
    "nothing to deactivate": the run is not remembered, and the next one says it again."""
    files = district("1.1", students=3)
    for rows in files.values():
        for row in rows:
            row |= {"status": "active", "dateLastModified": "2026-08-01T00:00:00Z"}
    files["enrollments.csv"].append(dict(files["enrollments.csv"][1], sourcedId="e-gone"))
    files["enrollments.csv"][-1]["status"] = "tobedeleted"
    path = package(tmp_path / "delta.zip", "1.1", files, mode="delta")
    for _ in range(3):
        report = tenancy.run(path)
        assert report.status == RunStatus.APPLIED and not report.codes, report.summary
        (said,) = [row for row in report.rows() if row["key"] == "e-gone"]
        assert said["message"] == "Not present: nothing to deactivate.", report.summary
    assert "identical" not in report.summary
