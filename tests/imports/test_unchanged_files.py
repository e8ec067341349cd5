"""A file identical to the one a proven run applied is not read row by row when nothing it
depends on has changed since (issue 15: the 1% delta, where only ``users.csv`` changed), and
the run reports and writes exactly what reading it row by row does (SPEC §5).

Each case applies the same packages, in the same order, to two tenants of one database: one
as the product does it, one with the file skip turned off; the reports and the rosters must
be equal. The cases are those where skipping a file would be wrong: a user or class removed,
a user's role or status changed, a class moved to another school, SCIM or staff writes, a
changed setting, a trial run before the apply, a run that was not clean."""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import aliased

from server.db import (
    AcademicSession,
    Course,
    Enrollment,
    ImportRun,
    Org,
    RecordStatus,
    SchoolClass,
    User,
    UserRole,
)
from server.domain import roster_status, staff
from server.domain.actors import system_actor
from server.domain.connections import create_connection, get_connection
from server.domain.import_runs import Report, RunStatus
from server.domain.tenants import create_tenant
from server.imports import engine, prepared, snapshot
from tests.imports.conftest import Tenancy, bearer
from tests.imports.packages import district, full_district, package

Files = dict[str, list[dict[str, str]]]
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def _district() -> Files:
    """Two schools, two classes (one in each), a teacher and eight students, no passwords."""
    files = district("1.1", students=8)
    files["orgs.csv"].append(
        {"sourcedId": "s2", "name": "Grant High", "type": "school", "parentSourcedId": "d1"}
    )
    files["classes.csv"].append(
        dict(files["classes.csv"][0], sourcedId="k2", title="Maths 3B", classCode="MA3B")
    )
    for index, row in enumerate(list(files["enrollments.csv"])[1:5]):
        files["enrollments.csv"].append(dict(row, sourcedId=f"e2-{index}", classSourcedId="k2"))
    files["demographics.csv"] = [full_district("1.1")["demographics.csv"][0]]
    return files


def _names_changed(files: Files) -> Files:
    """The benchmark's delta: every other student gets another family name."""
    for row in files["users.csv"][1::2]:
        row["familyName"] = f"Changed{row['sourcedId']}"
    return files


def _user_removed(files: Files) -> Files:
    files["users.csv"] = [r for r in files["users.csv"] if r["sourcedId"] != "u3"]
    return files


def _role_changed(files: Files) -> Files:
    files["users.csv"][2]["role"] = "teacher"
    return files


def _status_changed(files: Files) -> Files:
    files["users.csv"][3]["enabledUser"] = "false"
    files["users.csv"][4]["status"] = "tobedeleted"
    return files


def _class_removed(files: Files) -> Files:
    files["classes.csv"] = [r for r in files["classes.csv"] if r["sourcedId"] != "k2"]
    return files


def _class_moved(files: Files) -> Files:
    files["classes.csv"][1]["schoolSourcedId"] = "s2"
    return files


def _course_moved(files: Files) -> Files:
    files["courses.csv"][0]["orgSourcedId"] = "s2"
    return _names_changed(files)


def _school_renamed(files: Files) -> Files:
    files["orgs.csv"][1]["name"] = "Lincoln Primary"
    return files


def _unchanged(files: Files) -> Files:
    return files


def _demographics_changed(files: Files) -> Files:
    files["demographics.csv"][0]["cityOfBirth"] = "Shelbyville"
    return files


DELTAS: dict[str, Callable[[Files], Files]] = {
    "names": _names_changed,
    "user removed": _user_removed,
    "role changed": _role_changed,
    "status changed": _status_changed,
    "class removed": _class_removed,
    "class moved school": _class_moved,
    "course moved school": _course_moved,
    "school renamed": _school_renamed,
    "demographics changed": _demographics_changed,
}


class Case:
    """One tenant's run of a case: its own connection, staff token and SCIM connection."""

    def __init__(self, tenancy: Tenancy, name: str) -> None:
        with tenancy.database.session() as session:
            tenant = create_tenant(session, name)
            system = system_actor(tenant.id, "test")
            create_connection(session, system, "SIS", "oneroster")
            scim = create_connection(session, system, "Entra", "scim").token
            made = staff.create_staff(session, system, "boss", "district_admin", password=None)
            admin = staff.create_staff_token(session, made.staff, "api")
            self.tenant = Tenancy(tenancy.database, tenancy.box, tenant.id, {})
        self.tokens = {"scim": scim, "admin": admin}

    def proven(self, path: Path, remembered: bool = True, **options: Any) -> Report:
        """Apply ``path`` until a run of it is remembered as proven (PostgreSQL: a run that
        writes nothing); ``remembered`` False: three times, none of them remembered."""
        for _ in range(3):
            report = self.tenant.run(path, **options)
            assert report.status == RunStatus.APPLIED, report.summary
            with self.tenant.database.session() as session:
                stored = session.get(ImportRun, report.id)
                assert stored.file_prints is None or remembered, report.summary
                if stored.package_fingerprint is not None and remembered:
                    return report
        if remembered:
            raise AssertionError("no run of the package was remembered")
        return report


