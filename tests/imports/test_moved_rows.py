"""Issue 15 on SQLite: the replay of a prepared import moves the rows its INSERTs put on the
copy with one ``INSERT ... SELECT`` each from the attached copy (``server/db/replay.py``),
instead of sending every row's parameters a second time; what it writes is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, text

from server.db import AuditEvent, Enrollment, ImportRowResult, User
from server.db import replay as replay_module
from server.db.replay import detach, private_copy, recording, replay
from server.db.session import Database
from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.import_runs import RunStatus
from server.domain.tenants import create_tenant
from server.imports import prepared
from tests.imports.conftest import Tenancy
from tests.imports.packages import district, package

pytestmark = pytest.mark.sqlite_only


@contextmanager
def parameter_sets(database: Database) -> Iterator[Callable[[], int]]:
    """Count the parameter sets (rows of an ``executemany``, or one per statement) sent to
    ``database`` inside the block (not those sent to a copy: another engine)."""
    sent = [0]

    def count(_conn, _cursor, _statement, parameters, _context, many) -> None:
        sent[0] += len(parameters) if many else 1

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        yield lambda: sent[0]
    finally:
        event.remove(database.engine, "before_cursor_execute", count)


def _other_tenancy(tenancy: Tenancy) -> Tenancy:
    with tenancy.database.session() as session:
        tenant = create_tenant(session, "Shelbyville District")
        create_connection(session, system_actor(tenant.id, "test"), "SIS", "oneroster")
        tenant_id = tenant.id
    return Tenancy(tenancy.database, tenancy.box, tenant_id, {})


def _written(tenancy: Tenancy, run_id: str) -> dict[str, list[tuple]]:
    """What an import wrote for the tenant, without the ids and times each run makes anew."""
    with tenancy.database.session() as session:
        tenant = tenancy.tenant_id
        users = session.execute(
            select(User.sourced_id, User.username, User.given_name, User.family_name)
            .where(User.tenant_id == tenant)
            .order_by(User.sourced_id)
        ).all()
        enrollments = session.execute(
            select(Enrollment.sourced_id, Enrollment.role, Enrollment.status)
            .where(Enrollment.tenant_id == tenant)
            .order_by(Enrollment.sourced_id)
        ).all()
        rows = session.execute(
            select(ImportRowResult.file, ImportRowResult.row_number, ImportRowResult.outcome)
            .where(ImportRowResult.run_id == run_id)
            .order_by(ImportRowResult.file, ImportRowResult.row_number)
        ).all()
        audit = session.execute(
            select(AuditEvent.action, func.count())
            .where(AuditEvent.tenant_id == tenant, AuditEvent.action != "connection.create")
            .group_by(AuditEvent.action)
            .order_by(AuditEvent.action)
        ).all()
    return {"users": users, "enrollments": enrollments, "rows": rows, "audit": audit}


def test_a_prepared_first_import_moves_its_rows_from_the_copy_not_row_by_row(
    tenancy, tmp_path, monkeypatch
):
    """The replay sends a few parameter sets per statement, not one per row written; the
    district written is the one a direct import writes."""
    archive = package(tmp_path / "district.zip", "1.1", district(students=300))
    monkeypatch.setattr(prepared, "PREPARE_FROM_ROWS", 0)
    with parameter_sets(tenancy.database) as sent:
        report = tenancy.run(archive)
    assert report.status == RunStatus.APPLIED, report.summary
    assert report.row_count > 600
    # the old replay sent every row it wrote again: more parameter sets than rows read
    assert sent() < report.row_count // 4
    other = _other_tenancy(tenancy)
    monkeypatch.setattr(prepared, "PREPARE_FROM_ROWS", 10**9)
    direct = other.run(archive)
    assert direct.status == RunStatus.APPLIED, direct.summary
    assert _written(tenancy, report.id) == _written(other, direct.id)
    assert _written(tenancy, report.id)["users"] != []


SCHEMA = (
    "CREATE TABLE parents (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
    "CREATE TABLE children (id TEXT PRIMARY KEY, parent_id INTEGER NOT NULL"
    " REFERENCES parents (id) ON DELETE CASCADE, mark TEXT)",
)


def _rows(connection, table: str) -> list[tuple]:
    return [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))]


def test_rows_changed_on_the_copy_after_their_insert_are_replayed_as_inserted(tmp_path: Path):
    """Rows updated, or deleted by a foreign key's cascade, after the INSERT that moved them
    are kept as that INSERT's parameters before the change: the original ends as the copy."""
    database = Database(f"sqlite:///{tmp_path / 'moved.sqlite3'}")
    with database.engine.begin() as connection:
        for statement in SCHEMA:
            connection.exec_driver_sql(statement)
        connection.exec_driver_sql("INSERT INTO parents (id, name) VALUES (1, 'kept')")
    parents = [(number, f"p{number}") for number in range(2, 12)]
    children = [(f"c{n}", 2 + n % 10, None) for n in range(100)]
    later = [(f"d{n}", 2 + n % 5 * 2, "later") for n in range(50)]  # not parent 3
    with private_copy(database.engine) as copy, recording(copy, moves_rows=True) as recorder:
        with copy.connect() as connection:
            connection.begin()
            insert = "INSERT INTO children (id, parent_id, mark) VALUES (?, ?, ?)"
            connection.exec_driver_sql("INSERT INTO parents (id, name) VALUES (?, ?)", parents)
            connection.exec_driver_sql(insert, children)
            connection.exec_driver_sql(
                "UPDATE children SET mark = ? WHERE id = ?", [("updated", "c0"), ("updated", "c2")]
            )
            connection.exec_driver_sql("DELETE FROM parents WHERE id = ?", [(3,)])
            connection.exec_driver_sql(insert, later)
            expected = {table: _rows(connection, table) for table in ("parents", "children")}
            connection.connection.driver_connection.execute("COMMIT")
            connection.rollback()
        assert recorder.moved == 3  # the parents, the children, the later children
        with database.engine.connect() as original:
            with original.begin(), parameter_sets(database) as sent:
                assert replay(original, recorder, Path(str(copy.url.database))) == 5
            detach(original)
            assert {table: _rows(original, table) for table in expected} == expected
        # the parents and the first children as inserted (changed after them), the later
        # children moved (1 set); ATTACH, the UPDATE's 2 sets and the DELETE's 1
        assert sent() == len(parents) + len(children) + 5
        recorder.close()
    assert [row for row in expected["children"] if row[1] == 3] == []
    assert ("c2", 4, "updated") in expected["children"]
    assert len(expected["children"]) == len(children) + len(later) - 10
    database.dispose()


