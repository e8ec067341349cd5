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


def test_a_one_row_delta_translates_that_row_and_nothing_else(
    tenancy, tmp_path, translated, monkeypatch
):
    files = district("1.1", students=30)
    assert tenancy.run(package(tmp_path / "a.zip", "1.1", files)).status == "applied"
    # read row by row (not skipped as an identical package: server/domain/package_runs.py), it
    # stores the hashes a first import cannot (a school naming its district, both new)
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
