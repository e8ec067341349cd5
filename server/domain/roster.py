"""Orgs, academic sessions, courses, classes and enrollments: create, update, status changes.

Same rules as users: the owning connection's pushes change everything, a manual change to a
connection's record needs an override, each write bumps the version and is audited, and
writing the same values again is a no-op that returns an empty change set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import (
    AcademicSession,
    Connection,
    Course,
    Enrollment,
    Org,
    RecordStatus,
    SchoolClass,
    User,
    new_record_id,
    not_deleted,
    utcnow,
)
from server.db.roster import SyncedRecord
from server.domain import audit, guard, scim_index
from server.domain.actors import Actor
from server.domain.bulk_updates import changed_columns, write_changes
from server.domain.record_fields import (
    REFERENCES,
    Changes,
    Tenants,
    assign,
    class_values,
    course_values,
    diff,
    kind_of,
    label,
    org_values,
    plain,
    session_values,
    values_for,
)
from server.domain.record_refs import ClassRef, UserRef
from server.domain.roster_status import set_status
from server.domain.roster_views import find_by_sourced_id
from server.domain.users import owning_connection
from server.domain.vocabulary import (
    ENROLLMENT_ROLES,
    check_choice,
    check_texts,
    parse_date,
)
from server.errors import (
    Conflict,
    NotAllowed,
    NotFound,
    RequiredValue,
    VersionMismatch,
)

Record = TypeVar("Record", bound=SyncedRecord)


def create_org(session: Session, actor: Actor, fields: Mapping[str, Any]) -> Org:
    """A district, school or other org: name, type, identifier, parent_id, sourced_id."""
    return _create(session, actor, Org, values_to_create(actor, Org, fields))


def create_academic_session(
    session: Session, actor: Actor, fields: Mapping[str, Any]
) -> AcademicSession:
    return _create(
        session, actor, AcademicSession, values_to_create(actor, AcademicSession, fields)
    )


def create_course(session: Session, actor: Actor, fields: Mapping[str, Any]) -> Course:
    return _create(session, actor, Course, values_to_create(actor, Course, fields))


# what each of create_org, create_academic_session and create_course checks and requires
_VALUES: dict[type[SyncedRecord], Any] = {
    Org: org_values,
    AcademicSession: session_values,
    Course: course_values,
}
_REQUIRED: dict[type[SyncedRecord], tuple[str, str]] = {
    Org: ("name", "An org needs a name."),
    AcademicSession: ("title", "An academic session needs a title."),
    Course: ("title", "A course needs a title."),
}


def values_to_create(
    actor: Actor, model: type[SyncedRecord], fields: Mapping[str, Any]
) -> dict[str, Any]:
    """A new org's, academic session's or course's checked values (the rules of
    :func:`create_org`, :func:`create_academic_session` and :func:`create_course`, also used
    in bulk).

    :raises NotAllowed: not a district admin. :raises RequiredValue: no name or title.
    """
    _ensure_admin(actor)
    values: dict[str, Any] = _VALUES[model](fields)
    name, message = _REQUIRED[model]
    if not values.get(name):
        raise RequiredValue(message, field=name)
    return values


def class_reference(
    session: Session, actor: Actor, model: type[Course] | type[AcademicSession], sourced_id: str
) -> str:
    """The id of the course or term a pushed class names, created if the tenant has none yet.

    An identity provider that pushes classes (SCIM) is often the district's only source: it
    names a course or term by sourcedId that no SIS file brought. Refusing would leave such a
    district unable to push classes at all; the record is made instead, owned by the pushing
    connection and titled with its sourcedId, so the connection's next push can fill it in.
    Staff and files still get :class:`NotFound` for an unknown reference.
    """
    found = find_by_sourced_id(session, model, actor.tenant_id, sourced_id)
    if found is not None:
        return found.id
    what = "course" if model is Course else "terms"
    if actor.kind != "connection":
        raise NotFound(f"No {what} with sourcedId {sourced_id!r}.", field=what)
    check_texts([sourced_id], what)
    if model is Course:
        return create_course(session, actor, {"title": sourced_id, "sourced_id": sourced_id}).id
    fields = {"title": sourced_id, "type": "term", "sourced_id": sourced_id}
    return create_academic_session(session, actor, fields).id


def create_class(session: Session, actor: Actor, fields: Mapping[str, Any]) -> SchoolClass:
    """A class at a school. ``fields``: title, school_id (required), class_code, class_type,
    course_id, term_ids, grades, subjects, periods, location, external_id, sourced_id."""
    return _create(session, actor, SchoolClass, class_values_to_create(session, actor, fields))


def class_values_to_create(
    session: Session, actor: Actor, fields: Mapping[str, Any], tenants: Tenants | None = None
) -> dict[str, Any]:
    """A new class's checked values (the rules of :func:`create_class`, also used in bulk:
    ``tenants`` as :func:`~server.domain.record_fields.class_values` takes them).

    :raises RequiredValue: no title or school. :raises NotFound: :raises NotAllowed:
    """
    if not str(fields.get("title") or "").strip():
        raise RequiredValue("A class needs a title.", field="title")
    if not fields.get("school_id"):
        raise RequiredValue("A class needs a school.", field="school_id")
    values = class_values(session, actor, fields, tenants)
    _ensure_may_create_at(actor, values["school_id"])
    return values


def enroll(
    session: Session,
    actor: Actor,
    user: User | UserRef,
    klass: SchoolClass | ClassRef,
    *,
    role: str = "student",
    primary: bool = False,
    sourced_id: str | None = None,
    begin_date: date | str | None = None,
    end_date: date | str | None = None,
    school_id: str | None = None,
) -> Enrollment:
    """Put a user in a class; enrolling again returns the existing enrollment (reactivated).

    ``school_id`` is the enrollment's school when a source names one (OneRoster
    ``schoolSourcedId``); by default the class's school. ``user`` and ``klass`` may be the
    tuples an import reads (:mod:`server.domain.record_refs`).

    :raises Conflict: staff put a student in a class of a school the student does not belong
        to (issue 14, item 5); synced data is the source's to keep consistent.
    """
    if user.tenant_id != actor.tenant_id or klass.tenant_id != actor.tenant_id:
        raise NotFound("No such user or class.")
    role = check_choice(role, ENROLLMENT_ROLES, "role")
    if actor.kind == "staff" and role == "student":
        _refuse_other_school(
            session, _record(session, User, user), _record(session, SchoolClass, klass)
        )
    existing = session.scalars(
        select(Enrollment).where(
            Enrollment.user_id == user.id,
            Enrollment.class_id == klass.id,
            Enrollment.role == role,
            not_deleted(Enrollment.status),
        )
    ).first()
    values: dict[str, Any] = {
        "primary": primary,
        "begin_date": parse_date(begin_date, "begin_date"),
        "end_date": parse_date(end_date, "end_date"),
    }
    if existing is not None:
        update_record(session, actor, existing, values)
        set_status(session, actor, existing, RecordStatus.ACTIVE)
        return existing
    school = school_id or klass.school_id
    values |= {"user_id": user.id, "class_id": klass.id, "school_id": school, "role": role}
    if sourced_id:
        values["sourced_id"] = sourced_id
    return _create(session, actor, Enrollment, values)


def _record(session: Session, model: type[Any], found: Any) -> Any:
    """The record of a tuple of :mod:`server.domain.record_refs` (a record as it is)."""
    return session.get(model, found.id) if isinstance(found, UserRef | ClassRef) else found


def _refuse_other_school(session: Session, user: User, klass: SchoolClass) -> None:
    schools = {r.org_id for r in user.roles}
    if klass.school_id in schools:
        return
    org = session.get(Org, klass.school_id)
    where = org.name if org is not None else "another school"
    raise Conflict(
        f"{klass.title} is a class of {where}, and {user.display_name} is not a student there: "
        "choose a class of the student's school."
    )


def update_record(
    session: Session,
    actor: Actor,
    record: Record,
    fields: Mapping[str, Any],
    *,
    override: bool = False,
    expected_version: int | None = None,
) -> Changes:
    """Apply the fields that differ to any roster record; returns the change set."""
    change = _update_change(session, actor, record, fields, override, expected_version)
    if change is None:
        return {}
    session.flush()
    audit.record(session, actor, f"{kind_of(type(record))}.update", **_update_event(record, change))
    if actor.kind != "connection" and isinstance(record, SchoolClass):
        scim_index.mark_stale(session, record.tenant_id, "Group", record.id)
    return change.changes


def update_records(
    session: Session, actor: Actor, items: Sequence[tuple[Record, Mapping[str, Any]]]
) -> list[Changes]:
    """:func:`update_record` for many records of one kind at once (what an import changes):
    the same checks and changes, the changed columns written with one ``executemany`` per
    set of changed columns, the audit events with one more (issue 15). Returns each
    record's change set.

    :raises: the first error :func:`update_record` raises for a record (the caller rolls back).
    """
    tenants = _tenants_named(session, [fields for _, fields in items])
    with session.no_autoflush:  # written below, not one UPDATE per record
        planned = [
            _update_change(session, actor, record, fields, tenants=tenants)
            for record, fields in items
        ]
    by_columns: dict[tuple[str, ...], list[Any]] = {}
    for (record, _), change in zip(items, planned, strict=True):
        if change is not None and change.columns is not None:
            by_columns.setdefault(change.columns, []).append(record)
    for columns, records in by_columns.items():
        write_changes(session, records, columns)
    session.flush()  # a change beyond plain columns (a class's terms) the ORM writes
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for (record, _), change in zip(items, planned, strict=True):
        if change is not None:
            event = _update_event(record, change)
            by_kind.setdefault(kind_of(type(record)), []).append(event)
            if actor.kind != "connection" and isinstance(record, SchoolClass):
                scim_index.mark_stale(session, record.tenant_id, "Group", record.id)
    for kind, events in by_kind.items():
        audit.record_many(session, actor, f"{kind}.update", events)
    return [change.changes if change is not None else {} for change in planned]


def _tenants_named(session: Session, batch: Sequence[Mapping[str, Any]]) -> Tenants:
    """The tenants of the users, classes and schools a batch of changes names, one SELECT
    per kind: what ``values_for`` checks them against, read without loading a record (each
    re-pointed enrollment loaded its user in full, issue 15)."""
    return {
        model: tenants_of(session, model, [f.get(name) for f in batch])
        for name, model in REFERENCES
    }


def tenants_of(session: Session, model: Any, ids: Iterable[str | None]) -> dict[str, str]:
    """id -> tenant of the ``model`` records among ``ids``, one SELECT per 900 (what the
    checks of a batch compare with the actor's tenant, without loading a record)."""
    wanted = sorted({str(id_) for id_ in ids if id_})
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 900):
        query = select(model.id, model.tenant_id).where(model.id.in_(wanted[start : start + 900]))
        found.update((id_, tenant) for id_, tenant in session.execute(query))
    return found


