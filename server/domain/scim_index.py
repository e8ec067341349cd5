"""The SCIM attribute index (:class:`server.db.ScimValue`) and the searches that read it.

The SCIM adapter computes the values of a resource and the SELECT of a search; this module is
where they touch the database, so the protocol package never writes or executes SQL itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Select, Table, delete, func, select
from sqlalchemy.orm import Session

from server.db import ScimValue
from server.db.bulk_insert import insert_rows


@dataclass(frozen=True)
class IndexedValue:
    """One value of a resource attribute, in its comparison form (see ScimValue)."""

    path: str
    text: str | None = None
    number: float | None = None
    present: bool = True
    element: str | None = None
    lead: bool = True


def replace_values(
    session: Session,
    tenant_id: str,
    resource_type: str,
    resource_id: str,
    values: Iterable[IndexedValue],
) -> None:
    """Store the values of a resource in place of the ones stored before, touching only the
    rows that changed: a member added to a group of thousands inserts its rows and deletes
    none (entries have stable ``element`` keys, :mod:`scim.index`).

    New rows go to the table itself (a Core INSERT) in one ``executemany``: an ORM bulk
    INSERT leaves out the None values and so splits the rows into one INSERT per run of alike
    rows, a statement per member of a group.
    """
    table = cast(Table, ScimValue.__table__)
    wanted = Counter(_row(value) for value in values)
    stored = session.execute(
        select(table.c.id, *(table.c[name] for name in _COMPARED)).where(
            table.c.resource_id == resource_id
        )
    ).all()
    gone = []
    for row in stored:
        key = tuple(row[1:])
        if wanted[key] > 0:
            wanted[key] -= 1  # already stored as it is
        else:
            gone.append(row.id)
    for chunk in range(0, len(gone), _CHUNK):
        session.execute(delete(table).where(table.c.id.in_(gone[chunk : chunk + _CHUNK])))
    _insert(session, tenant_id, resource_type, resource_id, wanted.elements())


def replace_entries(
    session: Session,
    tenant_id: str,
    resource_type: str,
    resource_id: str,
    elements: list[str],
    values: Iterable[IndexedValue],
) -> None:
    """Store ``values`` in place of the rows of the entries ``elements`` of a resource (the
    members of a group that joined or left), leaving every other row as it is."""
    table = cast(Table, ScimValue.__table__)
    for chunk in range(0, len(elements), _CHUNK):
        session.execute(
            delete(table).where(
                table.c.resource_id == resource_id,
                table.c.element.in_(elements[chunk : chunk + _CHUNK]),
            )
        )
    _insert(session, tenant_id, resource_type, resource_id, (_row(value) for value in values))


def insert_values(
    session: Session,
    tenant_id: str,
    resource_type: str,
    resource_id: str,
    values: Iterable[IndexedValue],
) -> None:
    """Store the values of a resource that has none stored yet (one created in this unit of
    work): :func:`replace_values` without reading what is stored."""
    _insert(session, tenant_id, resource_type, resource_id, (_row(value) for value in values))


def _insert(
    session: Session,
    tenant_id: str,
    resource_type: str,
    resource_id: str,
    keys: Iterable[tuple[Any, ...]],
) -> None:
    rows = [(tenant_id, resource_type, resource_id, *key) for key in keys]
    # one executemany (a new group of thousands of members has tens of thousands), its SQL
    # written once (server.db.bulk_insert): SQLAlchemy's made a dict of every row, and
    # building its statement cost a created user's index as much as storing the rows
    insert_rows(session, ScimValue.__table__, _INSERTED, rows)


# The columns that make a stored row the same as a wanted one (with the resource's id).
_COMPARED = ("path", "element", "lead", "present", "text", "number")
_INSERTED = ("tenant_id", "resource_type", "resource_id", *_COMPARED)
_CHUNK = 500  # ids per DELETE, well under every database's limit of bound parameters


def _row(value: IndexedValue) -> tuple[Any, ...]:
    """A value as the row stores it (the columns of :data:`_COMPARED`, truncated alike)."""
    text = None if value.text is None else value.text[:1000]
    return (value.path[:255], value.element, value.lead, value.present, text, value.number)


def remove_values(session: Session, resource_id: str) -> None:
    session.execute(delete(ScimValue).where(ScimValue.resource_id == resource_id))


def fetch(session: Session, statement: Select[Any]) -> list[Any]:
    """The rows of a search statement built by a protocol adapter (a read, never a write)."""
    return list(session.execute(statement).all())


def count(session: Session, statement: Select[Any]) -> int:
    """How many rows a search statement selects."""
    return int(session.scalar(select(func.count()).select_from(statement.subquery())) or 0)


STALE = "__stale__"


def mark_stale(session: Session, tenant_id: str, resource_type: str, resource_id: str) -> None:
    """A change made outside SCIM (a staff override): drop the record's values and leave a
    marker; the SCIM adapter re-indexes marked records before its next search."""
    if not session.scalar(select(func.count()).where(ScimValue.resource_id == resource_id)):
        return  # never indexed: not a SCIM record
    replace_values(session, tenant_id, resource_type, resource_id, [IndexedValue(STALE)])


def stale_records(
    session: Session, tenant_id: str, resource_types: Iterable[str] = ("User", "Group")
) -> list[tuple[str, str]]:
    """``(resource_type, resource_id)`` of the records marked stale in a tenant.

    Naming the resource types lets the lookup index (tenant, type, path, …) find the markers
    directly instead of reading every value of the tenant.
    """
    rows = session.execute(
        select(ScimValue.resource_type, ScimValue.resource_id).where(
            ScimValue.tenant_id == tenant_id,
            ScimValue.resource_type.in_(list(resource_types)),
            ScimValue.path == STALE,
        )
    )
    return [(row.resource_type, row.resource_id) for row in rows]
