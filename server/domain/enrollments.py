"""Enrolling many users at once: the rules of :func:`server.domain.roster.enroll`, in bulk.

Imports of a district bring a million enrollments; one query per check and one INSERT per
enrollment would dominate them. :func:`enroll_many` checks a whole batch with a few queries
and writes the new enrollments (and their audit events) with one Core ``executemany`` each,
building no ORM object for them (issue 15). An item whose user,
class and role already have an enrollment goes through :func:`~server.domain.roster.enroll`
itself, so the two paths cannot drift apart on what "enrolling again" means.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from server.db import (
    Enrollment,
    RecordStatus,
    SchoolClass,
    User,
    new_record_id,
    not_deleted,
    utcnow,
)
from server.db.bulk_insert import JSONText, insert_rows
from server.domain import audit, roster, sync_hashes
from server.domain.actors import Actor
from server.domain.record_refs import ClassRef, UserRef
from server.domain.users import owning_connection
from server.domain.vocabulary import ENROLLMENT_ROLES, check_choice, parse_date
from server.errors import Conflict, NotFound

CHUNK = 400


@dataclass(frozen=True)
class NewEnrollment:
    """One enrollment to make: what :func:`~server.domain.roster.enroll` takes."""

    user: User | UserRef  # a record, or the tuple an import read (server.domain.record_refs)
    klass: SchoolClass | ClassRef
    role: str = "student"
    primary: bool = False
    sourced_id: str | None = None
    begin_date: date | str | None = None
    end_date: date | str | None = None
    school_id: str | None = None  # the enrollment's school when the source names one
    digest: str | None = None  # an import's row digest: a new enrollment is stored with it


@dataclass(frozen=True)
class Enrolled:
    """A new enrollment :func:`enroll_many` inserted (no ORM object is built for it)."""

    id: str
    sourced_id: str
    version: int


def enroll_many(
    session: Session, actor: Actor, items: list[NewEnrollment], *, keys_free: bool = False
) -> list[Enrollment | Enrolled]:
    """Enroll every item (in order); returns the enrollments: :class:`Enrolled` for a new one
    (stored with its item's ``digest`` sealed, :mod:`server.domain.sync_hashes`), the
    ``Enrollment`` that ``enroll`` returned for one that existed (or was new earlier in
    ``items``).

    ``keys_free``: the caller read, in this transaction, that no enrollment of the tenant has
    a sourcedId of ``items`` (an import into a tenant without enrollments), so they are not
    read again; a repeat within ``items`` is still refused.

    All or nothing for the caller: the first invalid item raises and the caller rolls back
    (an import then retries item by item to report each row).

    :raises NotFound: a user or class of another tenant. :raises InvalidValue: a role or date.
    :raises Conflict: a sourcedId already used, or twice in ``items``.
    """
    checked = [_checked(actor, item) for item in items]
    session.flush()  # the reads below go past the ORM
    existing = _existing_triples(session, [(i.user.id, i.klass.id, r) for i, r, _, _ in checked])
    wanted = [i.sourced_id for i, _, _, _ in checked if i.sourced_id]
    if len(wanted) != len(set(wanted)):
        raise Conflict("A sourcedId appears twice in one batch.", field="sourced_id")
    taken = set() if keys_free else _taken_sourced_ids(session, actor.tenant_id, wanted)
    if taken:
        raise Conflict(f"The sourcedId {sorted(taken)[0]!r} is already used.", field="sourced_id")
    common = _common(actor, owning_connection(session, actor).id)
    fresh: dict[int, tuple[Any, ...]] = {}
    for place, (item, role, begin, end) in enumerate(checked):
        triple = (item.user.id, item.klass.id, role)
        if triple not in existing:
            existing.add(triple)
            fresh[place] = _row(common, item, role, begin, end)
    _insert(session, list(fresh.values()))
    results: list[Enrollment | Enrolled] = []
    for place, (item, role, begin, end) in enumerate(checked):
        row = fresh.get(place)
        if row is not None:
            results.append(Enrolled(row[_ID], row[_SOURCED_ID], 1))
            continue
        results.append(_enroll_again(session, actor, item, role, begin, end))
    events = [_event(row) for row in fresh.values()]
    audit.record_created(session, actor, "enrollment.create", "enrollment", events)
    found = {r.id: r for r in results if isinstance(r, Enrollment)}
    return [found.get(result.id, result) for result in results]  # enrolled again: its version


Checked = tuple[NewEnrollment, str, date | None, date | None]


def _checked(actor: Actor, item: NewEnrollment) -> Checked:
    """An item with its role and dates checked (what ``enroll`` checks first)."""
    if item.user.tenant_id != actor.tenant_id or item.klass.tenant_id != actor.tenant_id:
        raise NotFound("No such user or class.")
    role = check_choice(item.role, ENROLLMENT_ROLES, "role")
    return (
        item,
        role,
        parse_date(item.begin_date, "begin_date"),
        parse_date(item.end_date, "end_date"),
    )


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


# the columns of a new enrollment's row, in the order :func:`_row` gives them
_COLUMNS = (
    *("tenant_id", "connection_id", "status", "created_at", "updated_at", "version", "extra"),
    *("id", "sourced_id", "content_hash", "user_id", "class_id", "school_id", "role"),
    *("primary", "begin_date", "end_date"),
)
_ID, _SOURCED_ID = 7, 8
_VERSION = 1
_NO_EXTRA: dict[str, Any] = {}  # one object for every row: serialised once (bulk_insert)


def _common(actor: Actor, owner_id: str) -> tuple[Any, ...]:
    """The columns every new enrollment of a batch shares (the first of :data:`_COLUMNS`)."""
    now = utcnow()
    return (actor.tenant_id, owner_id, RecordStatus.ACTIVE, now, now, _VERSION, _NO_EXTRA)


def _row(
    common: tuple[Any, ...], item: NewEnrollment, role: str, begin: Any, end: Any
) -> tuple[Any, ...]:
    """The ``enrollments`` row of a new enrollment, every column of :data:`_COLUMNS` given
    (one executemany of tuples: no dict per row)."""
    made = new_record_id()
    sealed = sync_hashes.sealed(item.digest, _VERSION) if item.digest else None
    # the content hash: the row hash with the version written (no second write)
    return (
        *common,
        *(made, item.sourced_id or made, sealed, item.user.id, item.klass.id),
        *(item.school_id or item.klass.school_id, role, item.primary, begin, end),
    )


def _insert(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """The new enrollments in one ``executemany`` (an ORM object and its flush per row
    cost a first import ~15% of its time, issue 15)."""
    if rows:
        session.flush()  # the users and classes they name
        insert_rows(session, Enrollment.__table__, _COLUMNS, rows)


def _event(row: tuple[Any, ...]) -> tuple[str, str, JSONText]:
    """The audit event of a new enrollment (target id, label, changes): the fields ``enroll``
    sets, when given, each ``[None, value]``."""
    *_, made, sourced_id, _, user_id, class_id, school_id, role, primary, begin, end = row
    values = (user_id, class_id, school_id, role, primary)
    if begin is None and end is None:  # the usual row
        return made, sourced_id, audit.created_row_json(_EVENT_FIELDS, values)
    created: dict[str, Any] = dict(zip(_EVENT_FIELDS, values, strict=True))
    if begin is not None:
        created["begin_date"] = begin.isoformat()
    if end is not None:
        created["end_date"] = end.isoformat()
    return made, sourced_id, audit.created_json(created)


_EVENT_FIELDS = ("user_id", "class_id", "school_id", "role", "primary")


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
        rows = session.connection().execute(
            _triples_query(), {"people": people[start : start + CHUNK]}
        )
        found |= {(user, klass, role) for user, klass, role in rows if (user, klass) in wanted}
    return found


def _taken_sourced_ids(session: Session, tenant_id: str, sourced_ids: list[str]) -> set[str]:
    """Which of ``sourced_ids`` an enrollment of the tenant already has."""
    taken: set[str] = set()
    for start in range(0, len(sourced_ids), CHUNK):
        chunk = sourced_ids[start : start + CHUNK]
        rows = session.connection().execute(_taken_query(), {"tenant": tenant_id, "keys": chunk})
        taken |= set(rows.scalars())
    return taken


@functools.cache
def _triples_query() -> Any:
    """The SELECT of :func:`_existing_triples`, built once: its users are one expanding
    parameter, so a batch's users are not each made into a SQL literal object (issue 15)."""
    return select(Enrollment.user_id, Enrollment.class_id, Enrollment.role).where(
        Enrollment.user_id.in_(bindparam("people", expanding=True)),
        not_deleted(Enrollment.status),
    )


@functools.cache
def _taken_query() -> Any:
    """The SELECT of :func:`_taken_sourced_ids`, built once."""
    return select(Enrollment.sourced_id).where(
        Enrollment.tenant_id == bindparam("tenant"),
        Enrollment.sourced_id.in_(bindparam("keys", expanding=True)),
    )
