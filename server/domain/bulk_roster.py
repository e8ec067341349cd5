"""Set-based creation of roster records for imports (issue 15): a batch at once, every rule
included.

:func:`create_records` creates a batch of orgs, academic sessions or courses as
:func:`server.domain.roster.create_org` (``create_academic_session``, ``create_course``)
creates each (the checks of :func:`~server.domain.roster.values_to_create`, ownership, one
audit event each), the records and their events in one ``executemany`` each. A row may
carry the ``id`` its record takes, so a later row of the batch can name it (a school's
parent district, a term's parent year).

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

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import AcademicSession, Course, Org, SchoolClass, new_record_id, utcnow
from server.db.bulk_insert import insert_dicts
from server.db.roster import SyncedRecord, class_terms
from server.domain import audit, roster, sync_hashes
from server.domain.actors import Actor
from server.domain.record_fields import folded, kind_of, label
from server.domain.users import owning_connection

CHUNK = 900  # bound parameters per IN list


@dataclass(frozen=True)
class Made:
    """A record created in bulk (no ORM object is built for it)."""

    id: str
    sourced_id: str
    version: int = 1
    sealed: bool = False  # inserted with its row hash


@dataclass
class _Rows:
    """The rows of a batch's new records of ``model``, not inserted yet."""

    model: type[SyncedRecord]
    records: list[dict[str, Any]]
    events: list[dict[str, Any]]
    terms: list[dict[str, str]]  # a class's


def create_classes(
    session: Session,
    actor: Actor,
    batch: Sequence[Mapping[str, Any]],
    digests: Sequence[str | None] | None = None,
) -> list[SchoolClass | Made]:
    """Create every class of ``batch`` (``create_class`` fields); returns them in order:
    :class:`Made` for a class made here, the ``SchoolClass`` of one ``create_class`` made.
    ``digests``: as for :func:`create_records`.

    :raises: the first error :func:`server.domain.roster.create_class` raises for a row.
    """
    fresh = _Rows(SchoolClass, [], [], [])
    tenants: dict[type, dict[str, str]] = {
        Org: roster.tenants_of(session, Org, [f.get("school_id") for f in batch]),
        AcademicSession: roster.tenants_of(
            session, AcademicSession, [t for f in batch for t in f.get("term_ids") or []]
        ),
    }
    owner_id = owning_connection(session, actor).id
    taken = _taken(session, SchoolClass, actor.tenant_id, batch)
    made: list[SchoolClass | Made] = []
    now = utcnow()
    for fields, digest in zip(batch, digests or [None] * len(batch), strict=True):
        key = fields.get("sourced_id")
        if not key or key in taken:
            fresh = _insert(session, actor, fresh)  # create_class sees the batch's classes
            made.append(roster.create_class(session, actor, fields))
            continue
        values = roster.class_values_to_create(session, actor, fields, tenants)
        row = new_row(actor, owner_id, SchoolClass, values, now, digest)
        taken.add(str(key))
        fresh.records.append(row)
        fresh.terms += [{"class_id": row["id"], "session_id": t} for t in values.get("terms", [])]
        fresh.events.append(roster.row_creation_event(SchoolClass, row["id"], label(row), values))
        made.append(Made(row["id"], row["sourced_id"], sealed=digest is not None))
    _insert(session, actor, fresh)
    return made


_CREATE: dict[type[SyncedRecord], Any] = {
    Org: roster.create_org,
    AcademicSession: roster.create_academic_session,
    Course: roster.create_course,
}


def create_records(
    session: Session,
    actor: Actor,
    model: type[SyncedRecord],
    batch: Sequence[Mapping[str, Any]],
    digests: Sequence[str | None] | None = None,
) -> list[Any]:
    """Create every org, academic session or course (``model``) of ``batch`` (the fields
    of ``create_org`` and the like, and optionally the ``id`` to give the record); returns
    them in order: :class:`Made` for a record made here, the record the one-by-one create
    made for a row without a sourcedId or with a taken one.

    ``digests``: an import's row digest of each (or None); a :class:`Made` record is
    inserted with its row hash (:func:`server.domain.sync_hashes.sealed` with the version
    written: ``Made.sealed``), so no second write stores it; another gets none here.

    :raises: the first error the one-by-one create raises for a row.
    """
    owner_id = owning_connection(session, actor).id
    taken = _taken(session, model, actor.tenant_id, batch)
    fresh, made, now = _Rows(model, [], [], []), [], utcnow()
    for fields, digest in zip(batch, digests or [None] * len(batch), strict=True):
        key = fields.get("sourced_id")
        if not key or key in taken:
            fresh = _insert(session, actor, fresh)  # the create sees the batch's records
            made.append(_CREATE[model](session, actor, fields))
            continue
        values = roster.values_to_create(actor, model, fields)
        if fields.get("id"):
            values["id"] = fields["id"]
        row = new_row(actor, owner_id, model, values, now, digest)
        taken.add(str(key))
        fresh.records.append(row)
        fresh.events.append(roster.row_creation_event(model, row["id"], label(row), values))
        made.append(Made(row["id"], row["sourced_id"], sealed=digest is not None))
    _insert(session, actor, fresh)
    return made


def new_row(
    actor: Actor,
    owner_id: str,
    model: type[SyncedRecord],
    values: dict[str, Any],
    now: datetime,
    digest: str | None = None,
) -> dict[str, Any]:
    """The table row of a new record, every column given (what
    :func:`~server.domain.roster.new_record` and its flush write); ``values`` loses ``id``
    and ``sourced_id``, which the row takes, and keeps the rest for the audit event. A
    class's ``terms`` (ids) are rows of ``class_terms``, not columns. ``digest``: an
    import's row digest, stored sealed with the record's first version."""
    made = values.pop("id", None) or new_record_id()
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
    if digest is not None:
        row["content_hash"] = sync_hashes.sealed(digest, row["version"])
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


def _insert(session: Session, actor: Actor, fresh: _Rows) -> _Rows:
    """The new records, a class's terms and their ``.create`` events, one ``executemany``
    each; returns an empty :class:`_Rows` for what comes next."""
    if fresh.records:
        session.flush()  # what the ORM holds goes first
        insert_dicts(session, getattr(fresh.model, "__table__"), fresh.records)  # noqa: B009
        insert_dicts(session, class_terms, fresh.terms)
        audit.record_many(session, actor, f"{kind_of(fresh.model)}.create", fresh.events)
    return _Rows(fresh.model, [], [], [])


def _taken(
    session: Session, model: Any, tenant_id: str, batch: Sequence[Mapping[str, Any]]
) -> set[str]:
    """Which sourcedIds of ``batch`` a record of ``model`` of the tenant already has."""
    found: set[str] = set()
    wanted = sorted({str(fields["sourced_id"]) for fields in batch if fields.get("sourced_id")})
    for start in range(0, len(wanted), CHUNK):
        query = select(model.sourced_id).where(
            model.tenant_id == tenant_id,
            model.sourced_id.in_(wanted[start : start + CHUNK]),
        )
        found |= set(session.scalars(query))
    return found