def _staff_edit(client, case: Case) -> None:
    user = case.tenant.user("u2")
    answer = client.patch(
        f"/admin/api/users/{user.id}",
        json={"given_name": "Renamed", "override": True},
        headers=bearer(case.tokens["admin"]),
    )
    assert answer.status_code == 200, answer.text


def _scim_write(client, case: Case) -> None:
    answer = client.post(
        "/scim/v2/Users",
        json={"schemas": [SCIM_USER], "userName": "someone@school.example"},
        headers=bearer(case.tokens["scim"]),
    )
    assert answer.status_code == 201, answer.text


def _setting(client, case: Case) -> None:
    answer = client.patch(
        "/admin/api/connections/SIS",
        json={"default_role": "student"},
        headers=bearer(case.tokens["admin"]),
    )
    assert answer.status_code == 200, answer.text


BETWEEN: dict[str, Callable[[Any, Case], None] | None] = {
    "nothing": None,
    "staff edit": _staff_edit,
    "SCIM write": _scim_write,
    "setting changed": _setting,
}


def _rows(report: Report, ids: dict[str, str]) -> list[tuple]:
    return [
        (r["file"], r["row"], r["key"], r["outcome"], r["code"], r["message"], _named(r, ids))
        for r in report.rows()
    ]


def _named(row: dict, ids: dict[str, str]) -> str:
    """A row's changes with each record id as the record's sourcedId (ids differ by tenant)."""
    text = json.dumps(row["changes"], sort_keys=True)
    return re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", lambda found: ids.get(found[0], "?"), text)


def _ids(tenancy: Tenancy) -> dict[str, str]:
    found = {}
    with tenancy.database.session() as session:
        for model in (Org, AcademicSession, Course, SchoolClass, User, Enrollment):
            query = select(model.id, model.sourced_id).where(model.tenant_id == tenancy.tenant_id)
            found |= {id_: str(sourced) for id_, sourced in session.execute(query)}
    return found


def _seen(report: Report, tenancy: Tenancy) -> tuple:
    """What a report says, without the run's own id (a summary may name a run)."""
    rows = _rows(report, _ids(tenancy))
    return report.status, report.counts(), rows, report.codes, report.shrink


def _roster(tenancy: Tenancy) -> dict[str, list[tuple]]:
    """The tenant's users, classes and enrollments as the SIS sees them (by sourcedId)."""
    tenant_id = tenancy.tenant_id
    school = aliased(Org)
    person, klass = aliased(User), aliased(SchoolClass)
    with tenancy.database.session() as session:
        sis = get_connection(session, tenant_id, "SIS").id
        others = session.scalars(
            select(User.username)
            .where(User.tenant_id == tenant_id, User.connection_id != sis)
            .order_by(User.username)
        ).all()
        users = session.execute(
            select(User.sourced_id, User.status, User.given_name, User.family_name, User.version)
            .where(User.tenant_id == tenant_id, User.connection_id == sis)
            .order_by(User.sourced_id)
        ).all()
        roles = session.execute(
            select(person.sourced_id, UserRole.role, school.sourced_id)
            .join(person, person.id == UserRole.user_id)
            .join(school, school.id == UserRole.org_id)
            .where(person.tenant_id == tenant_id)
            .order_by(person.sourced_id, UserRole.role, school.sourced_id)
        ).all()
        classes = session.execute(
            select(SchoolClass.sourced_id, SchoolClass.status, school.sourced_id)
            .join(school, school.id == SchoolClass.school_id)
            .where(SchoolClass.tenant_id == tenant_id)
            .order_by(SchoolClass.sourced_id)
        ).all()
        enrollments = session.execute(
            select(
                Enrollment.sourced_id,
                Enrollment.status,
                Enrollment.role,
                person.sourced_id,
                klass.sourced_id,
            )
            .join(person, person.id == Enrollment.user_id)
            .join(klass, klass.id == Enrollment.class_id)
            .where(Enrollment.tenant_id == tenant_id)
            .order_by(Enrollment.sourced_id)
        ).all()
    return {
        "users": [tuple(row) for row in users],
        "others": list(others),
        "roles": [tuple(row) for row in roles],
        "classes": [tuple(row) for row in classes],
        "enrollments": [tuple(row) for row in enrollments],
    }


