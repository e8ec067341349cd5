"""SCIM resources (RFC 7643) to Rollcall records and back.

Users: ``userName``, ``externalId``, ``name``, the primary email and ``active`` are columns;
the education extension gives roles per school (by org sourcedId), grades, the SIS identifier,
the birth date and the sourcedId; core ``roles``/``userType`` give the OneRoster role when the
extension does not. The resource's JSON is handed to the domain in ``extra["scim"]``, which keeps
of it only what Rollcall uses and what the district's allow-list names
(:mod:`server.domain.provider_attributes`); a read returns what was kept.

Groups: a group carrying the education Group extension is a class (title, school, course,
terms, class code, class type) whose members are its enrollments; any other group is a plain
group whose members are users.
"""

from __future__ import annotations

from typing import Any

from scim2_models import Resource
from sqlalchemy.orm import Session

from scim.schemas import EDUCATION_GROUP, EDUCATION_USER
from server.db import AcademicSession, Course, Group, Org, SchoolClass, User
from server.domain import groups, roster, roster_views, user_views
from server.domain.actors import Actor
from server.domain.users import RoleAssignment
from server.domain.vocabulary import ENROLLMENT_ROLES, ROLES
from server.errors import InvalidValue

# ``active`` is the user's status column (every answer shows the column's value): kept in the
# document too, a PATCH of ``active`` also rewrote the document and audited that (issue 15).
DROPPED = {"id", "meta", "password", "groups", "active"}
CORE_USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


def document(resource: Resource[Any]) -> dict[str, Any]:
    """The resource's JSON as stored in ``extra["scim"]`` (never the id, meta, password or
    ``active``)."""
    return resource.model_dump(mode="json", by_alias=True, exclude=DROPPED, exclude_none=True)


# Users ------------------------------------------------------------------------------------


def user_json(user: user_views.UserView) -> dict[str, Any]:
    """The SCIM JSON of a user (without ``id`` and ``meta``): the stored document with the
    columns' current values, its effective ``active`` and its ``groups`` (RFC 7643 §4.1.2:
    the groups and classes it is a direct member of, read-only).

    The one definition of a User's representation: the engine validates it into a resource
    (:mod:`scim.storage`), the lookups and the answers to a user's create or PATCH publish it
    as it is (:func:`scim.lookups.user_response`)."""
    doc = dict((user.extra or {}).get("scim") or {})
    doc["userName"] = user.username
    _set(doc, "externalId", user.external_id)
    name = dict(doc.get("name") or {})
    _set(name, "givenName", user.given_name or None)
    _set(name, "familyName", user.family_name or None)
    _set(name, "middleName", user.middle_name)
    _set(doc, "name", name or None)
    # "active" absent from a creation means active (SPEC §4); every answer says which it is.
    doc["active"] = user.active
    _set(doc, "groups", [_group_reference(m) for m in user.memberships] or None)
    if user.email and not doc.get("emails"):
        doc["emails"] = [{"value": user.email, "primary": True}]
    education = _user_education(user, dict(doc.get(EDUCATION_USER) or {}))
    _set(doc, EDUCATION_USER, education or None)
    # the core schema first, always: a user that came by an import has no stored "schemas"
    schemas = [CORE_USER_SCHEMA]
    schemas += [s for s in doc.get("schemas", []) if s not in (CORE_USER_SCHEMA, EDUCATION_USER)]
    if education:
        schemas.append(EDUCATION_USER)
    doc["schemas"] = schemas
    return doc


def _group_reference(membership: groups.Membership) -> dict[str, Any]:
    return {
        "value": membership.group_id,
        "$ref": f"Groups/{membership.group_id}",
        "display": membership.display,
        "type": "direct",
    }


