"""What a SCIM create writes into the indexes (issue 15, migration ``0016_lean_write_indexes``).

A create wrote 84 database pages, 53 of them for its attribute index rows: each of its ~14
rows wrote an entry into ``ix_scim_values_number``, although only booleans and numbers have a
number. Counted, never timed: the index entries one create adds (SQLite's ``dbstat``) and the
pages it writes (the frames its commit appends to the WAL, by the object each page belongs to).
"""

from __future__ import annotations

import itertools
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from server.db import Base, ScimValue
from server.db.session import Database
from tests.scim.helpers import PATCH, IdP
from tests.scim.test_idp_replays import entra_user

_MADE = itertools.count()


def _entries(engine: Engine) -> dict[str, int]:
    """Entries (cells) in each index and table of the database, from SQLite's ``dbstat``."""
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT name, sum(ncell) FROM dbstat GROUP BY name")
        return {name: int(cells) for name, cells in rows}


def _pages_written(
    database: Database, idp: IdP, write: Callable[[IdP], None] | None = None
) -> dict[str, int]:
    """The pages one create (or ``write``) writes, by the table or index each belongs to: the
    WAL is emptied first, then the frames the write's commit appended are read (their page
    numbers)."""
    engine = database.engine
    raw = engine.raw_connection()  # outside a transaction: a checkpoint cannot run in one
    try:
        for _ in range(100):  # busy while the checkpointer's thread finishes one of its own
            busy, _, _ = raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy == 0:
                break
            time.sleep(0.02)
    finally:
        raw.close()
    assert busy == 0
    (write or _create)(idp)
    with engine.connect() as connection:
        page_size = connection.exec_driver_sql("PRAGMA page_size").scalar_one()
        owners = dict(connection.exec_driver_sql("SELECT pageno, name FROM dbstat").all())
    wal = Path(str(engine.url.database) + "-wal").read_bytes()
    written: dict[str, int] = {}
    for start in range(32, len(wal), page_size + 24):  # a 32-byte header, then the frames
        (page,) = struct.unpack(">I", wal[start : start + 4])
        owner = owners.get(page, "(other)")
        written[owner] = written.get(owner, 0) + 1
    return written


def _create(idp: IdP) -> None:
    n = next(_MADE)
    created = idp.post("/Users", entra_user(f"paged.{n}@x.example", f"P-{n}"))
    assert created.status_code == 201, created.text


@pytest.mark.sqlite_only
def test_a_create_adds_no_number_index_entry_for_its_text_values(
    idp: IdP, database: Database
) -> None:
    for _ in range(3):
        _create(idp)
    before = _entries(database.engine)
    _create(idp)
    added = {name: n - before.get(name, 0) for name, n in _entries(database.engine).items()}
    with database.session(read_only=True) as session:
        rows = session.scalar(select(text("count(*)")).select_from(ScimValue))
        numbers = session.scalar(
            select(text("count(*)")).select_from(ScimValue).where(ScimValue.number.is_not(None))
        )
    assert rows and numbers and numbers < rows / 4  # most values are text
    # the number index holds exactly the rows that have a number (before: every row)
    assert _entries(database.engine)["ix_scim_values_number"] == numbers
    assert added["ix_scim_values_number"] <= 2 < added["ix_scim_values_lookup"]
    assert "ix_users_connection_id" not in added


@pytest.mark.sqlite_only
def test_a_create_writes_fewer_pages(
    idp: IdP, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A district of a few hundred users, so an index spans many pages: the pages of the
    number index a create writes (before: 25-29, an entry per attribute path; now 5-6), and
    in all (before: 88-97; now 66-74)."""
    for _ in range(300):
        _create(idp)
    # no checkpoint of the thread's while the WAL is read (it would restart the WAL)
    monkeypatch.setattr(database.checkpointer, "every", 10**9)
    written = [_pages_written(database, idp) for _ in range(3)]
    assert max(w.get("ix_scim_values_number", 0) for w in written) <= 8, written
    assert min(sum(w.values()) for w in written) <= 80, written


@pytest.mark.sqlite_only
def test_a_deactivation_writes_no_page_of_the_attribute_index(
    idp: IdP, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15: a PATCH of ``active`` rewrote the user's ``active`` index row, so its commit
    wrote pages of ``scim_values`` and of two of its indexes (21 pages a PATCH at 20,000
    users, 8 of them the index's); the index keeps no row of ``active`` now (13 pages)."""
    ids = [idp.create_user(f"paged.pupil{n}")["id"] for n in range(3)]
    monkeypatch.setattr(database.checkpointer, "every", 10**9)
    body = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}

    def deactivate(user_id: str) -> Callable[[IdP], None]:
        def write(idp: IdP) -> None:
            answer = idp.request("PATCH", f"/Users/{user_id}", json=body)
            assert answer.status_code == 200 and answer.json()["active"] is False, answer.text

        return write

    for user_id in ids:
        written = _pages_written(database, idp, deactivate(user_id))
        assert "users" in written, written
        assert not [name for name in written if "scim_values" in name], written


def test_no_index_is_the_leading_columns_of_another() -> None:
    """Every index costs every write of its table: one whose columns lead another index (or
    unique constraint) of the table, with no condition of its own, only costs."""
    redundant = []
    for table in Base.metadata.sorted_tables:
        keys = [
            (index.name, [c.name for c in index.columns], index.unique, _where(index))
            for index in table.indexes
        ]
        keys += [
            (constraint.name, [c.name for c in constraint.columns], True, None)
            for constraint in table.constraints
            if constraint.__visit_name__ in ("unique_constraint", "primary_key_constraint")
        ]
        for name, columns, unique, where in keys:
            if unique or where is not None:
                continue
            redundant += [
                (name, other)
                for other, longer, _, condition in keys
                if other != name and condition is None and longer[: len(columns)] == columns
            ]
    assert redundant == []


def _where(index: Any) -> Any:
    return index.dialect_options["sqlite"].get("where")


def test_a_numeric_comparison_uses_the_number_index(database: Database) -> None:
    """The statement of a numeric filter (``FilterTranslator._values`` with ``number``
    compared) still walks ``ix_scim_values_number``, now holding only rows with a number, on
    SQLite and PostgreSQL (told to avoid a sequential scan: a test table is small)."""
    statement = select(ScimValue.resource_id).where(
        ScimValue.tenant_id == "t",
        ScimValue.resource_type == "User",
        ScimValue.path == "urn:x:user:score",
    )
    for condition in (ScimValue.number > 3.0, ScimValue.number == 3.0):
        sql = statement.where(condition)
        assert "ix_scim_values_number" in _plan(database, sql), _plan(database, sql)
    # and a query that does not imply a number cannot use it
    present = select(ScimValue.resource_id).where(
        ScimValue.tenant_id == "t", ScimValue.resource_type == "User", ScimValue.path == "x"
    )
    assert "ix_scim_values_number" not in _plan(database, present)


def _plan(database: Database, statement: Any) -> str:
    """The plan of ``statement`` with its values bound as parameters, as a request runs it."""
    with database.engine.connect() as connection:
        compiled = statement.compile(connection)
        parameters: Any = compiled.params
        if compiled.positiontup is not None:
            parameters = tuple(parameters[name] for name in compiled.positiontup)
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET enable_seqscan = off")
            explain = "EXPLAIN "
        else:
            explain = "EXPLAIN QUERY PLAN "
        rows = connection.exec_driver_sql(explain + str(compiled), parameters).all()
        connection.rollback()
        return " / ".join(str(row[-1]) for row in rows)