def _played(
    case: Case,
    client,
    base: Path,
    delta: Path,
    between: Callable[[Any, Case], None] | None,
    trial_first: bool,
    remembered: bool = True,
    options: tuple[dict[str, Any], dict[str, Any]] = ({}, {}),
) -> list[tuple]:
    if options[0]:  # a school filter names schools that exist
        assert case.tenant.run(base).status == RunStatus.APPLIED
    case.proven(base, remembered, **options[0])
    if between is not None:
        between(client, case)
    seen = []
    if trial_first:
        seen.append(_seen(case.tenant.run(delta, dry_run=True, **options[1]), case.tenant))
    seen.append(_seen(case.tenant.run(delta, **options[1]), case.tenant))
    # and once more: what the run left is proven
    seen.append(_seen(case.tenant.run(delta, **options[1]), case.tenant))
    return seen


def _both(
    tenancy: Tenancy,
    client,
    monkeypatch,
    tmp_path: Path,
    files: Files,
    changed: Files,
    *,
    between: Callable[[Any, Case], None] | None = None,
    trial_first: bool = False,
    label: str = "",
    mode: str = "bulk",
    remembered: bool = True,
    options: tuple[dict[str, Any], dict[str, Any]] = ({}, {}),
) -> tuple[list[tuple], list[tuple]]:
    """The same runs with and without the file skip: (reports, rosters) of each."""
    base = package(tmp_path / f"base{label}.zip", "1.1", files, mode=mode)
    delta = package(tmp_path / f"delta{label}.zip", "1.1", changed, mode=mode)
    skipping, row_level = Case(tenancy, f"Skip {label}"), Case(tenancy, f"Rows {label}")
    played = (client, base, delta, between, trial_first, remembered, options)
    with_skip = _played(skipping, *played)
    with monkeypatch.context() as patched:
        patched.setattr(snapshot, "SKIP_FILES", False)
        without = _played(row_level, *played)
    return [with_skip, _roster(skipping.tenant)], [without, _roster(row_level.tenant)]


def _same(skipped: list, row_level: list) -> None:
    """Run by run, part by part: the reports, then the rosters (clearer when one differs)."""
    (runs, roster), (runs_by_row, roster_by_row) = skipped, row_level
    assert len(runs) == len(runs_by_row)
    for number, (seen, expected) in enumerate(zip(runs, runs_by_row, strict=True)):
        for part, (one, other) in enumerate(zip(seen, expected, strict=True)):
            assert one == other, f"run {number}, part {part}"
    for table in roster_by_row:
        assert roster[table] == roster_by_row[table], table


def test_a_delta_of_names_reads_only_users_csv(tenancy, tmp_path, read_rows):
    """The benchmark's delta: only ``users.csv`` changed (family names); the orgs, sessions,
    courses, classes and enrollments are neither hashed nor translated, trial run or apply,
    and every row is reported as reading it row by row reports it."""
    files = _district()
    case = Case(tenancy, "Names")
    case.proven(package(tmp_path / "base.zip", "1.1", files))
    delta = package(tmp_path / "delta.zip", "1.1", _names_changed(copy.deepcopy(files)))
    for dry_run in (True, False):
        read_rows.clear()
        report = case.tenant.run(delta, dry_run=dry_run)
        assert report.status in (RunStatus.VALID, RunStatus.APPLIED), report.summary
        # demographics.csv (one row) has no stored hashes: it is always read
        assert {file for file, _ in read_rows} == {"users.csv", "demographics.csv"}, read_rows
        assert report.outcomes["updated"] == 4 and not report.codes
        assert report.row_count == sum(len(rows) for rows in files.values())
    assert case.tenant.user("u1").family_name == "Changedu1"


@pytest.mark.parametrize("delta", DELTAS)
def test_a_file_skip_reports_and_writes_what_reading_every_row_does(
    tenancy, client, monkeypatch, tmp_path, delta
):
    files = _district()
    changed = DELTAS[delta](copy.deepcopy(files))
    skipped, row_level = _both(tenancy, client, monkeypatch, tmp_path, files, changed, label=delta)
    _same(skipped, row_level)