def user_fields(
    session: Session,
    tenant_id: str,
    resource: Resource[Any],
    user: User | None,
    doc: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The domain fields of ``users.create_user``/``update_user`` for a User resource;
    ``doc``: its :func:`document`, when already made."""
    doc = document(resource) if doc is None else doc
    name = doc.get("name") or {}
    fields: dict[str, Any] = {
        "username": doc.get("userName"),
        "external_id": doc.get("externalId"),
        "given_name": name.get("givenName") or "",
        "family_name": name.get("familyName") or "",
        "middle_name": name.get("middleName"),
        "email": _primary_email(doc.get("emails") or []),
    }
    education = doc.get(EDUCATION_USER) or {}
    roles = [
        RoleAssignment(
            _org_id(session, tenant_id, entry.get("school")),
            entry.get("role") or "",
            entry.get("roleType") or "primary",
        )
        for entry in education.get("roles") or []
    ]
    fields["roles"] = roles
    fields["grades"] = education.get("grades") or []
    fields["identifier"] = education.get("sisIdentifier")
    fields["birth_date"] = education.get("birthDate")
    if education.get("sourcedId"):
        fields["sourced_id"] = education["sourcedId"]
    core_role = _core_role(doc)
    if not roles and core_role:
        fields["primary_role"] = core_role
    extra = dict(user.extra or {}) if user is not None else {}
    extra["scim"] = doc
    fields["extra"] = extra
    return fields


def _user_education(user: user_views.UserView, stored: dict[str, Any]) -> dict[str, Any]:
    """The education extension: the columns' values, in the order the provider sent them."""
    roles = [
        {"role": r.role, "school": r.org_sourced_id, "roleType": r.role_type} for r in user.roles
    ]
    sent_roles = stored.get("roles") or []
    if _role_keys(sent_roles) == _role_keys(roles):
        roles = sent_roles
    grades = list(user.grades)
    if grades and sorted(set(stored.get("grades") or [])) == sorted(set(grades)):
        grades = stored["grades"]
    education = dict(stored)
    _set(education, "roles", roles or None)
    _set(education, "grades", grades or None)
    _set(education, "sisIdentifier", user.identifier)
    _set(education, "birthDate", user.birth_date.isoformat() if user.birth_date else None)
    from_scim = "scim" in (user.extra or {})
    if "sourcedId" in stored or (not from_scim and user.sourced_id != user.id):
        education["sourcedId"] = user.sourced_id
    return education


def _role_keys(roles: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    # A role at a school is one role, whatever roleType the duplicates say (the domain keeps one).
    return {(str(r.get("role") or "").casefold(), r.get("school")) for r in roles}


def _core_role(doc: dict[str, Any]) -> str | None:
    """A OneRoster role named by core ``roles`` (primary first) or ``userType``."""
    entries = sorted(doc.get("roles") or [], key=lambda r: not r.get("primary"))
    candidates = [r.get("value") for r in entries] + [doc.get("userType")]
    for candidate in candidates:
        for role in ROLES:
            if isinstance(candidate, str) and candidate.casefold() == role.casefold():
                return role
    return None


def _primary_email(emails: list[dict[str, Any]]) -> str | None:
    primary = [e for e in emails if e.get("primary")] or emails
    return primary[0].get("value") if primary else None


# Groups and classes -------------------------------------------------------------------------


def is_class_resource(resource: Resource[Any]) -> bool:
    """Whether the group carries the education extension with a value (a class): only the
    extension is serialised, not the members of a group of thousands."""
    names = [
        name
        for name, field in type(resource).model_fields.items()
        if (field.serialization_alias or field.alias) == EDUCATION_GROUP
    ]
    if not names:
        return False
    dumped = resource.model_dump(mode="json", include=set(names), exclude_none=True)
    return any(bool(value) for value in dumped.values())


def member_ids(resource: Resource[Any]) -> list[str]:
    return _member_ids(document(resource))


def _member_ids(doc: dict[str, Any]) -> list[str]:
    return sorted({m["value"] for m in doc.get("members") or [] if m.get("value")})


def group_document(
    session: Session, group: Group, member_ids: list[str] | None = None
) -> dict[str, Any]:
    """A plain group's SCIM JSON; ``member_ids``: its members (sorted), when already read."""
    doc = dict((group.extra or {}).get("scim") or {})
    doc["displayName"] = group.display_name
    _set(doc, "externalId", group.external_id)
    if member_ids is None:
        member_ids = groups.group_member_ids(session, group)
    _set(doc, "members", _members(doc, member_ids))
    doc["schemas"] = ["urn:ietf:params:scim:schemas:core:2.0:Group"]
    doc.pop(EDUCATION_GROUP, None)
    return doc


def group_fields(resource: Resource[Any], group: Group | None) -> dict[str, Any]:
    doc = document(resource)
    extra = dict(group.extra or {}) if group is not None else {}
    extra["scim"] = {k: v for k, v in doc.items() if k != "members"}
    extra["scim"]["members"] = _displays(doc)
    return {
        "display_name": doc.get("displayName"),
        "external_id": doc.get("externalId"),
        "member_ids": _member_ids(doc),
        "extra": extra,
    }


def class_document(session: Session, klass: SchoolClass) -> dict[str, Any]:
    doc = dict((klass.extra or {}).get("scim") or {})
    doc["displayName"] = klass.title
    _set(doc, "externalId", klass.external_id)
    enrolled = sorted({e.user_id for e in groups.class_enrollments(session, klass)})
    _set(doc, "members", _members(doc, enrolled))
    education: dict[str, Any] = dict(doc.get(EDUCATION_GROUP) or {})
    education["school"] = _org_sourced_id(session, klass.school_id)
    _set(education, "classCode", klass.class_code)
    education["classType"] = klass.class_type
    if klass.course_id:
        course = session.get(Course, klass.course_id)
        _set(education, "course", course.sourced_id if course else None)
    terms = sorted(t.sourced_id for t in klass.terms)
    if sorted(education.get("terms") or []) != terms:
        _set(education, "terms", terms or None)
    if "sourcedId" in education or klass.sourced_id != klass.id:
        education["sourcedId"] = klass.sourced_id
    doc[EDUCATION_GROUP] = education
    doc["schemas"] = ["urn:ietf:params:scim:schemas:core:2.0:Group", EDUCATION_GROUP]
    return doc


def class_fields(
    session: Session, actor: Actor, resource: Resource[Any], klass: SchoolClass | None
) -> dict[str, Any]:
    doc = document(resource)
    education = doc.get(EDUCATION_GROUP) or {}
    course = education.get("course")
    fields: dict[str, Any] = {
        "title": doc.get("displayName"),
        "external_id": doc.get("externalId"),
        "class_code": education.get("classCode"),
        "school_id": _class_school_id(session, actor.tenant_id, education.get("school")),
        "course_id": roster.class_reference(session, actor, Course, course) if course else None,
        "term_ids": [
            roster.class_reference(session, actor, AcademicSession, term)
            for term in education.get("terms") or []
            if term
        ],
    }
    if education.get("classType"):
        fields["class_type"] = education["classType"]
    if education.get("sourcedId"):
        fields["sourced_id"] = education["sourcedId"]
    extra = dict(klass.extra or {}) if klass is not None else {}
    extra["scim"] = {k: v for k, v in doc.items() if k != "members"}
    extra["scim"]["members"] = _displays(doc)
    fields["extra"] = extra
    return fields


def enrollment_role(user: User) -> str:
    """The class role of a member: the user's OneRoster role where it is a class role."""
    if user.primary_role in ENROLLMENT_ROLES:
        return user.primary_role
    return "administrator" if user.primary_role != "student" else "student"


def _displays(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Only the members' display names: membership itself lives in the member tables."""
    return [
        {"value": m["value"], "display": m["display"]}
        for m in doc.get("members") or []
        if m.get("value") and m.get("display")
    ]


def _members(doc: dict[str, Any], user_ids: list[str]) -> list[dict[str, Any]] | None:
    displays = {m.get("value"): m.get("display") for m in doc.get("members") or []}
    members = []
    for user_id in user_ids:
        member: dict[str, Any] = {"value": user_id, "$ref": f"Users/{user_id}", "type": "User"}
        if displays.get(user_id):
            member["display"] = displays[user_id]
        members.append(member)
    return members or None


def _class_school_id(session: Session, tenant_id: str, sourced_id: str | None) -> str:
    """The class's school; without one, the district's only school if it has exactly one."""
    if not sourced_id:
        schools = roster_views.list_schools(session, tenant_id)
        if len(schools) == 1:
            return schools[0].id
    return _org_id(session, tenant_id, sourced_id)


def _org_id(session: Session, tenant_id: str, sourced_id: str | None) -> str:
    if not sourced_id:
        raise InvalidValue("A school (org sourcedId) is required.", field="school")
    return _sourced(session, Org, tenant_id, sourced_id, "school")  # type: ignore[return-value]


def _sourced(
    session: Session, model: Any, tenant_id: str, sourced_id: str | None, field: str
) -> str | None:
    if not sourced_id:
        return None
    record = roster_views.find_by_sourced_id(session, model, tenant_id, sourced_id)
    if record is None:
        raise InvalidValue(f"No {field} with sourcedId {sourced_id!r}.", field=field)
    return str(record.id)


def _org_sourced_id(session: Session, org_id: str) -> str | None:
    org = session.get(Org, org_id)
    return org.sourced_id if org else None


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value
