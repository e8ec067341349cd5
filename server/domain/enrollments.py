"""Enrolling many users at once: the rules of :func:`server.domain.roster.enroll`, in bulk.

Imports of a district bring a million enrollments; one query per check and one INSERT per
enrollment would dominate them. :func:`enroll_many` checks a whole batch with a few queries
and writes the new enrollments (and their audit events) in one flush. An item whose user,
class and role already have an enrollment goes through :func:`~server.domain.roster.enroll`
itself, so the two paths cannot drift apart on what "enrolling again" means.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from server.db import Enrollment, RecordStatus, SchoolClass, User, new_id
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


def enroll_many(session: Session, actor: Actor, items: list[NewEnrollment]) -> list[Enrollment]:
    """Enroll every item (in order); returns the enrollments, new or existing.

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
    results: list[Enrollment] = []
    fresh: list[tuple[Enrollment, dict[str, Any]]] = []
    for item, role, begin, end in checked:
        if (item.user.id, item.klass.id, role) in existing:
            results.append(
                roster.enroll(
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
            )
            continue
        existing.add((item.user.id, item.klass.id, role))
        enrollment = Enrollment(
            id=new_id(),
            tenant_id=actor.tenant_id,
            connection_id=owner.id,
            user_id=item.user.id,
            class_id=item.klass.id,
            school_id=item.school_id or item.klass.school_id,
            role=role,
            primary=item.primary,
            begin_date=begin,
            end_date=end,
        )
        enrollment.sourced_id = item.sourced_id or enrollment.id
        values = {
            "user_id": item.user.id,
            "class_id": item.klass.id,
            "school_id": item.school_id or item.klass.school_id,
            "role": role,
            "primary": item.primary,
            "begin_date": begin,
            "end_date": end,
        }
        session.add(enrollment)  # pending: a later enroll() of the same triple autoflushes it
        fresh.append((enrollment, values))
        results.append(enrollment)
    session.flush()
    events = [
        {
            "target_kind": "enrollment",
            "target_id": enrollment.id,
            "target_label": enrollment.sourced_id,
            "changes": {
                k: [None, record_fields.plain(v)] for k, v in values.items() if v not in (None, "")
            },
        }
        for enrollment, values in fresh
    ]
    audit.record_many(session, actor, "enrollment.create", events)
    return results


def _existing_triples(
    session: Session, triples: list[tuple[str, str, str]]
) -> set[tuple[str, str, str]]:
    found: set[tuple[str, str, str]] = set()
    pairs = sorted({(user, klass) for user, klass, _ in triples})
    for start in range(0, len(pairs), CHUNK):
        chunk = pairs[start : start + CHUNK]
        rows = session.execute(
            select(Enrollment.user_id, Enrollment.class_id, Enrollment.role).where(
                tuple_(Enrollment.user_id, Enrollment.class_id).in_(chunk),
                Enrollment.status != RecordStatus.DELETED,
            )
        )
        found |= {(row[0], row[1], row[2]) for row in rows}
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