def _bytes_written() -> int:
    """What this process has written to files (Linux: ``/proc/self/io``), page cache included."""
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["wchar"])


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="Linux counts bytes written")
def test_the_replay_keeps_its_statement_journals_off_the_disk(tenancy, tmp_path, monkeypatch):
    """Each INSERT ... SELECT of the replay keeps the pages it changes in a statement journal;
    SQLite wrote them to a temporary file: at 20,000 users the replay wrote 1.2 GB for a
    database of 390 MB (issue 15). A small district's replay now fits the page cache and
    writes next to nothing before its commit; the connection goes back to the pool as it was."""
    archive = package(tmp_path / "district.zip", "1.1", district(students=1200))
    monkeypatch.setattr(prepared, "PREPARE_FROM_ROWS", 0)
    written: list[int] = []
    moving = prepared.replay

    def measured(connection, recorder, copy=None):
        before = _bytes_written()
        try:
            return moving(connection, recorder, copy)
        finally:
            written.append(_bytes_written() - before)

    monkeypatch.setattr(prepared, "replay", measured)
    report = tenancy.run(archive)
    assert report.status == RunStatus.APPLIED, report.summary
    assert report.row_count > 2000
    assert len(written) == 1 and written[0] < 256 * 1024, written
    with tenancy.database.engine.connect() as connection:  # the pool's only connection
        assert connection.exec_driver_sql("PRAGMA temp_store").scalar() == 0


