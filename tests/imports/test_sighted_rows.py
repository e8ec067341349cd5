"""Unchanged rows are recognised before they are translated (issue 15): the read-ahead hashes
each row's cells as read and compares them with the stored hashes in a read snapshot, before
the write transaction; the write transaction confirms them, and looks again at any that a
write since (staff, SCIM, an earlier file of the same run) may have changed.

Speed is measured in ``bench/imports.py``; these tests count the rows translated and check
that the outcome is exactly what applying every row gives."""

from __future__ import annotations

import pytest
from sqlalchemy import select

import oneroster.csv_records
import server.imports.oneroster_csv.source as oneroster_source
from oneroster.csv_files import SourceRow
from server.db import Enrollment, User
from server.domain import package_runs
from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.import_runs import Report, RunStatus
from server.domain.tenants import create_tenant
from tests.imports.conftest import Tenancy, bearer
from tests.imports.packages import district, package
from tests.imports.test_write_lock import StallingUpload, _start_import


@pytest.fixture
def translated(monkeypatch) -> list[tuple[str, int]]:
    """(file, row number) of every row the OneRoster reader translates."""
    rows: list[tuple[str, int]] = []
    translate = oneroster_source.translate

    def counting(row, *args, **kwargs):
        rows.append((row.file, row.number))
        return translate(row, *args, **kwargs)

    monkeypatch.setattr(oneroster_source, "translate", counting)
    return rows


def _rows(report: Report) -> list[tuple]:
    return sorted(
        (r["file"], r["row"] or 0, r["key"] or "", r["outcome"], r["code"] or "", r["message"])
        for r in report.rows()
    )


def test_an_unchanged_reimport_translates_no_row(tenancy, tmp_path, translated):
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=30))
    assert tenancy.run(path).status == "applied"
    assert tenancy.run(path).outcomes["updated"] == 0
    translated.clear()

    again = tenancy.run(path)

    assert again.status == "applied", again.summary
    assert again.outcomes["unchanged"] == again.row_count == 2 + 1 + 1 + 1 + 31 + 31
    assert translated == []


def test_a_reimport_after_the_first_translates_no_row(tenancy, tmp_path, translated, monkeypatch):
    """The first import stores the hash of every row it writes, a school naming its district
    created in the same batch included (read row by row: not skipped as an identical package,
    server/domain/package_runs.py)."""
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=30))
    assert tenancy.run(path).status == "applied"
    translated.clear()
    monkeypatch.setattr(package_runs, "ENGINE_VERSION", "before")

    again = tenancy.run(path)

    assert again.outcomes["unchanged"] == again.row_count, again.summary
    assert translated == []


def test_an_unchanged_oneroster_1_2_reimport_translates_no_user_row(tenancy, tmp_path, translated):
    """1.2 users (their roles in roles.csv) are recognised unchanged like 1.1 users: by the
    cells of their users.csv row and of their roles.csv rows, and the orgs these name."""
    path = package(tmp_path / "district.zip", "1.2", district("1.2", students=30))
    assert tenancy.run(path).status == "applied"
    translated.clear()

    again = tenancy.run(path)

    assert again.outcomes["unchanged"] == again.row_count, again.summary
    assert [row for row in translated if row[0] == "users.csv"] == []


