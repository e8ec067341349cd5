"""Writing changed ORM records of one kind with one ``executemany`` UPDATE (issue 15).

The ORM's flush sends one UPDATE per row to a table with a version column (its ETag): SQLite
reports no row count per row of an ``executemany``, so the ORM checks each version alone. A
full import deactivating thousands of records paid a statement per record for that.
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
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, inspect, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError


def write_changes(session: Session, records: Sequence[Any], names: Sequence[str]) -> None:
    """Store the columns ``names`` of ``records`` (all of one model, with ``id`` and
    ``version``) as they are on the objects; each record's version goes up by one.

    :raises StaleDataError: a record was changed or removed since it was read.
    """
    if not records:
        return
    table = type(records[0]).__table__
    statement = (
        update(table)
        .where(table.c.id == bindparam("w_id"), table.c.version == bindparam("w_version"))
        .values(version=bindparam("w_next"), **{name: bindparam(f"w_{name}") for name in names})
    )
    rows = [
        {
            "w_id": record.id,
            "w_version": record.version,
            "w_next": record.version + 1,
            **{f"w_{name}": getattr(record, name) for name in names},
        }
        for record in records
    ]
    result = cast("CursorResult[Any]", session.connection().execute(statement, rows))
    if result.rowcount != len(rows):
        raise StaleDataError(
            f"{len(rows) - result.rowcount} of {len(rows)} {table.name} rows changed meanwhile."
        )
    for record, row in zip(records, rows, strict=True):
        for name in names:
            set_committed_value(record, name, row[f"w_{name}"])
        set_committed_value(record, "version", row["w_next"])


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