def test_the_replay_moves_each_tables_rows_once_without_savepoints(tenancy, tmp_path, monkeypatch):
    """The copy writes a first import a batch at a time, each in a savepoint; the replay
    moves each table's rows with one ``INSERT ... SELECT`` and sends no savepoint (each
    statement of ~2,000 per table kept the pages earlier ones had changed in its statement
    journal: issue 15). What it writes is what a direct import writes."""
    archive = package(tmp_path / "district.zip", "1.1", district(students=1200))
    monkeypatch.setattr(prepared, "PREPARE_FROM_ROWS", 0)
    sent: list[str] = []

    def note(_conn, _cursor, statement, _parameters, _context, _many) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(tenancy.database.engine, "before_cursor_execute", note)
    try:
        report = tenancy.run(archive)
    finally:
        event.remove(tenancy.database.engine, "before_cursor_execute", note)
    assert report.status == RunStatus.APPLIED, report.summary
    moves = [s.split()[2].strip('"') for s in sent if "FROM replay_copy." in s]
    assert report.row_count > 3 * 500  # batches of 500 rows
    for table in ("users", "user_roles", "credentials", "enrollments", "import_row_results"):
        assert moves.count(table) == 1, moves
    assert [s for s in sent if s.upper().startswith(("SAVEPOINT", "RELEASE"))] == []
    other = _other_tenancy(tenancy)
    monkeypatch.setattr(prepared, "PREPARE_FROM_ROWS", 10**9)
    direct = other.run(archive)
    assert _written(tenancy, report.id) == _written(other, direct.id)


@pytest.mark.parametrize(
    ("children_first", "move_rows", "replayed"),
    [(False, None, 2), (True, None, 3), (False, 15, 4)],
    ids=[
        "parents-first: one move per table",
        "children-first: as recorded",
        "at most 15 rows a move: the 40 children in 3",
    ],
)
def test_a_run_of_moves_is_merged_only_in_an_order_its_foreign_keys_allow(
    tmp_path: Path, monkeypatch, children_first: bool, move_rows: int | None, replayed: int
):
    """Moves of one table are merged across a run, the tables in the order they first
    appear, at most ``MOVE_ROWS`` rows a statement; when that order would put rows before
    the rows they refer to (a child table first appearing before its parent's table), the
    run is replayed as recorded."""
    if move_rows is not None:
        monkeypatch.setattr(replay_module, "MOVE_ROWS", move_rows)
    database = Database(f"sqlite:///{tmp_path / 'merged.sqlite3'}")
    with database.engine.begin() as connection:
        for statement in SCHEMA:
            connection.exec_driver_sql(statement)
        connection.exec_driver_sql("INSERT INTO parents (id, name) VALUES (1, 'kept')")
    insert_parents = "INSERT INTO parents (id, name) VALUES (?, ?)"
    insert_children = "INSERT INTO children (id, parent_id, mark) VALUES (?, ?, ?)"
    steps = [
        (insert_parents, [(n, f"p{n}") for n in range(2, 7)]),
        (insert_children, [(f"c{n}", 2 + n % 5, None) for n in range(20)]),
        (insert_parents, [(n, f"p{n}") for n in range(7, 12)]),
        (insert_children, [(f"d{n}", 7 + n % 5, None) for n in range(20)]),
    ]
    if children_first:  # children of the kept parent, then as above but one table each
        steps = [(insert_children, [(f"k{n}", 1, None) for n in range(5)]), *steps[:2]]
    with private_copy(database.engine) as copy, recording(copy, moves_rows=True) as recorder:
        with copy.connect() as connection:
            connection.begin()
            for number, (sql, rows) in enumerate(steps):
                connection.exec_driver_sql(f"SAVEPOINT s{number}")
                connection.exec_driver_sql(sql, rows)
                connection.exec_driver_sql(f"RELEASE SAVEPOINT s{number}")
            expected = {table: _rows(connection, table) for table in ("parents", "children")}
            connection.connection.driver_connection.execute("COMMIT")
            connection.rollback()
        assert recorder.moved == len(steps)
        with database.engine.connect() as original:
            with original.begin():
                assert replay(original, recorder, Path(str(copy.url.database))) == replayed
            detach(original)
            assert {table: _rows(original, table) for table in expected} == expected
        recorder.close()
    database.dispose()