@pytest.mark.parametrize(
    "cells",
    [
        {"role": "aide"},
        {"orgSourcedId": "d1"},
        {"roleType": "secondary"},
        {"beginDate": "2026-09-01"},
    ],
)
def test_a_changed_role_row_applies_its_user_as_reading_every_row_does(
    tenancy, tmp_path, monkeypatch, translated, cells
):
    """A roles.csv row changes and its user's users.csv row does not: the user row is
    applied, and the report is the one applying every row gives (a second tenant with no
    row sighted, the scheme before issue 15)."""
    reports = []
    for sighting in (True, False):
        run = tenancy if sighting else _another_tenancy(tenancy, "Shelbyville")
        with monkeypatch.context() as patched:
            if not sighting:
                patched.setattr(oneroster.csv_records, "REFERENCE_COLUMNS", {})
            files = district("1.2", students=3)
            assert run.run(package(tmp_path / "a.zip", "1.2", files)).status == "applied"
            files["roles.csv"][2] |= cells  # u2's
            translated.clear()
            reports.append(run.run(package(tmp_path / "b.zip", "1.2", files)))
            if sighting:
                assert [r for r in translated if r[0] == "users.csv"] == [("users.csv", 4)]
    sighted, every = reports
    assert sighted.status == every.status == "applied", sighted.summary
    assert _rows(sighted) == _rows(every)
    assert sighted.outcomes["updated"] == every.outcomes["updated"] == 1


def test_a_one_row_delta_translates_that_row_and_nothing_else(
    tenancy, tmp_path, translated, monkeypatch
):
    files = district("1.1", students=30)
    assert tenancy.run(package(tmp_path / "a.zip", "1.1", files)).status == "applied"
    # read row by row (not skipped as an identical package: server/domain/package_runs.py)
    with monkeypatch.context() as older:
        older.setattr(package_runs, "ENGINE_VERSION", "before")
        assert tenancy.run(package(tmp_path / "a.zip", "1.1", files)).outcomes["updated"] == 0
    files["users.csv"][7]["familyName"] = "Renamed"
    changed = package(tmp_path / "b.zip", "1.1", files)
    translated.clear()

    report = tenancy.run(changed)

    assert report.outcomes["updated"] == 1 and report.outcomes["unchanged"] == report.row_count - 1
    assert translated == [("users.csv", 9)]  # line 9: the header, the teacher, u1..u7
    assert tenancy.user("u7").family_name == "Renamed"


def test_a_change_made_between_the_read_and_the_write_is_applied(
    tenancy, tmp_path, client, admin_token
):
    """Staff rename a student while the import reads its file: the read snapshot saw the row
    unchanged, the write transaction sees the record moved and applies the row after all."""
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=400))
    assert tenancy.run(path).status == "applied"
    upload = StallingUpload(path.read_bytes())
    thread, outcome = _start_import(tenancy, upload)
    try:
        assert upload.reached.wait(timeout=60), "the import never read its file"
        user = tenancy.user("u2")
        answer = client.patch(
            f"/admin/api/users/{user.id}",
            json={"given_name": "Renamed", "override": True},
            headers=bearer(admin_token),
        )
    finally:
        upload.go_on.set()
        thread.join(timeout=120)
    assert answer.status_code == 200, answer.text
    (report,) = outcome
    assert isinstance(report, Report), report
    assert report.status == RunStatus.APPLIED, report.summary
    (row,) = [r for r in report.as_dict()["row_results"] if r["key"] == "u2"]
    assert (row["outcome"], row["changes"]["given_name"]) == ("updated", ["Renamed", "Stub"])
    assert report.outcomes["updated"] == 1
    assert tenancy.user("u2").given_name == "Stub"


@pytest.mark.parametrize(
    ("file", "index", "cells"),
    [
        ("users.csv", 2, {"status": "tobedeleted"}),  # u2, named by e-u2
        ("classes.csv", 0, {"status": "tobedeleted"}),  # k1, named by every enrollment
        ("users.csv", 2, {"enabledUser": "false"}),
    ],
)
def test_rows_naming_a_record_the_same_run_changed_report_what_applying_them_does(
    tenancy, tmp_path, monkeypatch, file, index, cells
):
    """An earlier file of the run changes a record later rows name (deletes or disables a
    user, deletes a class): the report is the one applying every row gives (measured on a
    second tenant with no row sighted, the scheme before issue 15)."""
    reports = []
    for sighting in (True, False):
        run = tenancy if sighting else _another_tenancy(tenancy, "Shelbyville")
        with monkeypatch.context() as patched:
            if not sighting:
                patched.setattr(oneroster.csv_records, "REFERENCE_COLUMNS", {})
            files = district("1.1", students=3)
            for _ in range(2):
                assert run.run(package(tmp_path / "a.zip", "1.1", files)).status == "applied"
            files[file][index] |= cells
            reports.append(run.run(package(tmp_path / "b.zip", "1.1", files), mode="delta"))
    sighted, every = reports
    assert _rows(sighted) == _rows(every)
    assert sighted.outcomes == every.outcomes


