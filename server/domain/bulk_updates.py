"""Writing changed ORM records of one kind with one ``executemany`` UPDATE (issue 15).

The ORM's flush sends one UPDATE per row to a table with a version column (its ETag): SQLite
reports no row count per row of an ``executemany``, so the ORM checks each version alone. A
full import deactivating thousands of records paid a statement per record for that (and on
PostgreSQL, whose ``executemany`` is a statement per row too, a run of the roster triggers).
:func:`write_changes` sends one UPDATE for all of them, checks every version all the same
(the sum of the rows it changed must be the number of records), bumps the versions as the
flush would, and tells the ORM the values are stored.

Example::

    for user in users:
        user.status = "inactive"          # checks and changes made on the objects
    write_changes(session, users, ["status", "updated_at"])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from server.db.bulk_insert import update_rows


def write_changes(session: Session, records: Sequence[Any], names: Sequence[str]) -> None:
    """Store the columns ``names`` of ``records`` (all of one model, with ``id`` and
    ``version``) as they are on the objects; each record's version goes up by one. One
    statement (:func:`server.db.bulk_insert.update_rows`: on PostgreSQL an ``UPDATE ... FROM
    (VALUES ...)``, whose roster triggers run once, not once a row).

    :raises StaleDataError: a record was changed or removed since it was read.
    """
    if not records:
        return
    table = type(records[0]).__table__
    rows = [
        (*(getattr(record, name) for name in names), record.version + 1, record.id, record.version)
        for record in records
    ]
    changed = update_rows(session, table, (*names, "version"), ("id", "version"), rows)
    if changed != len(rows):
        raise StaleDataError(
            f"{len(rows) - changed} of {len(rows)} {table.name} rows changed meanwhile."
        )
    for record, row in zip(records, rows, strict=True):
        for name, value in zip(names, row, strict=False):
            set_committed_value(record, name, value)
        set_committed_value(record, "version", row[len(names)])


def changed_columns(record: Any) -> tuple[str, ...] | None:
    """The columns of ``record``'s own table set since it was loaded (what its flush would
    write there; a changed relationship, e.g. a user's roles, is left to the flush, which
    bumps no version for it), or None when an attribute maps to no column of the table."""
    state = inspect(record)
    table = state.mapper.local_table.c
    names = [a.key for a in state.mapper.column_attrs if state.attrs[a.key].history.has_changes()]
    if any(name not in table for name in names):
        return None
    return tuple(sorted(name for name in names if name != "version"))
