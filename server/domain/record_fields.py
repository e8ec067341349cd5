"""The fields of roster records (orgs, academic sessions, courses, classes, enrollments) as
every surface writes them: which fields each kind takes, their checks and normal forms (each
reference checked in the caller's tenant), and the change sets updates and audit events carry.
:mod:`server.domain.roster` applies them (guard, version, audit).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from server.db import (
    AcademicSession,
    Course,
    Enrollment,
    Org,
    SchoolClass,
    User,
    fold,
)
from server.db.roster import SyncedRecord
from server.domain import provider_attributes
from server.domain.actors import Actor
from server.domain.vocabulary import (
    CLASS_TYPES,
    ENROLLMENT_ROLES,
    ORG_TYPES,
    SESSION_TYPES,
    check_choice,
    check_grade,
    check_texts,
    parse_date,
)
from server.errors import (
    NotFound,
)

Changes = dict[str, list[Any]]


# id -> tenant of the records a batch of changes names, per model, read in bulk (issue 15)
Tenants = Mapping[type, Mapping[str, str]]


def values_for(
    session: Session,
    actor: Actor,
    model: type,
    fields: Mapping[str, Any],
    tenants: Tenants | None = None,
) -> dict[str, Any]:
    """A record's checked values; ``tenants``: the tenants of the records ``fields`` names,
    read beforehand (else each is read with ``session.get``)."""
    if model is Org:
        return org_values(fields)
    if model is AcademicSession:
        return session_values(fields)
    if model is Course:
        return course_values(fields)
    if model is SchoolClass:
        return class_values(session, actor, fields, tenants)
    return enrollment_values(session, actor, fields, tenants)


def org_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    values = _pick(fields, ("name", "identifier", "parent_id", "sourced_id", "extra"))
    if fields.get("type"):
        values["type"] = check_choice(fields["type"], ORG_TYPES, "type")
    return values


def session_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    values = _pick(fields, ("title", "school_year", "parent_id", "org_id", "sourced_id", "extra"))
    if fields.get("type"):
        values["type"] = check_choice(fields["type"], SESSION_TYPES, "type")
    for name in ("start_date", "end_date"):
        if name in fields:
            values[name] = parse_date(fields[name], name)
    return values


def course_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    values = _pick(
        fields,
        ("title", "course_code", "org_id", "school_year_id", "sourced_id", "subjects", "extra"),
    )
    if "grades" in fields:
        values["grades"] = sorted({check_grade(g) for g in fields["grades"] or []})
    return values


def class_values(
    session: Session, actor: Actor, fields: Mapping[str, Any], tenants: Tenants | None = None
) -> dict[str, Any]:
    values = _pick(
        fields,
        (
            "id",
            "title",
            "class_code",
            "location",
            "external_id",
            "school_id",
            "course_id",
            "sourced_id",
            "subjects",
            "periods",
            "extra",
        ),
    )
    if isinstance(values.get("extra"), dict):
        values["extra"] = provider_attributes.minimise_extra(
            session, actor.tenant_id, values["extra"], "Group"
        )
    if fields.get("class_type"):
        values["class_type"] = check_choice(fields["class_type"], CLASS_TYPES, "class_type")
    if "grades" in fields:
        values["grades"] = sorted({check_grade(g) for g in fields["grades"] or []})
    school = values.get("school_id")
    if school and _tenant_of(session, tenants, Org, school) != actor.tenant_id:
        raise NotFound(f"No school with id {values['school_id']!r}.", field="school_id")
    if "term_ids" in fields:
        values["terms"] = _terms(session, actor, fields["term_ids"] or [], tenants)
    return values


def _terms(session: Session, actor: Actor, ids: list[str], tenants: Tenants | None) -> list[Any]:
    """A class's terms, each checked in the tenant: the ``AcademicSession`` records, or their
    ids when ``tenants`` holds the terms' tenants (a bulk create writes ``class_terms`` rows).

    :raises NotFound: a term of another tenant, or none."""
    if tenants is not None and AcademicSession in tenants:
        if any(tenants[AcademicSession].get(term) != actor.tenant_id for term in ids):
            raise NotFound("A term of the class does not exist.", field="term_ids")
        return list(ids)
    terms = [session.get(AcademicSession, term) for term in ids]
    if any(t is None or t.tenant_id != actor.tenant_id for t in terms):
        raise NotFound("A term of the class does not exist.", field="term_ids")
    return terms


def enrollment_values(
    session: Session, actor: Actor, fields: Mapping[str, Any], tenants: Tenants | None = None
) -> dict[str, Any]:
    """An enrollment's values; ``user_id``/``class_id``/``school_id`` re-point it (OneRoster
    re-uses an enrollment's sourcedId when a student moves), each checked in the tenant."""
    values = _pick(fields, ("primary", "extra"))
    for name, model in REFERENCES:
        if not fields.get(name):
            continue
        if _tenant_of(session, tenants, model, fields[name]) != actor.tenant_id:
            raise NotFound(f"No record with id {fields[name]!r}.", field=name)
        values[name] = fields[name]
    for name in ("begin_date", "end_date"):
        if name in fields:
            values[name] = parse_date(fields[name], name)
    if fields.get("role"):
        values["role"] = check_choice(fields["role"], ENROLLMENT_ROLES, "role")
    return values


