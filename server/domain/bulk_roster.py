"""Set-based creation of classes for imports (issue 15): a batch at once, every rule included.

:func:`create_classes` creates a batch of classes exactly as
:func:`server.domain.roster.create_class` creates each (the same checks through
:func:`~server.domain.roster.class_values_to_create`, ownership by the acting connection, one
audit event per class), but with the batch's schools and terms read once, one SELECT for the
sourcedIds already used, one flush and the audit events in one ``executemany``. A class whose
sourcedId is taken (or listed twice) goes through ``create_class`` itself, which raises the
error the row deserves.

Example::

    made = create_classes(session, actor, [{"sourced_id": "k1", "title": "Maths", ...}, ...])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import AcademicSession, Org, SchoolClass
from server.domain import audit, roster
from server.domain.actors import Actor
from server.domain.users import owning_connection

CHUNK = 900  # bound parameters per IN list


def create_classes(
    session: Session, actor: Actor, batch: Sequence[Mapping[str, Any]]
) -> list[SchoolClass]:
    """Create every class of ``batch`` (``create_class`` fields); returns them in order.

    :raises: the first error :func:`server.domain.roster.create_class` raises for a row.
    """
    held = _referenced(session, actor.tenant_id, batch)
    owner = owning_connection(session, actor)
    keys = [str(fields["sourced_id"]) for fields in batch if fields.get("sourced_id")]
    taken = _taken(session, actor.tenant_id, keys)
    made: list[SchoolClass] = []
    fresh: list[tuple[SchoolClass, dict[str, Any]]] = []
    for fields in batch:
        key = fields.get("sourced_id")
        if not key or key in taken:
            made.append(roster.create_class(session, actor, fields))
            continue
        values = roster.class_values_to_create(session, actor, fields)
        record = roster.new_record(actor, owner, SchoolClass, values)
        taken.add(str(key))
        session.add(record)
        fresh.append((record, values))
        made.append(record)
    session.flush()
    del held  # the schools and terms were kept loaded for the checks above
    events = [roster.creation_event(record, values) for record, values in fresh]
    audit.record_many(session, actor, "class.create", events)
    return made


def _referenced(session: Session, tenant_id: str, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The schools and terms the batch names, loaded once: while the caller holds them, the
    per-class checks find them in the session's identity map instead of querying again."""
    schools = sorted({str(f["school_id"]) for f in batch if f.get("school_id")})
    terms = sorted({str(t) for f in batch for t in f.get("term_ids") or []})
    held: list[Any] = []
    for model, ids in ((Org, schools), (AcademicSession, terms)):
        for start in range(0, len(ids), CHUNK):
            query = select(model).where(
                model.tenant_id == tenant_id, model.id.in_(ids[start : start + CHUNK])
            )
            held.extend(session.scalars(query))
    return held


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