@pytest.mark.parametrize("between", BETWEEN)
@pytest.mark.parametrize("trial_first", [False, True], ids=["apply", "trial then apply"])
def test_what_happened_since_the_proven_run_is_read_as_row_by_row(
    tenancy, client, monkeypatch, tmp_path, between, trial_first
):
    files = _district()
    changed = _names_changed(copy.deepcopy(files))
    skipped, row_level = _both(
        tenancy,
        client,
        monkeypatch,
        tmp_path,
        files,
        changed,
        between=BETWEEN[between],
        trial_first=trial_first,
        label=f"{between} {trial_first}",
    )
    _same(skipped, row_level)


SCHOOL = {"school_sourced_ids": ("s1",)}


@pytest.mark.parametrize(
    "options",
    [(SCHOOL, SCHOOL), ({}, SCHOOL), (SCHOOL, {})],
    ids=["filtered", "filter added", "filter dropped"],
)
@pytest.mark.parametrize("delta", ["names", "class moved school", "user removed"])
def test_a_school_filter_is_part_of_what_a_file_was_proven_with(
    tenancy, client, monkeypatch, tmp_path, options, delta
):
    files = _district()
    changed = DELTAS[delta](copy.deepcopy(files))
    skipped, row_level = _both(
        tenancy,
        client,
        monkeypatch,
        tmp_path,
        files,
        changed,
        options=options,
        label=f"{delta} {len(options[0])}{len(options[1])}",
    )
    _same(skipped, row_level)


def test_after_a_run_that_was_not_clean_every_file_is_read(
    tenancy, client, monkeypatch, tmp_path, read_rows
):
    files = _district()
    files["enrollments.csv"][1]["classSourcedId"] = "no-such-class"  # R108
    base = package(tmp_path / "base.zip", "1.1", files)
    delta = package(tmp_path / "delta.zip", "1.1", _names_changed(copy.deepcopy(files)))
    reports = []
    for name, skip in (("Unclean skip", True), ("Unclean rows", False)):
        case = Case(tenancy, name)
        with monkeypatch.context() as patched:
            patched.setattr(snapshot, "SKIP_FILES", skip)
            for _ in range(2):
                assert case.tenant.run(base, skip_invalid=True).status == RunStatus.APPLIED
            read_rows.clear()
            report = case.tenant.run(delta, skip_invalid=True)
        assert "enrollments.csv" in {file for file, _ in read_rows}
        reports.append([_seen(report, case.tenant), _roster(case.tenant)])
    assert reports[0] == reports[1]


def test_a_row_reported_with_a_message_keeps_its_file_read(tenancy, client, monkeypatch, tmp_path):
    """A row that is never recognised by a stored hash (in a delta package, ``tobedeleted``
    for an enrollment that does not exist: unchanged, "nothing to deactivate") is handled, and
    said so, every time."""
    files = _district()
    for rows in files.values():  # what a delta file's rows hold (else W203)
        for row in rows:
            row |= {"status": "active", "dateLastModified": "2026-08-01T00:00:00Z"}
    gone = dict(files["enrollments.csv"][1], sourcedId="e-gone", status="tobedeleted")
    files["enrollments.csv"].append(gone)
    changed = _names_changed(copy.deepcopy(files))
    skipped, row_level = _both(
        tenancy, client, monkeypatch, tmp_path, files, changed, mode="delta", remembered=False
    )
    _same(skipped, row_level)
    for run in skipped[0]:
        (said,) = [row for row in run[2] if row[2] == "e-gone"]
        assert said[5] == "Not present: nothing to deactivate.", said


def _deactivating_a_class(tenancy: Tenancy, monkeypatch) -> list[int]:
    """Once armed (append to the list returned), the next read-ahead ends with a staff member
    deactivating class k2: the write phase starts at another state than the snapshot's."""
    wait, armed = snapshot.writes_left, []

    def deactivate_then(source, ahead):
        if armed:
            armed.clear()
            with tenancy.database.session() as session:
                query = select(SchoolClass).where(
                    SchoolClass.tenant_id == ahead.tenant_id, SchoolClass.sourced_id == "k2"
                )
                klass = session.scalars(query).one()
                system = system_actor(ahead.tenant_id)
                roster_status.set_status(
                    session, system, klass, RecordStatus.INACTIVE, override=True
                )
        return wait(source, ahead)

    monkeypatch.setattr(snapshot, "writes_left", deactivate_then)
    return armed