def _another_tenancy(tenancy: Tenancy, name: str) -> Tenancy:
    with tenancy.database.session() as session:
        tenant = create_tenant(session, name)
        create_connection(session, system_actor(tenant.id, "test"), "SIS", "oneroster")
        return Tenancy(tenancy.database, tenancy.box, tenant.id, {})


@pytest.mark.parametrize("change", [False, True])
def test_a_trial_run_reports_what_the_apply_does(tenancy, tmp_path, change):
    files = district("1.1", students=30)
    assert tenancy.run(package(tmp_path / "a.zip", "1.1", files)).status == "applied"
    if change:
        files["users.csv"][3]["givenName"] = "Another"
        files["enrollments.csv"][5]["role"] = "aide"
    path = package(tmp_path / "b.zip", "1.1", files)

    trial = tenancy.run(path, dry_run=True)
    applied = tenancy.run(path)

    assert (trial.status, applied.status) == ("valid", "applied")
    assert trial.outcomes == applied.outcomes
    assert _rows(trial) == _rows(applied)
    assert applied.outcomes["updated"] == (2 if change else 0)


def test_hashes_stored_before_the_upgrade_count_as_changed_once(
    tenancy, tmp_path, translated, monkeypatch
):
    """Records hashed from translated fields (before this scheme) are applied once by the
    first import after the upgrade (the same outcome: unchanged), which stores the new
    hashes; the next import translates nothing."""
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=30))
    with monkeypatch.context() as old:
        # no reference columns: no row is sighted and records keep the fields' hash, as before
        old.setattr(oneroster.csv_records, "REFERENCE_COLUMNS", {})
        old.setattr(package_runs, "ENGINE_VERSION", "before")  # the code before the upgrade
        assert tenancy.run(path).status == "applied"
        assert tenancy.run(path).outcomes["updated"] == 0
    before = _hashes(tenancy)
    translated.clear()

    upgraded = tenancy.run(path)

    assert upgraded.outcomes["unchanged"] == upgraded.row_count  # nothing changed for real
    assert len(translated) == upgraded.row_count  # but every row was read in full once
    after = _hashes(tenancy)
    assert all(before[key] != after[key] for key in before), "old hashes kept"
    translated.clear()
    assert tenancy.run(path).outcomes["unchanged"] == upgraded.row_count
    assert translated == []


def _hashes(tenancy) -> dict[str, str]:
    with tenancy.database.session() as session:
        found = {}
        for model in (User, Enrollment):
            rows = session.execute(
                select(model.sourced_id, model.content_hash).where(
                    model.tenant_id == tenancy.tenant_id
                )
            )
            found |= {key: value for key, value in rows}
        return found


@pytest.fixture
def built(monkeypatch) -> list[tuple[str, int]]:
    """(file, row number) of every row object the OneRoster reader builds (a row found
    unchanged needs none: its cells are hashed as the csv module reads them)."""
    rows: list[tuple[str, int]] = []
    init = SourceRow.__init__

    def counting(self, file, number, values):
        rows.append((file, number))
        init(self, file, number, values)

    monkeypatch.setattr(SourceRow, "__init__", counting)
    return rows


