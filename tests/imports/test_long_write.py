"""An import costs the same per row at any size (issue 15): while it writes, the heap that
existed before is out of the garbage collector's way and SQLite's page cache holds the indexes
it inserts into; after it, the process and the connection are as they were.

Speed is measured in ``bench/imports.py``; these tests check the settings themselves."""

from __future__ import annotations

import gc

import pytest
from sqlalchemy import text

from server.db.long_writes import CACHE_MIB, YOUNG_OBJECTS, long_write
from server.domain import package_runs
from server.imports.engine import ImportOptions, run_import
from tests.imports.packages import district, package


def _cache_size(session) -> int:
    return session.execute(text("PRAGMA cache_size")).scalar_one()


@pytest.mark.sqlite_only
def test_a_long_write_has_a_larger_page_cache_and_gives_it_back(session) -> None:
    before = _cache_size(session)
    with long_write(session):
        assert _cache_size(session) == -CACHE_MIB * 1024
    assert _cache_size(session) == before


def test_the_heap_stays_frozen_until_the_last_long_write_ends(session, database) -> None:
    assert gc.get_freeze_count() == 0
    with long_write(session):
        assert gc.get_freeze_count() > 0
        with database.session(read_only=True) as other, long_write(other):  # a second import
            assert gc.get_freeze_count() > 0
        assert gc.get_freeze_count() > 0  # the first one still writes
    assert gc.get_freeze_count() == 0


def test_the_young_objects_are_collected_less_often_until_the_last_long_write_ends(
    session, database
) -> None:
    before = gc.get_threshold()
    with long_write(session):
        assert gc.get_threshold() == (YOUNG_OBJECTS, *before[1:])
        with database.session(read_only=True) as other, long_write(other):
            assert gc.get_threshold()[0] == YOUNG_OBJECTS
        assert gc.get_threshold()[0] == YOUNG_OBJECTS  # the first one still writes
    assert gc.get_threshold() == before


@pytest.mark.parametrize("dry_run", [False, True])
def test_an_import_and_its_trial_run_write_with_the_heap_frozen(tenancy, tmp_path, dry_run) -> None:
    path = package(tmp_path / "district.zip", "1.1", district(students=5))
    seen: list[int] = []
    report = run_import(
        tenancy.database,
        tenancy.box,
        tenancy.tenant_id,
        "SIS",
        path,
        ImportOptions(dry_run=dry_run),
        progress=lambda done: seen.append(gc.get_freeze_count()),
    )
    report.close()
    assert report.status == ("valid" if dry_run else "applied"), report.summary
    assert seen and min(seen) > 0
    assert gc.get_freeze_count() == 0


def test_an_import_reads_its_package_ahead_with_the_heap_frozen(
    tenancy, tmp_path, monkeypatch
) -> None:
    """The read-ahead (every row hashed or translated before the write transaction) builds
    as many objects as the write: full collections walk only those too."""
    path = package(tmp_path / "district.zip", "1.1", district(students=600))
    reading: list[int] = []  # the read-ahead reports progress 0 every 500 rows it spools

    def progress(done: int) -> None:
        if done == 0:
            reading.append(gc.get_freeze_count())

    for run in range(2):  # a first import, then a re-import whose rows are found unchanged
        if run:  # read row by row, not skipped as an identical package (package_runs)
            monkeypatch.setattr(package_runs, "ENGINE_VERSION", "row by row")
        reading.clear()
        report = run_import(
            tenancy.database,
            tenancy.box,
            tenancy.tenant_id,
            "SIS",
            path,
            ImportOptions(),
            progress=progress,
        )
        report.close()
        assert report.status == "applied", report.summary
        assert reading and min(reading) > 0
    assert gc.get_freeze_count() == 0