def test_a_write_between_the_read_ahead_and_the_write_phase_is_read_row_by_row(
    tenancy, client, monkeypatch, tmp_path
):
    """A staff member deactivates a class after the read-ahead found the files proven: the
    write phase starts at another state, so the files are read there, and the class
    reactivated (W202), as reading every row does."""
    files = _district()
    changed = _names_changed(copy.deepcopy(files))
    armed = _deactivating_a_class(tenancy, monkeypatch)
    skipped, row_level = _both(
        tenancy, client, monkeypatch, tmp_path, files, changed, between=lambda *_: armed.append(1)
    )
    _same(skipped, row_level)
    assert any(row[4] == "W202" for row in skipped[0][0][2]), skipped[0][0][2]


def test_files_read_in_the_write_phase_are_compared_with_their_hashes(
    tenancy, monkeypatch, tmp_path, read_rows
):
    """There (the test above) their rows are compared with the stored hashes, batch by batch,
    not translated: only the changed users, the changed class and demographics.csv (no
    stored hashes) are."""
    files = _district()
    case = Case(tenancy, "Between")
    case.proven(package(tmp_path / "base.zip", "1.1", files))
    delta = package(tmp_path / "delta.zip", "1.1", _names_changed(copy.deepcopy(files)))
    _deactivating_a_class(tenancy, monkeypatch).append(1)
    read_rows.clear()

    report = case.tenant.run(delta)

    assert report.codes == {"W202": 1}, report.summary
    translated = {file for file, key in read_rows if key.isdigit()}  # by row number
    assert translated == {"users.csv", "classes.csv", "demographics.csv"}, read_rows
    assert ("enrollments.csv", "e-u1") in read_rows  # hashed


def test_a_disabled_user_in_a_file_left_unread_is_what_reading_it_gives(
    tenancy, client, monkeypatch, tmp_path
):
    """A row of a user the file disables (``enabledUser=false``) is never recognised by a
    stored hash: reading users.csv handles it every time. With only orgs.csv changed, the
    report and the roster (versions included) are those of reading every row."""
    files = _district()
    files["users.csv"][5]["enabledUser"] = "false"
    changed = _school_renamed(copy.deepcopy(files))
    skipped, row_level = _both(tenancy, client, monkeypatch, tmp_path, files, changed)
    _same(skipped, row_level)


@pytest.mark.parametrize("delta", ["names changed", "identical package"])
def test_rows_left_unread_are_not_read_under_the_write_lock_after_a_write_in_between(
    tenancy, monkeypatch, tmp_path, database_url, caplog, delta
):
    """A write committed after the read-ahead found files (or the whole package) proven: the
    write phase must read those rows after all. Sized by the rows read ahead alone it would
    run directly, reading every row of the unread files while it holds SQLite's write lock
    (at 100,000 users a million enrollments, against writers' 10-second busy timeout); so it
    is prepared on a copy, as a run that read every row ahead of that size is."""
    if not database_url.startswith("sqlite"):
        pytest.skip("only a SQLite file is prepared on a copy")
    files = _district()
    case = Case(tenancy, "Moved")
    case.proven(package(tmp_path / "base.zip", "1.1", files))
    again = _names_changed(copy.deepcopy(files)) if delta == "names changed" else files
    path = package(tmp_path / "again.zip", "1.1", again)
    monkeypatch.setattr(prepared, "PREPARE_FROM_ROWS", 1000)  # the rows read ahead: far fewer
    caplog.set_level(logging.INFO, logger="rollcall.imports")

    def replayed() -> int:
        return len([r for r in caplog.records if r.getMessage() == "import replayed"])

    read_ahead = engine.read_ahead

    def then_a_staff_write(database, box, tenant_id, *args):
        ahead = read_ahead(database, box, tenant_id, *args)
        with database.session() as session:  # class k2 deactivated by a staff member
            klass = session.scalars(
                select(SchoolClass).where(
                    SchoolClass.tenant_id == tenant_id, SchoolClass.sourced_id == "k2"
                )
            ).one()
            status = RecordStatus.INACTIVE
            roster_status.set_status(session, system_actor(tenant_id), klass, status, override=True)
        return ahead

    monkeypatch.setattr(engine, "read_ahead", then_a_staff_write)
    report = case.tenant.run(path)

    assert report.status == RunStatus.APPLIED and report.codes == {"W202": 1}, report.summary
    assert replayed() == 1
