"""Record-by-record pushes over REST: ``PUT`` upserts, ``DELETE`` marks ``tobedeleted``.

**An extension, not part of OneRoster 1.2 Rostering** (which defines reads only). It serves
hubs that push one record at a time, with the request shapes of the 1.2 objects::

    PUT /ims/oneroster/rostering/v1p2/users/u-17      {"user": {...UserDType...}}
    DELETE /ims/oneroster/rostering/v1p2/users/u-17

for ``users``, ``orgs``, ``academicSessions``, ``courses``, ``classes`` and ``enrollments``.
The caller is a connection (its bearer token); the records it creates are owned by it, and the
same domain rules as every other source apply: the SSO guard, ownership (``R109``), audit,
idempotence (the same PUT twice changes nothing). A PUT answers 201 with the object when it
created the record and 200 when it updated (or found unchanged) an existing one; DELETE answers
204. References (``org``, ``school``, ``course``, ``terms``, ``user``, ``class``…) name records
by sourcedId and must exist (``R108``, 422).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from oneroster.errors import INVALID_DATA, StatusError, not_found
from oneroster.read_endpoints import COLLECTIONS, load_references
from oneroster.render import render
from server.db import (
    AcademicSession,
    Course,
    Enrollment,
    Org,
    RecordStatus,
    SchoolClass,
    User,
)
from server.domain import completeness, roster, roster_status, roster_views, user_adoption, users
from server.domain.actors import Actor
from server.domain.roster_reads import ReadScope
from server.domain.users import RoleAssignment
from server.domain.vocabulary import ENROLLMENT_ROLES_1P2, parse_date

MAX_TEXT = 255  # the width of our text columns
WRITABLE = ("users", "orgs", "academicSessions", "courses", "classes", "enrollments")
_MODELS: dict[str, type[Any]] = {
    "users": User,
    "orgs": Org,
    "academicSessions": AcademicSession,
    "courses": Course,
    "classes": SchoolClass,
    "enrollments": Enrollment,
}
_USER_EXTRA = (
    "userMasterIdentifier",
    "userIds",
    "preferredMiddleName",
    "pronouns",
    "userProfiles",
    "sms",
    "phone",
    "metadata",
)


@dataclass(frozen=True)
class PushResult:
    created: bool
    body: dict[str, Any]


def invalid(description: str) -> StatusError:
    return StatusError(422, INVALID_DATA, description)


def upsert(
    session: Session,
    actor: Actor,
    collection_name: str,
    sourced_id: str,
    payload: Any,
    base_url: str,
) -> PushResult:
    """Create or update the record ``sourced_id`` of a collection from a 1.2 object.

    :raises StatusError: a malformed body (422 ``invaliddata``).
    :raises DomainError: what the domain refuses (guard, ownership, bad values).
    """
    collection = COLLECTIONS[collection_name]
    if "\x00" in sourced_id:
        raise invalid("A sourcedId cannot hold a NUL character.")
    obj = _object(payload, collection.single)
    if obj.get("sourcedId", sourced_id) != sourced_id:
        raise invalid("The sourcedId in the body differs from the one in the URL.")
    model = _MODELS[collection_name]
    tenant = actor.tenant_id
    existing = (
        users.find_by_sourced_id(session, tenant, sourced_id)
        if model is User
        else roster_views.find_by_sourced_id(session, model, tenant, sourced_id)
    )
    record, created = _write(session, actor, model, existing, sourced_id, obj)
    if model is User and completeness.incomplete_ids(session, [record.id]):
        # Without roles the connection's default role and school apply; a user that still has
        # none would not be served, so the push is refused (rolled back) rather than accepted.
        raise invalid(
            "A user needs roles: [{roleType, role, org}], or the connection a default role and "
            "school (rollcall connection set NAME --default-role ROLE --default-school ID)."
        )
    _apply_status(session, actor, record, obj.get("status"))
    refs = load_references(session, ReadScope(tenant), collection.kind, [record], base_url)
    return PushResult(created, {collection.single: render(collection.kind, "v1p2", record, refs)})


def mark_tobedeleted(session: Session, actor: Actor, collection_name: str, sourced_id: str) -> None:
    """Deactivate a record (``status: tobedeleted``); its data stays.

    :raises StatusError: 404 when the record does not exist.
    """
    model = _MODELS[collection_name]
    if model is User:
        user = users.find_by_sourced_id(session, actor.tenant_id, sourced_id)
        if user is None or user.status == RecordStatus.DELETED:
            raise not_found(f"No user with sourcedId {sourced_id!r}.")
        users.deactivate_user(session, actor, user, reason="DELETE over OneRoster REST.")
        return
    record = roster_views.find_by_sourced_id(session, model, actor.tenant_id, sourced_id)
    if record is None or record.status == RecordStatus.DELETED:
        raise not_found(f"No {COLLECTIONS[collection_name].single} with sourcedId {sourced_id!r}.")
    roster_status.set_status(session, actor, record, RecordStatus.INACTIVE)


def _object(payload: Any, single: str) -> Mapping[str, Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get(single), dict):
        raise invalid(f'The body must be a JSON object {{"{single}": {{...}}}}.')
    found: Mapping[str, Any] = payload[single]
    return found


def _write(
    session: Session,
    actor: Actor,
    model: type[Any],
    existing: Any,
    sourced_id: str,
    obj: Mapping[str, Any],
) -> tuple[Any, bool]:
    tenant = actor.tenant_id
    if model is User:
        fields = _user_fields(session, tenant, obj, existing)
        if existing is None:
            existing = user_adoption.adopt_matching(session, actor, fields)
            if existing is None:
                return users.create_user(session, actor, {**fields, "sourced_id": sourced_id}), True
            fields = {**fields, "sourced_id": sourced_id}
        users.update_user(session, actor, existing, fields)
        return existing, False
    if model is Enrollment:
        return _enrollment(session, actor, existing, sourced_id, obj)
    fields = _roster_fields(session, tenant, model, obj)
    if existing is None:
        create = {
            Org: roster.create_org,
            AcademicSession: roster.create_academic_session,
            Course: roster.create_course,
            SchoolClass: roster.create_class,
        }[model]
        return create(session, actor, {**fields, "sourced_id": sourced_id}), True
    roster.update_record(session, actor, existing, fields)
    return existing, False


def _apply_status(session: Session, actor: Actor, record: Any, status: Any) -> None:
    if status not in ("active", "tobedeleted"):
        if status is not None:
            raise invalid("status must be 'active' or 'tobedeleted'.")
        status = "active" if record.status == RecordStatus.DELETED else None
    if status is None:
        return
    wanted = RecordStatus.ACTIVE if status == "active" else RecordStatus.INACTIVE
    if record.status == wanted:
        return
    if isinstance(record, User):
        if wanted == RecordStatus.ACTIVE:
            users.reactivate_user(session, actor, record, reason="PUT over OneRoster REST.")
        else:
            users.deactivate_user(session, actor, record, reason="PUT over OneRoster REST.")
        return
    roster_status.set_status(session, actor, record, wanted)


def _find(session: Session, tenant: str, model: type, value: Any, name: str) -> Any:
    """The record a ``{"sourcedId": ...}`` reference names (None for no reference)."""
    if value is None:
        return None
    sid = value.get("sourcedId") if isinstance(value, dict) else None
    if not isinstance(sid, str) or not sid:
        raise invalid(f"{name} must be a reference with a sourcedId.")
    if model is User:
        found: Any = users.find_by_sourced_id(session, tenant, sid)
    else:
        found = roster_views.find_by_sourced_id(session, model, tenant, sid)
    if found is None or found.status == RecordStatus.DELETED:
        raise invalid(f"R108: {name} refers to {sid!r}, which does not exist.")
    return found


def _reference(session: Session, tenant: str, model: type, value: Any, name: str) -> str | None:
    """Our id of the record a reference names (None for no reference)."""
    found = _find(session, tenant, model, value, name)
    return found.id if found is not None else None


def _school_year(obj: Mapping[str, Any]) -> str | None:
    year = _text(obj, "schoolYear")
    if year and not (len(year) == 4 and year.isdigit()):
        raise invalid("schoolYear is a year, YYYY.")
    return year or None


def _term(session: Session, tenant: str, value: Any) -> str:
    term_id = _reference(session, tenant, AcademicSession, value, "terms")
    if term_id is None:
        raise invalid("terms must be references with a sourcedId.")
    return term_id


def _text(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid(f"{name} must be a string.")
    if value is not None and len(value) > MAX_TEXT:
        raise invalid(f"{name} is longer than {MAX_TEXT} characters.")
    if value is not None and "\x00" in value:
        raise invalid(f"{name} cannot hold a NUL character.")
    return value


def _strings(obj: Mapping[str, Any], name: str) -> list[str]:
    value = obj.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(f"{name} must be a list of strings.")
    if any(len(v) > MAX_TEXT or "\x00" in v for v in value):
        raise invalid(f"An entry of {name} is too long or holds a NUL character.")
    return value


def _user_fields(
    session: Session, tenant: str, obj: Mapping[str, Any], existing: User | None
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "given_name": _text(obj, "givenName") or "",
        "family_name": _text(obj, "familyName") or "",
        "middle_name": _text(obj, "middleName"),
        "preferred_given_name": _text(obj, "preferredFirstName"),
        "preferred_family_name": _text(obj, "preferredLastName"),
        "email": _text(obj, "email"),
        "identifier": _text(obj, "identifier"),
        "grades": _strings(obj, "grades"),
    }
    if obj.get("username"):
        fields["username"] = _text(obj, "username")
    roles = obj.get("roles") or []
    if not isinstance(roles, list):
        raise invalid("roles must be a list: [{roleType, role, org}].")
    assignments = []
    for role in roles:
        if not isinstance(role, dict) or not isinstance(role.get("role"), str):
            raise invalid("Each role needs roleType, role and org.")
        org_id = _reference(session, tenant, Org, role.get("org"), "roles.org")
        if org_id is None:
            raise invalid("Each role needs an org.")
        role_type = role.get("roleType") or "primary"
        if role_type not in ("primary", "secondary"):
            raise invalid("roleType is 'primary' or 'secondary'.")
        assignments.append(RoleAssignment(org_id, role["role"].removeprefix("ext:"), role_type))
    fields["roles"] = assignments
    # UserDType.primaryOrg as pushed; without one, the org of a primary role (users.py)
    fields["primary_org_id"] = _reference(session, tenant, Org, obj.get("primaryOrg"), "primaryOrg")
    # A PUT carries the whole object: attributes it leaves out are dropped, not kept from an
    # earlier push (issue 12, point 5); what other files added (demographics) stays.
    kept = existing.extra if existing is not None else {}
    extra = {key: value for key, value in kept.items() if key not in _USER_EXTRA}
    for name in _USER_EXTRA:
        if name in obj:
            if "\\u0000" in json.dumps(obj[name]):
                raise invalid(f"{name} cannot hold a NUL character.")
            extra[name] = obj[name]
    fields["extra"] = extra
    return fields


_REQUIRED: dict[type[Any], tuple[str, ...]] = {
    Org: ("name",),
    AcademicSession: ("title",),
    Course: ("title",),
    SchoolClass: ("title", "school"),
}


def _roster_fields(
    session: Session, tenant: str, model: type[Any], obj: Mapping[str, Any]
) -> dict[str, Any]:
    missing = [name for name in _REQUIRED[model] if not obj.get(name)]
    if missing:
        raise invalid(f"R101: {', '.join(missing)} is required.")
    if model is Org:
        return {
            "name": _text(obj, "name"),
            "type": _text(obj, "type"),
            "identifier": _text(obj, "identifier"),
            "parent_id": _reference(session, tenant, Org, obj.get("parent"), "parent"),
        }
    if model is AcademicSession:
        return {
            "title": _text(obj, "title"),
            "type": _text(obj, "type"),
            "start_date": _text(obj, "startDate"),
            "end_date": _text(obj, "endDate"),
            "school_year": _school_year(obj),
            "parent_id": _reference(session, tenant, AcademicSession, obj.get("parent"), "parent"),
        }
    if model is Course:
        return {
            "title": _text(obj, "title"),
            "course_code": _text(obj, "courseCode"),
            "grades": _strings(obj, "grades"),
            "subjects": _strings(obj, "subjects"),
            "org_id": _reference(session, tenant, Org, obj.get("org"), "org"),
            "school_year_id": _reference(
                session, tenant, AcademicSession, obj.get("schoolYear"), "schoolYear"
            ),
        }
    terms = obj.get("terms") or []
    if not isinstance(terms, list):
        raise invalid("terms must be a list of references.")
    return {
        "title": _text(obj, "title"),
        "class_code": _text(obj, "classCode"),
        "class_type": _text(obj, "classType"),
        "location": _text(obj, "location"),
        "grades": _strings(obj, "grades"),
        "subjects": _strings(obj, "subjects"),
        "periods": _strings(obj, "periods"),
        "school_id": _reference(session, tenant, Org, obj.get("school"), "school"),
        "course_id": _reference(session, tenant, Course, obj.get("course"), "course"),
        "term_ids": [_term(session, tenant, t) for t in terms],
    }


def _enrollment_role(obj: Mapping[str, Any]) -> str:
    """A 1.2 enrollment role (:data:`ENROLLMENT_ROLES_1P2`), or an ``ext:`` one we know."""
    role = _text(obj, "role") or "student"
    if role not in ENROLLMENT_ROLES_1P2 and not role.startswith("ext:"):
        raise invalid(
            f"role {role!r} is not a OneRoster 1.2 enrollment role "
            f"({', '.join(ENROLLMENT_ROLES_1P2)}; 1.1's aide is gone: send a helping adult as "
            "a teacher with primary false, or as ext:aide)."
        )
    return role.removeprefix("ext:")


def _enrollment(
    session: Session,
    actor: Actor,
    existing: Enrollment | None,
    sourced_id: str,
    obj: Mapping[str, Any],
) -> tuple[Enrollment, bool]:
    tenant = actor.tenant_id
    user = _find(session, tenant, User, obj.get("user"), "user")
    klass = _find(session, tenant, SchoolClass, obj.get("class"), "class")
    if user is None or klass is None:
        raise invalid("An enrollment needs a user and a class.")
    role = _enrollment_role(obj)
    primary = obj.get("primary") in (True, "true")
    if existing is not None:
        if existing.user_id != user.id or existing.class_id != klass.id:
            raise invalid("An enrollment's user and class cannot change; send a new sourcedId.")
        # Dates are parsed here: roster.update_record passes enrollment dates through as given.
        fields = {
            "role": role,
            "primary": primary,
            "begin_date": parse_date(_text(obj, "beginDate"), "beginDate"),
            "end_date": parse_date(_text(obj, "endDate"), "endDate"),
        }
        roster.update_record(session, actor, existing, fields)
        return existing, False
    enrollment = roster.enroll(
        session,
        actor,
        user,
        klass,
        role=role,
        primary=primary,
        sourced_id=sourced_id,
        begin_date=_text(obj, "beginDate"),
        end_date=_text(obj, "endDate"),
    )
    return enrollment, enrollment.sourced_id == sourced_id
