"""Enrolling many users at once: the rules of :func:`server.domain.roster.enroll`, in bulk.

Imports of a district bring a million enrollments; one query per check and one INSERT per
enrollment would dominate them. :func:`enroll_many` checks a whole batch with a few queries
and writes the new enrollments (and their audit events) with one Core ``executemany`` each,
building no ORM object for them (issue 15). An item whose user,
class and role already have an enrollment goes through :func:`~server.domain.roster.enroll`
itself, so the two paths cannot drift apart on what "enrolling again" means.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import Enrollment, RecordStatus, SchoolClass, User, new_id, utcnow
from server.db.bulk_insert import insert_dicts
from server.domain import audit, record_fields, roster
from server.domain.actors import Actor
from server.domain.users import owning_connection
from server.domain.vocabulary import ENROLLMENT_ROLES, check_choice, parse_date
from server.errors import Conflict, NotFound

CHUNK = 400


@dataclass(frozen=True)
class NewEnrollment:
    """One enrollment to make: what :func:`~server.domain.roster.enroll` takes."""

    user: User
    klass: SchoolClass
    role: str = "student"
    primary: bool = False
    sourced_id: str | None = None
    begin_date: date | str | None = None
    end_date: date | str | None = None
    school_id: str | None = None  # the enrollment's school when the source names one


EMPTY = (None, "")
AUDITED = ("user_id", "class_id", "school_id", "role", "primary", "begin_date", "end_date")


@dataclass(frozen=True)
class Enrolled:
    """A new enrollment :func:`enroll_many` inserted (no ORM object is built for it)."""

    id: str
    sourced_id: str
    version: int


def enroll_many(
    session: Session, actor: Actor, items: list[NewEnrollment]
) -> list[Enrollment | Enrolled]:
    """Enroll every item (in order); returns the enrollments: :class:`Enrolled` for a new one,
    the ``Enrollment`` that ``enroll`` returned for one that existed (or was new earlier in
    ``items``).

    All or nothing for the caller: the first invalid item raises and the caller rolls back
    (an import then retries item by item to report each row).

    :raises NotFound: a user or class of another tenant. :raises InvalidValue: a role or date.
    :raises Conflict: a sourcedId already used, or twice in ``items``.
    """
    checked = []
    for item in items:
        if item.user.tenant_id != actor.tenant_id or item.klass.tenant_id != actor.tenant_id:
            raise NotFound("No such user or class.")
        role = check_choice(item.role, ENROLLMENT_ROLES, "role")
        begin = parse_date(item.begin_date, "begin_date")
        end = parse_date(item.end_date, "end_date")
        checked.append((item, role, begin, end))
    existing = _existing_triples(session, [(i.user.id, i.klass.id, r) for i, r, _, _ in checked])
    wanted = [i.sourced_id for i, _, _, _ in checked if i.sourced_id]
    if len(wanted) != len(set(wanted)):
        raise Conflict("A sourcedId appears twice in one batch.", field="sourced_id")
    taken = _taken_sourced_ids(session, actor.tenant_id, wanted)
    if taken:
        raise Conflict(f"The sourcedId {sorted(taken)[0]!r} is already used.", field="sourced_id")
    owner = owning_connection(session, actor)
    fresh: dict[int, dict[str, Any]] = {}
    for place, (item, role, begin, end) in enumerate(checked):
        triple = (item.user.id, item.klass.id, role)
        if triple not in existing:
            existing.add(triple)
            fresh[place] = _row(actor, owner.id, item, role, begin, end)
    _insert(session, list(fresh.values()))
    results: list[Enrollment | Enrolled] = []
    for place, (item, role, begin, end) in enumerate(checked):
        row = fresh.get(place)
        if row is not None:
            results.append(Enrolled(row["id"], row["sourced_id"], row["version"]))
            continue
        results.append(_enroll_again(session, actor, item, role, begin, end))
    audit.record_many(session, actor, "enrollment.create", [_event(r) for r in fresh.values()])
    found = {r.id: r for r in results if isinstance(r, Enrollment)}
    return [found.get(result.id, result) for result in results]  # enrolled again: its version


def _enroll_again(
    session: Session, actor: Actor, item: NewEnrollment, role: str, begin: Any, end: Any
) -> Enrollment:
    """An item whose triple has an enrollment: :func:`~server.domain.roster.enroll` itself."""
    return roster.enroll(
        session,
        actor,
        item.user,
        item.klass,
        role=role,
        primary=item.primary,
        sourced_id=item.sourced_id,
        begin_date=begin,
        end_date=end,
        school_id=item.school_id,
    )


def _row(
    actor: Actor, owner_id: str, item: NewEnrollment, role: str, begin: Any, end: Any
) -> dict[str, Any]:
    """The ``enrollments`` row of a new enrollment, every column given (one executemany)."""
    made, now = new_id(), utcnow()
    return {
        "id": made,
        "tenant_id": actor.tenant_id,
        "connection_id": owner_id,
        "sourced_id": item.sourced_id or made,
        "status": RecordStatus.ACTIVE,
        "extra": {},
        "created_at": now,
        "updated_at": now,
        "version": 1,
        "content_hash": None,
        "user_id": item.user.id,
        "class_id": item.klass.id,
        "school_id": item.school_id or item.klass.school_id,
        "role": role,
        "primary": item.primary,
        "begin_date": begin,
        "end_date": end,
    }


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    """The new enrollments in one ``executemany`` (an ORM object and its flush per row
    cost a first import ~15% of its time, issue 15)."""
    if rows:
        session.flush()  # the users and classes they name
        insert_dicts(session, Enrollment.__table__, rows)


def _event(row: dict[str, Any]) -> dict[str, Any]:
    """The audit event of a new enrollment: the fields ``enroll`` sets, when given."""
    changes = {k: [None, record_fields.plain(row[k])] for k in AUDITED if row[k] not in EMPTY}
    return {
        "target_kind": "enrollment",
        "target_id": row["id"],
        "target_label": row["sourced_id"],
        "changes": changes,
    }


def _existing_triples(
    session: Session, triples: list[tuple[str, str, str]]
) -> set[tuple[str, str, str]]:
    """The (user, class, role) triples among ``triples``' (user, class) pairs that have an
    enrollment. Asked by user (indexed), the pairs kept in Python: a row-value ``IN`` of
    hundreds of pairs cost SQLite more to plan than the rows it found (issue 15)."""
    wanted = {(user, klass) for user, klass, _ in triples}
    people = sorted({user for user, _ in wanted})
    found: set[tuple[str, str, str]] = set()
    for start in range(0, len(people), CHUNK):
        rows = session.execute(
            select(Enrollment.user_id, Enrollment.class_id, Enrollment.role).where(
                Enrollment.user_id.in_(people[start : start + CHUNK]),
                Enrollment.status != RecordStatus.DELETED,
            )
        )
        found |= {(user, klass, role) for user, klass, role in rows if (user, klass) in wanted}
    return found


def _taken_sourced_ids(session: Session, tenant_id: str, sourced_ids: list[str]) -> set[str]:
    taken: set[str] = set()
    for start in range(0, len(sourced_ids), CHUNK):
        chunk = sourced_ids[start : start + CHUNK]
        taken |= set(
            session.scalars(
                select(Enrollment.sourced_id).where(
                    Enrollment.tenant_id == tenant_id, Enrollment.sourced_id.in_(chunk)
                )
            )
        )
    return taken