def test_an_unchanged_row_is_never_built(tenancy, tmp_path, built, monkeypatch):
    files = district("1.1", students=30)
    path = package(tmp_path / "a.zip", "1.1", files)
    assert tenancy.run(path).status == "applied"
    # read row by row (not skipped as an identical package: server/domain/package_runs.py), it
    # stores the hashes a first import cannot (a school naming its district, both new)
    monkeypatch.setattr(package_runs, "ENGINE_VERSION", "row by row")
    assert tenancy.run(path).status == "applied"
    built.clear()

    assert tenancy.run(path).outcomes["unchanged"] == 2 + 1 + 1 + 1 + 31 + 31
    assert built == []

    files["enrollments.csv"][4]["beginDate"] = "2026-09-01"
    report = tenancy.run(package(tmp_path / "b.zip", "1.1", files))
    assert report.outcomes["updated"] == 1
    assert built == [("enrollments.csv", 6)]  # the changed row only


# Drift real producers send (each is a W203 when read leniently, an R102 when strict); the
# row numbers are lines of the file (the header is line 1)
REPAIRED = {
    ("users.csv", 3): {"enabledUser": "TRUE"},  # u1
    ("users.csv", 4): {"grades": "03,,04"},  # u2: an empty list item
    ("classes.csv", 2): {"classType": "Scheduled"},
    ("enrollments.csv", 5): {"primary": "False"},  # e-u3
}
REPAIRED_BULK = {  # a bulk file leaves both blank (1.2.1 CSV §2.1.1)
    ("users.csv", 6): {"status": "active"},  # u4
    ("enrollments.csv", 7): {"dateLastModified": "2026-01-01T00:00:00.000Z"},  # e-u5
}
REPAIRED_DELTA = {  # a delta file needs both, the date in the binding's form
    ("users.csv", 6): {"dateLastModified": "2026-01-01"},  # u4
    ("enrollments.csv", 7): {"status": "Active"},  # e-u5
}


def _drifting(mode: str) -> tuple[dict[str, list[dict[str, str]]], set[tuple[str, int]]]:
    """A district whose rows carry :data:`REPAIRED` (and the mode's own drift); in a delta
    every other row has the status and date a delta file needs."""
    files = district("1.1", students=8)
    if mode == "delta":
        for rows in files.values():
            for row in rows:
                row |= {"status": "active", "dateLastModified": "2026-01-01T00:00:00.000Z"}
    drift = REPAIRED | (REPAIRED_BULK if mode == "bulk" else REPAIRED_DELTA)
    for (file, line), cells in drift.items():
        files[file][line - 2] |= cells
    return files, set(drift)


@pytest.mark.parametrize("mode", ["bulk", "delta"])
def test_rows_repaired_when_read_report_the_same_when_found_unchanged(
    tenancy, tmp_path, monkeypatch, built, mode
):
    """Lenient reading: a row found unchanged still reports its W203 repairs, word for word
    what applying every row reports; only the rows that need a repair are built for it."""
    files, drifting = _drifting(mode)
    reports = []
    for sighting in (True, False):
        run = tenancy if sighting else _another_tenancy(tenancy, "Shelbyville")
        with monkeypatch.context() as patched:
            if not sighting:
                patched.setattr(oneroster.csv_records, "REFERENCE_COLUMNS", {})
            path = package(tmp_path / "a.zip", "1.1", files, mode=mode)
            for _ in range(2):
                assert run.run(path).status == "applied"
            built.clear()
            reports.append(run.run(path))
            if sighting:
                assert set(built) == drifting
    sighted, every = reports
    assert _rows(sighted) == _rows(every)
    assert sighted.outcomes["unchanged"] == sighted.row_count
    assert {(r["file"], r["row"]) for r in sighted.rows() if r["code"] == "W203"} == drifting


def test_strict_reading_refuses_a_drifting_row_on_every_import(tenancy, tmp_path):
    files, drifting = _drifting("bulk")
    path = package(tmp_path / "a.zip", "1.1", files)
    reports = [tenancy.run(path, lenient=False, skip_invalid=True) for _ in range(3)]

    for report in reports:
        refused = {(r["file"], r["row"]) for r in report.rows() if r["code"] == "R102"}
        assert refused == drifting, report.summary
    assert _rows(reports[1]) == _rows(reports[2])
