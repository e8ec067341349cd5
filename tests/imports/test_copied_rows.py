"""The report rows of a file left unread are copied in SQL from the run that proved it (issue
15: the 1% delta at 100,000 users reported a million enrollment rows unchanged one Python call
at a time, and listed their keys from the file to do so).

Each reader of a run's rows (the admin API's run, which the admin page, the push API and the
CLI read alike; the report handed back by the run itself) sees what it sees when every row is
read; retention of the run that proved a file and erasure of a person leave the later run as
it would be."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, update

from oneroster.csv_files import Package
from server.db import ImportRowResult, ImportRun, User, utcnow
from server.domain import import_runs, retention
from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.erasure import purge_user
from server.domain.import_runs import RunStatus
from server.imports import snapshot
from server.imports.engine import ImportOptions, run_import
from tests.imports.conftest import bearer
from tests.imports.packages import package
from tests.imports.test_unchanged_files import (
    DELTAS,
    Case,
    _district,
    _ids,
    _named,
)

UNREAD_ORDER = ("orgs.csv", "academicSessions.csv", "courses.csv", "classes.csv")
UNREAD_IN_NAMES = {*UNREAD_ORDER, "enrollments.csv"}
TEST_SECRET = "test-secret-key-0123456789abcdef"
OPTIONS = ImportOptions()


@pytest.fixture
def listed(monkeypatch) -> list[str]:
    """The files whose keys are listed from the package (one by one, in Python)."""
    names: list[str] = []
    keys = Package.keys

    def listing(self, name):
        names.append(name)
        return keys(self, name)

    monkeypatch.setattr(Package, "keys", listing)
    return names


@pytest.fixture
def unchanged_calls(monkeypatch) -> list[str]:
    """The file of every row reported unchanged one by one."""
    files: list[str] = []
    add = import_runs.Report.add_unchanged

    def adding(self, file, number, key):
        files.append(file)
        return add(self, file, number, key)

    monkeypatch.setattr(import_runs.Report, "add_unchanged", adding)
    return files


def _stored(client, case: Case, run_id: str) -> tuple:
    """A stored run as the admin API gives it (ids as sourcedIds: they differ by tenant)."""
    answer = client.get(f"/admin/api/imports/{run_id}", headers=bearer(case.tokens["admin"]))
    assert answer.status_code == 200, answer.text
    body, ids = answer.json(), _ids(case.tenant)
    rows = [
        (r["file"], r["row"], r["key"], r["outcome"], r["code"], r["message"], _named(r, ids))
        for r in body["row_results"]
    ]
    counts = {key: body[key] for key in ("outcomes", "codes", "rows", "warnings", "shrink")}
    return body["status"], counts, rows


def _runs(case: Case, base: Path, delta: Path, trial_first: bool) -> list:
    case.proven(base)
    runs = [case.tenant.run(delta, dry_run=True)] if trial_first else []
    runs += [case.tenant.run(delta), case.tenant.run(delta)]
    return runs


def test_a_delta_lists_no_key_of_a_file_left_unread(tenancy, tmp_path, listed, unchanged_calls):
    """The benchmark's delta: the unread files' rows are neither listed from the package nor
    reported one by one, nor stored again: one stored row stands for each unread file's rows
    (the rows of the files read, plus one per file left unread); the run reports, and reads
    back, one row per file row all the same."""
    files = _district()
    case = Case(tenancy, "Copied")
    case.proven(package(tmp_path / "base.zip", "1.1", files))
    names = DELTAS["names"](copy.deepcopy(files))
    delta = package(tmp_path / "delta.zip", "1.1", names)
    for dry_run in (True, False):
        listed.clear()
        unchanged_calls.clear()
        report = case.tenant.run(delta, dry_run=dry_run)
        assert report.status in RunStatus.OK, report.summary
        assert not UNREAD_IN_NAMES & set(listed), listed
        assert not UNREAD_IN_NAMES & set(unchanged_calls)
        total = sum(len(rows) for rows in files.values())
        assert report.row_count == total == len(list(report.rows()))
        with case.tenant.database.session() as session:
            stored = session.scalar(select(func.count()).where(ImportRowResult.run_id == report.id))
            read_back = import_runs.load_rows(session, report.id)
        read = len(files["users.csv"]) + len(files["demographics.csv"])
        assert stored == read + len(UNREAD_IN_NAMES)
        assert read_back == list(report.rows()) and len(read_back) == total


@pytest.mark.parametrize("trial_first", [False, True], ids=["apply", "trial then apply"])
@pytest.mark.parametrize("delta", ["names", "user removed", "class moved school", "school renamed"])
def test_stored_runs_read_as_when_every_row_is_read(
    tenancy, client, monkeypatch, tmp_path, delta, trial_first
):
    """The admin API's run (what the admin page, the push API and the CLI read) and the
    counts: the same with files left unread as with every row read."""
    files = _district()
    base = package(tmp_path / "base.zip", "1.1", files)
    changed = package(tmp_path / "delta.zip", "1.1", DELTAS[delta](copy.deepcopy(files)))
    seen = []
    for skip in (True, False):
        case = Case(tenancy, f"Stored {delta} {trial_first} {skip}")
        with monkeypatch.context() as patched:
            patched.setattr(snapshot, "SKIP_FILES", skip)
            runs = _runs(case, base, changed, trial_first)
        seen.append([_stored(client, case, run.id) for run in runs])
    assert seen[0] == seen[1]


def _age(case: Case, run_id: str, days: int) -> None:
    with case.tenant.database.session() as session:
        session.execute(
            update(ImportRun)
            .where(ImportRun.id == run_id)
            .values(started_at=utcnow() - timedelta(days=days))
        )


def test_retention_of_the_run_that_proved_a_file_leaves_a_later_run_whole(
    tenancy, client, tmp_path
):
    files = _district()
    case = Case(tenancy, "Retention")
    proven = case.proven(package(tmp_path / "base.zip", "1.1", files))
    delta = package(tmp_path / "delta.zip", "1.1", DELTAS["names"](copy.deepcopy(files)))
    later = case.tenant.run(delta)
    before = _stored(client, case, later.id)
    _age(case, proven.id, 4000)
    with case.tenant.database.session() as session:
        system = system_actor(case.tenant.tenant_id)
        counts = retention.enforce(session, system, secret_key=TEST_SECRET)
        assert counts["import_runs"] >= 1
        assert session.get(ImportRun, proven.id) is None
    assert _stored(client, case, later.id) == before


def test_erasure_reaches_rows_copied_into_a_later_run(tenancy, client, tmp_path):
    """A school renamed: users.csv is left unread and its rows copied; erasing a student
    pseudonymises their row in both runs."""
    files = _district()
    for rows in (files["users.csv"], files["enrollments.csv"]):
        for row in rows:  # identifiers of fewer than 3 characters are not erased
            for column in ("sourcedId", "userSourcedId"):
                if row.get(column) == "u3":
                    row[column] = "pupil-3"
    case = Case(tenancy, "Erasure")
    proven = case.proven(package(tmp_path / "base.zip", "1.1", files))
    delta = package(tmp_path / "delta.zip", "1.1", DELTAS["school renamed"](copy.deepcopy(files)))
    later = case.tenant.run(delta)
    assert ("users.csv", "pupil-3") in [(r[0], r[2]) for r in _stored(client, case, later.id)[2]]
    with case.tenant.database.session() as session:
        user = session.scalars(
            select(User).where(
                User.tenant_id == case.tenant.tenant_id, User.sourced_id == "pupil-3"
            )
        ).one()
        alias = purge_user(session, user, pseudonym_key=b"k" * 32, throttle_keys=[])
    for run_id in (proven.id, later.id):
        keys = [row[2] for row in _stored(client, case, run_id)[2] if row[0] == "users.csv"]
        assert "pupil-3" not in keys and alias in keys, run_id


def test_a_run_reads_back_what_it_reported(tenancy, tmp_path) -> None:
    """The report a run hands back (the CLI prints it, the upload page shows it) lists the
    copied rows in their place."""
    files = _district()
    case = Case(tenancy, "Handed back")
    case.proven(package(tmp_path / "base.zip", "1.1", files))
    delta = package(tmp_path / "delta.zip", "1.1", DELTAS["names"](copy.deepcopy(files)))
    report = case.tenant.run(delta)
    rows: list[dict[str, Any]] = list(report.rows())
    assert [row["file"] for row in rows[:2]] == ["orgs.csv", "orgs.csv"]
    assert [row["row"] for row in rows if row["file"] == "enrollments.csv"] == list(
        range(2, 2 + len(files["enrollments.csv"]))
    )
    with case.tenant.database.session() as session:
        stored = import_runs.load_rows(session, report.id)
    assert stored == rows


def test_an_identical_package_copies_every_file_and_reads_as_row_by_row(
    tenancy, client, tmp_path, listed, unchanged_calls
):
    """A package identical to a proven run's: no key listed, no row reported one by one; the
    stored run reads as the run that reads every row (made row by row here by another
    connection's write in between)."""
    files = _district()
    case = Case(tenancy, "Identical")
    path = package(tmp_path / "district.zip", "1.1", files)
    case.proven(path)
    listed.clear()
    unchanged_calls.clear()
    skipped = case.tenant.run(path)
    assert "identical to that of run" in skipped.summary
    assert listed == [] and unchanged_calls == []
    with case.tenant.database.session() as session:
        system = system_actor(case.tenant.tenant_id)
        create_connection(session, system, "Other SIS", "oneroster")
    other = {"orgs.csv": [dict(files["orgs.csv"][1], sourcedId="elsewhere")]}
    other_path = package(tmp_path / "other.zip", "1.1", other, mode="delta")
    assert case.tenant.run(other_path, connection="Other SIS").status == RunStatus.APPLIED
    row_level = case.tenant.run(path)
    assert "identical" not in row_level.summary
    skipped_rows, row_level_rows = (_stored(client, case, run.id) for run in (skipped, row_level))
    assert skipped_rows == row_level_rows
    assert list(skipped.rows()) == list(row_level.rows())


def _reads_of_rows(database) -> tuple[list[str], Any]:
    """The SELECTs sent that read stored report rows, and the listener to remove. A read of
    only the rows that stand for other runs' rows (the partial index ``rows_of IS NOT NULL``:
    one per file left unread, never the rows themselves) is listed as ``"refs"``."""
    seen: list[str] = []

    def note(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "import_row_results" in statement:
            refs = "import_row_results.rows_of IS NOT NULL" in statement
            seen.append("refs" if refs and "count(" not in statement else statement)

    event.listen(database.engine, "before_cursor_execute", note)
    return seen, note


@pytest.mark.parametrize("kept", [True, False], ids=["counts kept", "remembered before"])
def test_what_a_delta_copies_is_known_without_reading_the_proven_runs_rows(
    tenancy, client, tmp_path, listed, kept
):
    """The proven run kept how many rows of each file it stored as reading the file reports
    them (``import_runs.file_rows``): the delta reads none of its rows to know what to copy
    (only, once, which of them stand for another run's). A run remembered before it kept them
    (NULL) has its rows read once to know, and the delta's report is the same."""
    files = _district()
    case = Case(tenancy, f"Known {kept}")
    proven = case.proven(package(tmp_path / "base.zip", "1.1", files))
    with case.tenant.database.session() as session:
        stored = session.get(ImportRun, proven.id)
        assert stored.file_rows == {name: len(rows) for name, rows in files.items()}
        if not kept:
            stored.file_rows = None
    delta = package(tmp_path / "delta.zip", "1.1", DELTAS["names"](copy.deepcopy(files)))
    tenant = case.tenant
    seen, note = _reads_of_rows(tenant.database)
    try:  # the run alone (the report it hands back reads its copied rows when listed)
        report = run_import(tenant.database, tenant.box, tenant.tenant_id, "SIS", delta, OPTIONS)
    finally:
        event.remove(case.tenant.database.engine, "before_cursor_execute", note)
    assert report.status == RunStatus.APPLIED and not UNREAD_IN_NAMES & set(listed)
    assert seen.count("refs") == 1, seen
    assert len(seen) - 1 == (0 if kept else 1), seen
    rows = _stored(client, case, report.id)[2]
    order = [*UNREAD_ORDER, "users.csv", "demographics.csv", "enrollments.csv"]
    assert [row[:2] for row in rows] == [
        (name, number + 2) for name in order for number in range(len(files[name]))
    ]


def _pupil(files: dict) -> dict:
    """``files`` with student u3 named ``pupil-3`` (identifiers of fewer than 3 characters
    name no one: subject access and erasure look for longer ones)."""
    for rows in (files["users.csv"], files["enrollments.csv"]):
        for row in rows:
            for column in ("sourcedId", "userSourcedId"):
                if row.get(column) == "u3":
                    row[column] = "pupil-3"
    return files


def _order_of_runs(case: Case) -> dict[str, int]:
    with case.tenant.database.session() as session:
        runs = session.scalars(
            select(ImportRun.id)
            .where(ImportRun.tenant_id == case.tenant.tenant_id)
            .order_by(ImportRun.started_at, ImportRun.id)
        ).all()
    return {run_id: number for number, run_id in enumerate(runs)}


def test_subject_access_lists_a_persons_rows_of_every_run(tenancy, client, monkeypatch, tmp_path):
    """A person's report rows from every run, those a later run reports from an earlier one's
    stored rows included: the same document as when every row is read and stored."""
    files = _pupil(_district())
    base = package(tmp_path / "base.zip", "1.1", files)
    changed = package(
        tmp_path / "delta.zip", "1.1", DELTAS["class moved school"](copy.deepcopy(files))
    )
    seen = []
    for skip in (True, False):
        case = Case(tenancy, f"Subject access {skip}")
        with monkeypatch.context() as patched:
            patched.setattr(snapshot, "SKIP_FILES", skip)
            _runs(case, base, changed, trial_first=True)
        user_id = case.tenant.user("pupil-3").id
        answer = client.get(
            f"/admin/api/users/{user_id}/export", headers=bearer(case.tokens["admin"])
        )
        assert answer.status_code == 200, answer.text
        runs = _order_of_runs(case)
        rows = answer.json()["import_rows"]
        seen.append(
            sorted(
                (
                    runs[r["run_id"]],
                    r["file"],
                    r["row_number"],
                    r["record_key"],
                    r["outcome"],
                    r["code"],
                    r["message"],
                    repr(r["changes"]),
                )
                for r in rows
            )
        )
        assert {r["file"] for r in rows} >= {"users.csv"}
    assert seen[0] == seen[1]
    assert len({row[0] for row in seen[0]}) >= 4  # the proven run and three later ones


@pytest.mark.parametrize("limit", [1, 4, 9, 16, 1000])
def test_a_page_of_a_stored_run_is_the_same_page(tenancy, client, monkeypatch, tmp_path, limit):
    """The admin API's ``limit`` (the page and the push API cut alike) cuts the rows where
    it cuts them when every row is stored, in or between the rows of a file left unread."""
    files = _district()
    base = package(tmp_path / "base.zip", "1.1", files)
    changed = package(tmp_path / "delta.zip", "1.1", DELTAS["names"](copy.deepcopy(files)))
    seen = []
    for skip in (True, False):
        case = Case(tenancy, f"Paged {limit} {skip}")
        with monkeypatch.context() as patched:
            patched.setattr(snapshot, "SKIP_FILES", skip)
            run = _runs(case, base, changed, trial_first=False)[0]
        answer = client.get(
            f"/admin/api/imports/{run.id}?limit={limit}", headers=bearer(case.tokens["admin"])
        )
        assert answer.status_code == 200, answer.text
        ids = _ids(case.tenant)
        seen.append(
            [(r["file"], r["row"], r["key"], r["outcome"], _named(r, ids))
             for r in answer.json()["row_results"]]
        )  # fmt: skip
    assert seen[0] == seen[1] and len(seen[0]) == min(limit, sum(map(len, files.values())))


def _refs(case: Case) -> list[tuple[str, str, str]]:
    """Every stored row that stands for another run's rows: (run, file, the run it names)."""
    with case.tenant.database.session() as session:
        return [
            tuple(row)
            for row in session.execute(
                select(ImportRowResult.run_id, ImportRowResult.file, ImportRowResult.rows_of)
                .join(ImportRun, ImportRun.id == ImportRowResult.run_id)
                .where(
                    ImportRun.tenant_id == case.tenant.tenant_id,
                    ImportRowResult.rows_of.is_not(None),
                )
                .order_by(ImportRowResult.id)
            )
        ]


def _identical(case: Case, path: Path) -> Any:
    report = case.tenant.run(path)
    assert "identical to that of run" in report.summary, report.summary
    return report


def test_a_chain_of_identical_packages_names_the_runs_that_stored_the_rows(
    tenancy, client, tmp_path
):
    """R1 <- R2 <- R3, each identical to the one before: R3's rows stand for R1's (never for
    R2's row that stands for them), and each run reads as R1 does; storing them wrote one row
    per file."""
    files = _district()
    case = Case(tenancy, "Chain")
    path = package(tmp_path / "district.zip", "1.1", files)
    first = case.proven(path)
    second, third = _identical(case, path), _identical(case, path)
    refs = _refs(case)
    assert {(run, rows_of) for run, _, rows_of in refs} == {
        (second.id, first.id),
        (third.id, first.id),
    }
    with case.tenant.database.session() as session:
        stored = session.scalar(select(func.count()).where(ImportRowResult.run_id == third.id))
    assert stored == len(files)
    expected = _stored(client, case, first.id)[2]
    unchanged = [(f, n, k, "unchanged", c, m, "{}") for f, n, k, _, c, m, _ in expected]
    for run in (second, third):
        assert _stored(client, case, run.id)[2] == unchanged


def test_retention_moves_rows_other_runs_refer_to_into_the_newest(tenancy, client, tmp_path):
    """Deleting R1, which R2 and R3 refer to, moves its rows into R3 (R2 then names R3);
    deleting R3 later moves them into R4, which refers to R3: every run kept reads as before,
    and none is emptied."""
    files = _district()
    case = Case(tenancy, "Retention chain")
    path = package(tmp_path / "district.zip", "1.1", files)
    first = case.proven(path)
    second, third = _identical(case, path), _identical(case, path)
    before = {run.id: _stored(client, case, run.id) for run in (second, third)}
    system = system_actor(case.tenant.tenant_id)
    _age(case, first.id, 4000)
    with case.tenant.database.session() as session:
        assert retention.enforce(session, system, secret_key=TEST_SECRET)["import_runs"] == 1
    assert {(run, rows_of) for run, _, rows_of in _refs(case)} == {
        (second.id, third.id),
        (third.id, third.id),
    }
    for run_id, stored in before.items():
        assert _stored(client, case, run_id) == stored
    fourth = _identical(case, path)
    assert _stored(client, case, fourth.id) == before[third.id]
    for run in (second, third):
        _age(case, run.id, 4000)
    with case.tenant.database.session() as session:
        assert retention.enforce(session, system, secret_key=TEST_SECRET)["import_runs"] == 2
    assert {(run, rows_of) for run, _, rows_of in _refs(case)} == {(fourth.id, fourth.id)}
    assert _stored(client, case, fourth.id) == before[third.id]


@pytest.mark.sqlite_only
def test_a_run_prepared_on_a_copy_reads_as_when_every_row_is_read(
    tenancy, client, monkeypatch, tmp_path, prepared_always
):
    """Prepared on a copy and replayed (a write phase of many rows on a SQLite file), the rows
    that stand for a proven run's stay in their place among the run's rows."""
    files = _district()
    base = package(tmp_path / "base.zip", "1.1", files)
    changed = package(tmp_path / "delta.zip", "1.1", DELTAS["names"](copy.deepcopy(files)))
    seen = []
    for skip in (True, False):
        case = Case(tenancy, f"Prepared {skip}")
        with monkeypatch.context() as patched:
            patched.setattr(snapshot, "SKIP_FILES", skip)
            runs = _runs(case, base, changed, trial_first=True)
        seen.append([_stored(client, case, run.id) for run in runs])
        assert _refs(case) or not skip
    assert seen[0] == seen[1]
