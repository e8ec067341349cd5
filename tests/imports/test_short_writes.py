"""A short write phase runs directly under SQLite's write lock, a long one is prepared on a copy
(issue 15: a 1% delta paid for a copy of the whole database and a second write of every row).

The engine sizes the write phase from its read snapshot (``server/imports/snapshot.py``): the
rows not recognised by their stored hash, every row read at 1/45 of one, and for a full import
about how many records it may deactivate; from ``prepared.PREPARE_FROM_ROWS`` on it is
prepared on a copy. The district of these tests has 127 rows (60 students).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from server.db import Enrollment, ImportRun, User
from server.db.replay import copies_directory
from server.domain.import_runs import RunStatus
from server.imports import prepared
from tests.imports.packages import district, package

STUDENTS = 60


@pytest.fixture
def copies(database_url: str, caplog) -> Iterator[Path]:
    """The directory private copies of the test database go to, absent at the start."""
    if not database_url.startswith("sqlite"):
        pytest.skip("only a SQLite file is prepared on a copy")
    directory = copies_directory(Path(str(make_url(database_url).database)))
    shutil.rmtree(directory, ignore_errors=True)
    caplog.set_level(logging.INFO, logger="rollcall.imports")
    yield directory


def _replayed(caplog) -> int:
    """How many imports were prepared on a copy and replayed."""
    return len([r for r in caplog.records if r.getMessage() == "import replayed"])


def _renamed(files: dict, how_many: int) -> dict:
    """``files`` with the family name of the first ``how_many`` students changed."""
    for user in files["users.csv"][1 : how_many + 1]:
        user["familyName"] = "Renamed"
    return files


def test_a_small_import_and_a_small_delta_are_written_directly_without_a_copy(
    tenancy, tmp_path, copies, caplog
):
    first = package(tmp_path / "first.zip", "1.1", district(students=STUDENTS))
    assert tenancy.run(first).status == RunStatus.APPLIED
    delta = package(tmp_path / "delta.zip", "1.1", _renamed(district(students=STUDENTS), 2))
    report = tenancy.run(delta)
    assert report.status == RunStatus.APPLIED
    assert report.outcomes["updated"] == 2
    assert tenancy.count(User, family_name="Renamed") == 2
    assert _replayed(caplog) == 0
    assert not copies.exists()  # no copy of the database was ever made


def test_a_trial_run_of_a_small_delta_writes_nothing_but_its_report(tenancy, tmp_path):
    first = package(tmp_path / "first.zip", "1.1", district(students=STUDENTS))
    assert tenancy.run(first).status == RunStatus.APPLIED
    runs = tenancy.count(ImportRun)
    delta = package(tmp_path / "delta.zip", "1.1", _renamed(district(students=STUDENTS), 3))
    report = tenancy.run(delta, dry_run=True)
    assert report.status == RunStatus.VALID
    assert report.outcomes["updated"] == 3
    assert tenancy.count(User, family_name="Renamed") == 0
    assert tenancy.count(ImportRun) == runs + 1  # its report, and only that


@pytest.mark.parametrize(("threshold", "on_a_copy"), [(5, True), (6, False)])
def test_a_delta_is_prepared_from_the_threshold_on(
    tenancy, tmp_path, copies, caplog, monkeypatch, threshold, on_a_copy
):
    # rows are recognised by the hash stored by a run of the same mode
    first = package(tmp_path / "first.zip", "1.1", district(students=STUDENTS), mode="delta")
    assert tenancy.run(first).status == RunStatus.APPLIED
    monkeypatch.setattr(prepared, "PREPARE_FROM_ROWS", threshold)
    # three rows to apply (the others are recognised by their stored hash), 127 walked (2);
    # a delta deactivates nothing
    files = _renamed(district(students=STUDENTS), 3)
    delta = package(tmp_path / "delta.zip", "1.1", files, mode="delta")
    report = tenancy.run(delta)
    assert report.status == RunStatus.APPLIED and report.outcomes["updated"] == 3
    assert tenancy.count(User, family_name="Renamed") == 3
    assert _replayed(caplog) == (1 if on_a_copy else 0)
    assert copies.exists() == on_a_copy


@pytest.mark.parametrize(("threshold", "on_a_copy"), [(22, True), (23, False)])
def test_what_a_full_import_may_deactivate_counts_towards_the_threshold(
    tenancy, tmp_path, copies, caplog, monkeypatch, threshold, on_a_copy
):
    first = package(tmp_path / "first.zip", "1.1", district(students=STUDENTS))
    assert tenancy.run(first).status == RunStatus.APPLIED
    monkeypatch.setattr(prepared, "PREPARE_FROM_ROWS", threshold)
    # every row listed is unchanged: 102 users and enrollments walked (2; the unchanged orgs,
    # session, course and class are not read: server/imports/file_skips.py); 10 students and
    # their 10 enrollments are not listed: per kind, 61 active users and 61 enrollments less
    # the 51 and 51 rows recognised (20)
    fewer = package(tmp_path / "fewer.zip", "1.1", district(students=STUDENTS - 10))
    report = tenancy.run(fewer)
    assert report.status == RunStatus.APPLIED, report.summary
    assert report.outcomes["deactivated"] == 20
    assert tenancy.count(User, status="active") == STUDENTS + 1 - 10
    assert tenancy.count(Enrollment, status="active") == STUDENTS + 1 - 10
    assert _replayed(caplog) == (1 if on_a_copy else 0)
    assert copies.exists() == on_a_copy


@pytest.mark.parametrize(("at_most", "on_a_copy"), [(5000, False), (5, True)])
def test_a_larger_database_raises_the_threshold_up_to_a_cap(
    tenancy, tmp_path, copies, caplog, monkeypatch, at_most, on_a_copy
):
    """The copy costs in proportion to the database's pages (at 100,000 users 2 GB: ~11 s of
    CPU for a 1% delta's few thousand rows): on a database twice the size the threshold was
    tuned at, twice the rows run directly; never more than ``DIRECT_AT_MOST``."""
    first = package(tmp_path / "first.zip", "1.1", district(students=STUDENTS), mode="delta")
    assert tenancy.run(first).status == RunStatus.APPLIED
    with tenancy.database.engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
    monkeypatch.setattr(prepared, "PREPARE_FROM_ROWS", 5)  # 5 rows: on a copy (test above)
    monkeypatch.setattr(prepared, "TUNED_PAGES", pages // 2)
    monkeypatch.setattr(prepared, "DIRECT_AT_MOST", at_most)
    files = _renamed(district(students=STUDENTS), 3)
    report = tenancy.run(package(tmp_path / "delta.zip", "1.1", files, mode="delta"))
    assert report.status == RunStatus.APPLIED and report.outcomes["updated"] == 3
    assert tenancy.count(User, family_name="Renamed") == 3
    assert _replayed(caplog) == (1 if on_a_copy else 0)
    assert copies.exists() == on_a_copy
