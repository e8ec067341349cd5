"""Set-based creation of classes for imports (issue 15): a batch at once, every rule included.

:func:`create_classes` creates a batch of classes exactly as
:func:`server.domain.roster.create_class` creates each (the same checks through
:func:`~server.domain.roster.class_values_to_create`, ownership by the acting connection, the
folded title and externalId, one audit event per class), but with the tenants of the batch's
schools and terms read once, one SELECT for the sourcedIds already used, and the classes,
their terms and their audit events in one Core ``executemany`` each, building no ORM object
(an object per class, its terms collection and its flush took 1 ms a class). A class whose
sourcedId is taken (or listed twice), or that has none, goes through ``create_class`` itself,
which raises the error the row deserves.

Example::

    made = create_classes(session, actor, [{"sourced_id": "k1", "title": "Maths", ...}, ...])
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from server.db import AcademicSession, Org, SchoolClass, new_id, utcnow
from server.db.roster import SyncedRecord, class_terms
from server.domain import audit, roster
from server.domain.actors import Actor
from server.domain.record_fields import folded, label
from server.domain.users import owning_connection

CHUNK = 900  # bound parameters per IN list


@dataclass(frozen=True)
class Made:
    """A record created in bulk (no ORM object is built for it)."""

    id: str
    sourced_id: str
    version: int = 1


@dataclass
class _Rows:
    """The rows of a batch's new classes, not inserted yet."""

    classes: list[dict[str, Any]]
    terms: list[dict[str, str]]
    events: list[dict[str, Any]]


def create_classes(
    session: Session, actor: Actor, batch: Sequence[Mapping[str, Any]]
) -> list[SchoolClass | Made]:
    """Create every class of ``batch`` (``create_class`` fields); returns them in order:
    :class:`Made` for a class made here, the ``SchoolClass`` of one ``create_class`` made.

    :raises: the first error :func:`server.domain.roster.create_class` raises for a row.
    """
    tenants: dict[type, dict[str, str]] = {
        Org: roster.tenants_of(session, Org, [f.get("school_id") for f in batch]),
        AcademicSession: roster.tenants_of(
            session, AcademicSession, [t for f in batch for t in f.get("term_ids") or []]
        ),
    }
    owner_id = owning_connection(session, actor).id
    keys = [str(fields["sourced_id"]) for fields in batch if fields.get("sourced_id")]
    taken = _taken(session, actor.tenant_id, keys)
    made: list[SchoolClass | Made] = []
    fresh, now = _Rows([], [], []), utcnow()
    for fields in batch:
        key = fields.get("sourced_id")
        if not key or key in taken:
            _insert(session, actor, fresh)  # create_class sees the batch's classes so far
            fresh = _Rows([], [], [])
            made.append(roster.create_class(session, actor, fields))
            continue
        values = roster.class_values_to_create(session, actor, fields, tenants)
        row = new_row(actor, owner_id, SchoolClass, values, now)
        taken.add(str(key))
        fresh.classes.append(row)
        fresh.terms += [{"class_id": row["id"], "session_id": t} for t in values.get("terms", [])]
        fresh.events.append(roster.row_creation_event(SchoolClass, row["id"], label(row), values))
        made.append(Made(row["id"], row["sourced_id"]))
    _insert(session, actor, fresh)
    return made


def new_row(
    actor: Actor,
    owner_id: str,
    model: type[SyncedRecord],
    values: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The table row of a new record, every column given (what
    :func:`~server.domain.roster.new_record` and its flush write); ``values`` loses ``id``
    and ``sourced_id``, which the row takes, and keeps the rest for the audit event. A
    class's ``terms`` (ids) are rows of ``class_terms``, not columns."""
    made = values.pop("id", None) or new_id()
    row = {name: make() for name, make in _defaults(cast(Any, model))}
    row |= {
        "id": made,
        "tenant_id": actor.tenant_id,
        "connection_id": owner_id,
        "created_at": now,
        "updated_at": now,
        "sourced_id": values.pop("sourced_id", None) or made,
    }
    for name, value in values.items():
        if name != "terms":
            row[name] = value
            row |= folded(model, name, value)
    return row


@functools.cache
def _defaults(model: Any) -> tuple[tuple[str, Any], ...]:
    """Each column of ``model``'s table with what makes its default (None without one)."""
    made: list[tuple[str, Any]] = []
    for column in model.__table__.columns:
        default: Any = column.default
        if default is None:
            made.append((column.name, lambda: None))
        elif default.is_callable:
            made.append((column.name, functools.partial(default.arg, None)))
        else:
            made.append((column.name, functools.partial(lambda value: value, default.arg)))
    return tuple(made)


def _insert(session: Session, actor: Actor, fresh: _Rows) -> None:
    """The new classes, their terms and their ``class.create`` events, one ``executemany``
    each."""
    if not fresh.classes:
        return
    session.flush()  # what the ORM holds goes first
    session.execute(insert(cast(Table, SchoolClass.__table__)), fresh.classes)
    if fresh.terms:
        session.execute(insert(class_terms), fresh.terms)
    audit.record_many(session, actor, "class.create", fresh.events)


def _taken(session: Session, tenant_id: str, keys: list[str]) -> set[str]:
    """Which of ``keys`` a class of the tenant already has as its sourcedId."""
    found: set[str] = set()
    wanted = sorted(set(keys))
    for start in range(0, len(wanted), CHUNK):
        query = select(SchoolClass.sourced_id).where(
            SchoolClass.tenant_id == tenant_id,
            SchoolClass.sourced_id.in_(wanted[start : start + CHUNK]),
        )
        found |= set(session.scalars(query))
    return found
