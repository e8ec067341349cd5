"""The OneRoster Rostering read endpoints (1.1 REST binding §4, 1.2 Rostering Service §4).

Collections (``/users``, ``/schools``…), single objects (``/users/{sourcedId}``) and the nested
reads (``/classes/{id}/students``…) are described as data here; :func:`read_collection` and
:func:`read_object` run them through :mod:`server.domain.roster_reads`, which applies the tenant,
the client's schools and "never show deleted records" in SQL.

Scopes (1.2 OpenAPI ``security``; 1.1 uses the same names under ``/v1p1/``): flat collections
and single objects need ``roster-core.readonly`` or ``roster.readonly``, nested reads need
``roster.readonly``, demographics need ``roster-demographics.readonly``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, exists, or_
from sqlalchemy.orm import Session

from oneroster.errors import bad_selection, not_found
from oneroster.fields import filter_condition, sort_column
from oneroster.query import CollectionQuery
from oneroster.render import KEYS, References, render, select_fields
from server.db import (
    AcademicSession,
    Course,
    Enrollment,
    Org,
    RecordStatus,
    SchoolClass,
    User,
    UserRole,
    class_terms,
)
from server.domain import roster_reads
from server.domain.roster_reads import ReadScope

PREFIXES = {"v1p1": "/ims/oneroster/v1p1", "v1p2": "/ims/oneroster/rostering/v1p2"}
CORE = "roster-core.readonly"
FULL = "roster.readonly"
DEMOGRAPHICS = "roster-demographics.readonly"
SCOPE_PREFIX = {
    "v1p1": "https://purl.imsglobal.org/spec/or/v1p1/scope/",
    "v1p2": "https://purl.imsglobal.org/spec/or/v1p2/scope/",
}

Where = Callable[[], list[ColumnElement[bool]]]


def _none() -> list[ColumnElement[bool]]:
    return []


def _with_role(role: str) -> Where:
    def where() -> list[ColumnElement[bool]]:
        return [
            or_(
                User.primary_role == role,
                exists().where(UserRole.user_id == User.id, UserRole.role == role),
            )
        ]

    return where


def _session_type(kind: str) -> Where:
    return lambda: [AcademicSession.type == kind]


ENVELOPES = {
    "org": "orgs",
    "academicSession": "academicSessions",
    "course": "courses",
    "class": "classes",
    "user": "users",
    "enrollment": "enrollments",
    "demographics": "demographics",
}


@dataclass(frozen=True)
class Collection:
    """A flat collection: its URL name, the object kind it holds, the singular envelope name,
    the model and the condition that narrows the model (``schools``: orgs of type school).

    Envelopes are named after the kind, not the URL: ``/students`` and
    ``/classes/{id}/students`` answer ``{"users": [...]}``, ``/terms`` answers
    ``{"academicSessions": [...]}`` (``UserSetDType``, ``AcademicSessionSetDType``).
    """

    name: str
    kind: str
    single: str
    model: type[Any]
    where: Where = _none
    scopes: tuple[str, ...] = (CORE, FULL)

    @property
    def envelope(self) -> str:
        return ENVELOPES[self.kind]


COLLECTIONS: dict[str, Collection] = {
    c.name: c
    for c in (
        Collection("orgs", "org", "org", Org),
        Collection("schools", "org", "org", Org, lambda: [Org.type == "school"]),
        Collection("academicSessions", "academicSession", "academicSession", AcademicSession),
        Collection(
            "terms", "academicSession", "academicSession", AcademicSession, _session_type("term")
        ),
        Collection(
            "gradingPeriods",
            "academicSession",
            "academicSession",
            AcademicSession,
            _session_type("gradingPeriod"),
        ),
        Collection("classes", "class", "class", SchoolClass),
        Collection("courses", "course", "course", Course),
        Collection("users", "user", "user", User),
        Collection("students", "user", "user", User, _with_role("student")),
        Collection("teachers", "user", "user", User, _with_role("teacher")),
        Collection("enrollments", "enrollment", "enrollment", Enrollment),
        Collection("demographics", "demographics", "demographics", User, scopes=(DEMOGRAPHICS,)),
    )
}

Link = Callable[[Any], list[ColumnElement[bool]]]


def _active_enrollment(role: str | None, *, user_id: Any, class_id: Any) -> ColumnElement[bool]:
    conditions = [
        Enrollment.user_id == user_id,
        Enrollment.class_id == class_id,
        Enrollment.status == RecordStatus.ACTIVE,
    ]
    if role:
        conditions.append(Enrollment.role == role)
    return exists().where(*conditions)


def _members_of_class(role: str) -> Link:
    return lambda klass: [_active_enrollment(role, user_id=User.id, class_id=klass.id)]


def _classes_of_user(role: str | None) -> Link:
    return lambda user: [_active_enrollment(role, user_id=user.id, class_id=SchoolClass.id)]


def _people_at_school(role: str) -> Link:
    def link(school: Org) -> list[ColumnElement[bool]]:
        return [
            or_(
                exists().where(
                    UserRole.user_id == User.id,
                    UserRole.org_id == school.id,
                    UserRole.role == role,
                ),
                exists().where(
                    Enrollment.user_id == User.id,
                    Enrollment.school_id == school.id,
                    Enrollment.role == role,
                    Enrollment.status == RecordStatus.ACTIVE,
                ),
            )
        ]

    return link


def _courses_at_school(school: Org) -> list[ColumnElement[bool]]:
    return [
        or_(
            Course.org_id == school.id,
            exists().where(SchoolClass.course_id == Course.id, SchoolClass.school_id == school.id),
        )
    ]


def _terms_at_school(school: Org) -> list[ColumnElement[bool]]:
    return [
        or_(
            AcademicSession.org_id == school.id,
            exists().where(
                class_terms.c.session_id == AcademicSession.id,
                SchoolClass.id == class_terms.c.class_id,
                SchoolClass.school_id == school.id,
            ),
        )
    ]


def _classes_in_term(term: AcademicSession) -> list[ColumnElement[bool]]:
    return [
        exists().where(
            class_terms.c.class_id == SchoolClass.id, class_terms.c.session_id == term.id
        )
    ]


@dataclass(frozen=True)
class Nested:
    """A nested read: ``/{parent}/{id}/{child}``, the child rows linked to the parent record."""

    parent: str
    child: str
    link: Link


NESTED: tuple[Nested, ...] = (
    Nested("schools", "classes", lambda school: [SchoolClass.school_id == school.id]),
    Nested("schools", "courses", _courses_at_school),
    Nested("schools", "enrollments", lambda school: [Enrollment.school_id == school.id]),
    Nested("schools", "students", _people_at_school("student")),
    Nested("schools", "teachers", _people_at_school("teacher")),
    Nested("schools", "terms", _terms_at_school),
    Nested("classes", "students", _members_of_class("student")),
    Nested("classes", "teachers", _members_of_class("teacher")),
    Nested("courses", "classes", lambda course: [SchoolClass.course_id == course.id]),
    Nested("terms", "classes", _classes_in_term),
    Nested("terms", "gradingPeriods", lambda term: [AcademicSession.parent_id == term.id]),
    Nested("students", "classes", _classes_of_user("student")),
    Nested("teachers", "classes", _classes_of_user("teacher")),
    Nested("users", "classes", _classes_of_user(None)),
)
SCHOOL_CLASS_NESTED: dict[str, Link] = {
    "enrollments": lambda klass: [Enrollment.class_id == klass.id],
    "students": _members_of_class("student"),
    "teachers": _members_of_class("teacher"),
}


@dataclass(frozen=True)
class ListResult:
    """A page ready to send: the envelope body and what the paging headers need."""

    body: dict[str, Any]
    total: int
    offset: int
    limit: int


def reader_scope(grant: Any, version: str) -> ReadScope:
    """What an authenticated reading client may see (``grant``: an ``AccessGrant``)."""
    demographics = SCOPE_PREFIX[version] + "roster-demographics.readonly"
    return ReadScope(
        grant.tenant_id,
        tuple(grant.school_ids),
        demographics=demographics in grant.scopes,
        client_id=grant.client_id,
        client_name=grant.client_name,
    )


def required_scopes(version: str, scopes: tuple[str, ...]) -> frozenset[str]:
    return frozenset(SCOPE_PREFIX[version] + s for s in scopes)


def check_fields(kind: str, version: str, fields: tuple[str, ...]) -> None:
    """:raises StatusError: (400 ``invalid_selection_field``) a field the object does not have."""
    known = KEYS[(kind, version)]
    unknown = [name for name in fields if name not in known]
    if unknown:
        raise bad_selection(f"Unknown field(s) in 'fields': {', '.join(unknown)}.")


def find_parent(session: Session, scope: ReadScope, collection: Collection, sourced_id: str) -> Any:
    """The visible record behind ``/{collection}/{sourcedId}``. :raises StatusError: 404"""
    if "\x00" in sourced_id:
        raise not_found("A sourcedId cannot hold a NUL character.")
    record = roster_reads.read_one(session, scope, collection.model, sourced_id, collection.where())
    if record is None:
        raise not_found(f"No {collection.single} with sourcedId {sourced_id!r}.")
    return record


def read_object(
    session: Session,
    scope: ReadScope,
    version: str,
    base_url: str,
    collection: Collection,
    sourced_id: str,
    fields: tuple[str, ...],
) -> dict[str, Any]:
    """``GET /{collection}/{sourcedId}``: ``{"user": {...}}``."""
    check_fields(collection.kind, version, fields)
    record = find_parent(session, scope, collection, sourced_id)
    refs = load_references(session, scope, collection.kind, [record], base_url)
    obj = _minimised(scope, collection.kind, render(collection.kind, version, record, refs))
    return {collection.single: select_fields(obj, fields)}


def read_collection(
    session: Session,
    scope: ReadScope,
    version: str,
    base_url: str,
    collection: Collection,
    query: CollectionQuery,
    link: list[ColumnElement[bool]] | None = None,
) -> ListResult:
    """``GET /{collection}`` (or a nested read, with ``link``): ``{"users": [...]}``."""
    kind = collection.kind
    check_fields(kind, version, query.fields)
    where = [*collection.where(), *(link or [])]
    condition = filter_condition(kind, query.filter)
    if condition is not None:
        where.append(condition)
    model = collection.model
    order: list[Any] = []
    if query.sort and query.sort != "sourcedId":
        column = sort_column(kind, query.sort)
        # Missing values sort as the largest, on SQLite as on PostgreSQL (its default).
        order.append(column.desc().nulls_first() if query.descending else column.asc().nulls_last())
    order.append(model.sourced_id.desc() if query.descending else model.sourced_id.asc())
    keyset = None if len(order) > 1 else query.descending
    page = roster_reads.read_page(
        session,
        scope,
        model,
        where,
        order,
        limit=query.limit,
        offset=query.offset,
        by_sourced_id=keyset,
    )
    refs = load_references(session, scope, kind, page.items, base_url)
    objects = [
        select_fields(_minimised(scope, kind, render(kind, version, r, refs)), query.fields)
        for r in page.items
    ]
    return ListResult({collection.envelope: objects}, page.total, query.offset, query.limit)


def _minimised(scope: ReadScope, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    if "metadata" in obj and not roster_reads.may_read_metadata(scope, kind):
        return {key: value for key, value in obj.items() if key != "metadata"}
    return obj


def load_references(
    session: Session, scope: ReadScope, kind: str, records: list[Any], base_url: str
) -> References:
    """Look up, in a few queries per page, the sourcedIds the records refer to."""
    refs = References(base_url)
    if kind == "org":
        refs.orgs = roster_reads.sourced_ids(session, Org, (r.parent_id for r in records))
        refs.org_children = roster_reads.children(session, scope, Org, (r.id for r in records))
    elif kind == "academicSession":
        refs.sessions = roster_reads.sourced_ids(
            session, AcademicSession, (r.parent_id for r in records)
        )
        refs.session_children = roster_reads.children(
            session, scope, AcademicSession, (r.id for r in records)
        )
    elif kind == "course":
        refs.orgs = roster_reads.sourced_ids(session, Org, (r.org_id for r in records))
        refs.sessions = roster_reads.sourced_ids(
            session, AcademicSession, (r.school_year_id for r in records)
        )
    elif kind == "class":
        refs.orgs = roster_reads.sourced_ids(session, Org, (r.school_id for r in records))
        refs.courses = roster_reads.sourced_ids(session, Course, (r.course_id for r in records))
    elif kind == "enrollment":
        refs.orgs = roster_reads.sourced_ids(session, Org, (r.school_id for r in records))
        refs.users = roster_reads.sourced_ids(session, User, (r.user_id for r in records))
        refs.classes = roster_reads.sourced_ids(session, SchoolClass, (r.class_id for r in records))
    elif kind == "user":
        refs.enrolled_at = roster_reads.enrolled_schools(
            session, [r.id for r in records if not r.roles]
        )
        org_ids = [role.org_id for r in records for role in r.roles]
        org_ids += [school for pairs in refs.enrolled_at.values() for school, _ in pairs]
        org_ids += [r.primary_org_id for r in records if r.primary_org_id]
        refs.orgs = roster_reads.sourced_ids(session, Org, org_ids)
    return refs