@dataclass(frozen=True)
class _Update:
    """A checked change of a record (set on the object, not flushed)."""

    changes: Changes
    overridden: bool
    owner: Connection
    columns: tuple[str, ...] | None  # the table columns it sets; None: not only columns


def _update_change(
    session: Session,
    actor: Actor,
    record: Record,
    fields: Mapping[str, Any],
    override: bool = False,
    expected_version: int | None = None,
    tenants: Tenants | None = None,
) -> _Update | None:
    """Check and set the fields of ``record`` that differ (not flushed), or None when none
    do. :raises NotFound: :raises VersionMismatch: :raises Forbidden: (the SSO guard)"""
    if record.tenant_id != actor.tenant_id:
        raise NotFound("No such record.")
    if expected_version is not None and expected_version != record.version:
        raise VersionMismatch("The record was changed since you read it; reload and try again.")
    values = values_for(session, actor, type(record), fields, tenants)
    changes = diff(record, values)
    if not changes:
        return None
    owner = session.get(Connection, record.connection_id)
    assert owner is not None
    overridden = guard.check_change(actor, owner, changes, override=override)
    for name in changes:
        assign(record, name, values[name])
    record.updated_at = utcnow()
    return _Update(changes, overridden, owner, _set_columns(record, changes))


def _set_columns(record: SyncedRecord, changes: Changes) -> tuple[str, ...] | None:
    """The table columns :func:`_update_change` set on ``record``: the changed fields and
    ``updated_at`` (named, not found in each attribute's history: that inspection was a
    third of re-pointing an enrollment, issue 15); None for a class, whose terms and folded
    columns (``assign``) the ORM flush writes."""
    if isinstance(record, SchoolClass):
        return None
    names = sorted({*changes, "updated_at"})
    table = getattr(type(record), "__table__").c  # noqa: B009 (mypy: a mapped class)
    return tuple(names) if all(name in table for name in names) else changed_columns(record)


