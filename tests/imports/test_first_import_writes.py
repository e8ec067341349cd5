"""What a first import writes per row (issue 15): each new record once, with its row hash,
and nothing it can do before SQLite's write lock done under it.

Speed is measured in ``bench/imports.py``; these tests count statements and rows translated
and check the stored values."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from server.db import Enrollment, User
from tests.imports.packages import district, package
from tests.imports.test_sighted_rows import translated  # noqa: F401 (fixture)

STUDENTS = 1200  # three batches of users and of enrollments


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_first_import_stores_row_hashes_with_the_rows_it_inserts(
    tenancy,
    tmp_path,
    translated,  # noqa: F811 (the fixture imported above)
    version,
):
    """cProfile at 20,000 users: after inserting every new user and enrollment, each batch
    sent a second ``executemany`` updating the rows just inserted with their row hash (100k
    UPDATEs, ~0.7 s). The hash now goes in with the INSERT, and it is the one the next import
    reads: an unchanged re-import translates no row."""
    path = package(tmp_path / "district.zip", version, district(version, students=STUDENTS))
    sent: list[str] = []

    def keep(_conn, _cursor, statement, *_) -> None:
        sent.append(statement)

    # every engine: on SQLite the write phase runs on a private copy (server/imports/prepared.py)
    event.listen(Engine, "before_cursor_execute", keep)
    try:
        first = tenancy.run(path)
    finally:
        event.remove(Engine, "before_cursor_execute", keep)
    assert first.status == "applied", first.summary
    hashed = [
        s for s in sent if re.match(r'\s*UPDATE "?(users|enrollments)"? SET "?content_hash', s)
    ]
    assert hashed == [], f"{len(hashed)} UPDATEs of rows the import had just inserted"
    with tenancy.database.session() as session:
        for model in (User, Enrollment):
            hashes = session.scalars(
                select(model.content_hash).where(model.tenant_id == tenancy.tenant_id)
            ).all()
            assert len(hashes) >= STUDENTS and all(hashes), model.__name__
    translated.clear()

    again = tenancy.run(path)

    assert again.status == "applied", again.summary
    assert again.outcomes["unchanged"] == again.row_count
    files = {file for file, _ in translated}
    # 1.2 users too: their hash holds the cells of their roles.csv rows (never sighted)
    assert files == ({"roles.csv"} if version == "1.2" else set())


def test_an_enrollment_batch_reads_the_users_and_classes_it_names_once(
    tenancy, tmp_path, monkeypatch
):
    """cProfile at 20,000 users: each enrollment batch of a first import read the users and
    classes it names twice, once for the row hashes and once for the rules (R108, R109)."""
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=STUDENTS))
    first, reads = _run_reading(tenancy, path, "enrollments.csv", monkeypatch)
    assert first.status == "applied", first.summary
    assert first.outcomes["created"] > 2 * STUDENTS
    batches = -(-(STUDENTS + 1) // 500)
    for table in ("users", "classes"):
        named = [s for s in reads if re.search(rf"FROM {table}\b.*{table}\.sourced_id IN", s)]
        assert len(named) == batches, f"{len(named)} reads of {table} in {batches} batches"


@pytest.mark.parametrize(
    "file, table", [("users.csv", "users"), ("enrollments.csv", "enrollments")]
)
def test_a_first_import_does_not_read_stored_rows_of_an_empty_table(
    tenancy, tmp_path, monkeypatch, file, table
):
    """cProfile at 20,000 users: each batch of a first import read the stored rows its keys
    name (their hashes, then the rows that may change) and found none: the tenant had no
    users or enrollments. On SQLite (no other writer during the write phase) the run asks
    once per kind whether it has any; on PostgreSQL it still reads every batch."""
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=STUDENTS))
    first, reads = _run_reading(tenancy, path, file, monkeypatch)
    assert first.status == "applied", first.summary
    own = [s for s in reads if re.search(rf"FROM {table}\b.*{table}\.sourced_id IN", s)]
    if tenancy.database.engine.dialect.name == "sqlite":
        assert own == [], f"{len(own)} reads of stored {table} by sourcedId"
    else:
        assert len(own) >= -(-(STUDENTS + 1) // 500)


def test_a_first_import_gives_its_records_ids_in_the_order_it_creates_them(tenancy, tmp_path):
    """A run's new users and enrollments get time-ordered ids (UUID version 7), so each
    INSERT appends to the indexes its id is in (the primary keys, enrollments by user, audit
    events by target) instead of landing on a random page of each. At 20,000 users, the
    INSERTs of users, enrollments and audit events, on the copy and again in its replay
    (``server/imports/prepared.py``), took 8.5 s with random ids and 5.2 s with these."""
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=STUDENTS))
    first = tenancy.run(path)
    assert first.status == "applied", first.summary
    listed = [f"u{n}" for n in range(STUDENTS + 1)]
    with tenancy.database.session() as session:
        for model, keys in ((User, listed), (Enrollment, [f"e-{key}" for key in listed])):
            query = select(model.sourced_id).where(model.tenant_id == tenancy.tenant_id)
            assert session.scalars(query.order_by(model.id)).all() == keys, model.__name__


def _run_reading(tenancy, path, file: str, monkeypatch) -> tuple[Any, list[str]]:
    """Import ``path`` and return its run and the SELECTs sent while batches of ``file`` were
    handled, on every engine (on SQLite the write phase runs on a private copy:
    server/imports/prepared.py)."""
    import server.imports.batches as batches

    handle, current, reads = batches.handle_batch, [""], []

    def handling(ctx, step, batch):
        current[0] = step.file
        try:
            return handle(ctx, step, batch)
        finally:
            current[0] = ""

    def keep(_conn, _cursor, statement, *_) -> None:
        if current[0] == file and statement.lstrip().startswith("SELECT"):
            reads.append(re.sub(r"\s+", " ", statement))

    monkeypatch.setattr(batches, "handle_batch", handling)
    event.listen(Engine, "before_cursor_execute", keep)
    try:
        return tenancy.run(path), reads
    finally:
        event.remove(Engine, "before_cursor_execute", keep)