# the records an enrollment's fields name (also what a class names: its school)
REFERENCES: tuple[tuple[str, Any], ...] = (
    ("user_id", User),
    ("class_id", SchoolClass),
    ("school_id", Org),
)


def _tenant_of(session: Session, tenants: Tenants | None, model: type, id_: str) -> str | None:
    """The tenant of the ``model`` record with ``id_`` (None: no such record)."""
    if tenants is not None and model in tenants:
        return tenants[model].get(id_)
    found: Any = session.get(model, id_)
    return found.tenant_id if found is not None else None


def _pick(fields: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    check_texts({name: fields[name] for name in names if isinstance(fields.get(name), str)})
    values: dict[str, Any] = {}
    for name in names:
        if name in fields:
            value = fields[name]
            values[name] = value.strip() if isinstance(value, str) else value
    return values


def diff(record: SyncedRecord, values: dict[str, Any]) -> Changes:
    changes: Changes = {}
    for name, new in values.items():
        old = getattr(record, name, None)
        if name == "terms":
            old, new = sorted(t.id for t in old or ()), sorted(t.id for t in new)
        if old != new:
            changes[name] = [plain(old), plain(new)]
    return changes


def assign(record: SyncedRecord, name: str, value: Any) -> None:
    setattr(record, name, value)
    for column, folded_value in folded(type(record), name, value).items():
        setattr(record, column, folded_value)


def folded(model: type, name: str, value: Any) -> dict[str, Any]:
    """The case-folded search columns setting ``name`` sets too (a class's title and
    externalId), for a record or a row written in bulk."""
    if model is SchoolClass and name == "title":
        return {"title_folded": fold(value) or ""}
    if model is SchoolClass and name == "external_id":
        return {"external_id_folded": fold(value)}
    return {}


_PLAIN = frozenset((str, int, float, bool, type(None)))


def plain(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value  # most values: no isinstance against a mapped class (issue 15)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, AcademicSession):
        return value.id
    return value


def label(record: SyncedRecord | Mapping[str, Any]) -> str:
    """How the audit log names a record (or the row of one made in bulk)."""
    if isinstance(record, Mapping):
        return str(record.get("name") or record.get("title") or record["sourced_id"])
    return str(getattr(record, "name", None) or getattr(record, "title", None) or record.sourced_id)


_KIND: dict[type[SyncedRecord], str] = {
    Org: "org",
    AcademicSession: "academic_session",
    Course: "course",
    SchoolClass: "class",
    Enrollment: "enrollment",
}


def kind_of(model: type[SyncedRecord]) -> str:
    """The kind of record ``model`` holds, as audit actions name it (``org``, ``class``…)."""
    return _KIND[model]