def _update_event(record: Record, change: _Update) -> dict[str, Any]:
    return {
        "target_kind": kind_of(type(record)),
        "target_id": record.id,
        "target_label": label(record),
        "changes": change.changes,
        "override": change.overridden,
        "detail": guard.override_warning(change.owner) if change.overridden else None,
    }


def _create(session: Session, actor: Actor, model: type[Record], values: dict[str, Any]) -> Record:
    record = new_record(actor, owning_connection(session, actor), model, values)
    if find_by_sourced_id(session, model, actor.tenant_id, record.sourced_id) is not None:
        raise Conflict(f"The sourcedId {record.sourced_id!r} is already used.", field="sourced_id")
    session.add(record)
    session.flush()
    audit.record(session, actor, f"{kind_of(model)}.create", **creation_event(record, values))
    return record


def new_record(
    actor: Actor, owner: Connection, model: type[Record], values: dict[str, Any]
) -> Record:
    """An unsaved record of ``model`` owned by ``owner`` (``values`` loses ``id`` and
    ``sourced_id``, which the record takes)."""
    record = model()
    record.id = values.pop("id", None) or new_record_id()
    record.tenant_id = actor.tenant_id
    record.connection_id = owner.id
    record.created_at = record.updated_at = utcnow()
    record.sourced_id = values.pop("sourced_id", None) or record.id
    for name, value in values.items():
        assign(record, name, value)
    return record


def creation_event(record: SyncedRecord, values: Mapping[str, Any]) -> dict[str, Any]:
    """The audit event of a created record (the keyword arguments of ``audit.record``)."""
    return row_creation_event(type(record), record.id, label(record), values)


def row_creation_event(
    model: type[SyncedRecord], id_: str, target_label: str, values: Mapping[str, Any]
) -> dict[str, Any]:
    """:func:`creation_event` of a record made in bulk, from its id and label."""
    return {
        "target_kind": kind_of(model),
        "target_id": id_,
        "target_label": target_label,
        "changes": {k: [None, plain(v)] for k, v in values.items() if v not in (None, "", [])},
    }


def _ensure_admin(actor: Actor) -> None:
    if actor.kind in ("system", "connection") or actor.is_district_admin:
        return
    raise NotAllowed("Only district admins and connections create orgs, sessions and courses.")


def _ensure_may_create_at(actor: Actor, school_id: str) -> None:
    if actor.kind in ("system", "connection") or actor.is_district_admin:
        return
    if actor.role == "school_admin" and school_id in actor.school_ids:
        return
    raise NotAllowed("You can create classes only at your own schools.")
