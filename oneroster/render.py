"""Rendering roster records as OneRoster 1.1 and 1.2 REST objects.

The shapes follow the 1.1 REST binding and the 1.2 Rostering OpenAPI (``UserDType``,
``ClassDType``…). Choices where our model and the spec meet:

- ``status`` is ``active`` or ``tobedeleted`` (our ``inactive``); deleted records are never
  rendered. ``enabledUser`` is the string ``"true"`` only for active users, so a deactivated
  user shows ``status: tobedeleted`` and ``enabledUser: "false"``.
- ``dateLastModified`` is UTC with milliseconds and a ``Z``: ``2026-01-05T08:00:00.000Z``.
- Booleans are the strings ``"true"``/``"false"`` (``enabledUser``, ``primary``, demographics).
- Optional fields with no value are left out rather than sent as ``null`` (the 1.2 schemas
  type them as strings).
- 1.1 ``role`` is the user's primary role in the 1.1 vocabulary (1.2's district, site and
  system administrators and principals become ``administrator``); 1.1 ``orgs`` are the orgs of
  the user's roles. 1.2 ``roles[]`` carry roleType/role/org and dates; 1.1's ``administrator``
  becomes 1.2's ``siteAdministrator``. ``primaryOrg`` is the stored one (as the source named
  it, else the org of a primary role: ``server/domain/users.py``).
  A user with no roles of their own (a SCIM user sent without schools) gets one per school of
  their active enrollments, so ``orgs``/``roles`` are never empty for an enrolled user.
- Enrollment roles are those of both versions' enrollment vocabulary (administrator, proctor,
  student, teacher: ``EnrollmentDType.role`` of the 1.2 OpenAPI, and the 1.1 binding as our
  ``schemas/v1p1`` and LongsightGroup/oneroster's 1.1 model read it). An enrollment stored as
  ``aide`` (a 1.1 CSV source, a pull from a 1.1 hub) reads as ``teacher`` with
  ``primary: "false"``: the person's user ``roles`` still say ``aide``, and ``primary`` is what
  tells the class's own teacher from the other adults in it (only one primary teacher per
  class and period). The extension form ``ext:aide`` would be schema-valid, but typed clients
  refuse it for the whole page (timeback-oneroster on 1.2, strongmind-oneroster-client on 1.1).
  Filters and sorts read the same mapping (``oneroster/fields.py``). Other roles outside the
  vocabulary (``guardian``) use the extension form ``ext:guardian``.
- Attributes no rule needs (``userIds``, ``userMasterIdentifier``, ``pronouns``,
  ``userProfiles``, ``sms``, ``phone``, ``subjectCodes``, ``metadata``…) come from the record's
  ``extra`` JSON when a source supplied them.
- References are ``{"href", "sourcedId", "type"}`` with an absolute ``href`` on this server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from oneroster.shapes import (  # re-exported for the modules that name them render.X
    BIRTH_FIELDS as BIRTH_FIELDS,
)
from oneroster.shapes import ENROLLMENT_ROLES, ROLES_1P1, ROLES_1P2, V1P1
from oneroster.shapes import KEYS as KEYS
from oneroster.shapes import RACE_FIELDS as RACE_FIELDS
from server.db import (
    AcademicSession,
    Course,
    Enrollment,
    Org,
    RecordStatus,
    SchoolClass,
    User,
)


@dataclass
class References:
    """The sourcedIds behind the ids a page of records points at, and the base for hrefs."""

    base_url: str
    orgs: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)
    courses: dict[str, str] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    org_children: dict[str, list[str]] = field(default_factory=dict)
    enrolled_at: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    session_children: dict[str, list[str]] = field(default_factory=dict)

    def to(self, collection: str, kind: str, sourced_id: str) -> dict[str, str]:
        return {
            "href": f"{self.base_url}/{collection}/{sourced_id}",
            "sourcedId": sourced_id,
            "type": kind,
        }

    def org(self, org_id: str | None) -> dict[str, str] | None:
        sid = self.orgs.get(org_id or "")
        return self.to("orgs", "org", sid) if sid else None

    def session(self, session_id: str | None) -> dict[str, str] | None:
        sid = self.sessions.get(session_id or "")
        return self.to("academicSessions", "academicSession", sid) if sid else None


def timestamp(moment: datetime) -> str:
    """``2026-01-05T08:00:00.000Z``"""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render(kind: str, version: str, record: Any, refs: References) -> dict[str, Any]:
    """One record as a OneRoster object of ``kind`` in ``version``."""
    body = _RENDERERS[kind](record, version, refs)
    return {key: value for key, value in body.items() if value is not None}


def select_fields(obj: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key in fields} if fields else obj


def _base(record: Any) -> dict[str, Any]:
    metadata = (record.extra or {}).get("metadata")
    return {
        "sourcedId": record.sourced_id,
        "status": "active" if record.status == RecordStatus.ACTIVE else "tobedeleted",
        "dateLastModified": timestamp(record.updated_at),
        "metadata": metadata if isinstance(metadata, dict) and metadata else None,
    }


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _extra_text(record: Any, name: str) -> str | None:
    value = (record.extra or {}).get(name)
    return value if isinstance(value, str) and value else None


def _user_ids(user: User) -> list[dict[str, str]]:
    """``userIds[]`` as ``{type, identifier}`` objects: a CSV file writes them ``{LDAP:x}``
    (CSV 1.2.1 users.csv), REST serves ``UserIdDType`` objects."""
    rendered = []
    for item in _extra_list(user, "userIds") or []:
        if isinstance(item, dict):
            rendered.append(item)
            continue
        text = str(item).strip()
        kind, sep, identifier = text.strip("{}").partition(":")
        if text.startswith("{") and text.endswith("}") and sep:
            rendered.append({"type": kind, "identifier": identifier})
        else:
            rendered.append({"type": "identifier", "identifier": text})
    return rendered


def _user_profiles(user: User) -> list[dict[str, Any]]:
    """1.2 ``userProfiles[]`` from the profiles a userProfiles.csv gave (kept in ``extra``
    by sourcedId, without passwords): ``profileId``, ``profileType``, ``vendorId``… and the
    ``credentials`` (type and username)."""
    profiles = (user.extra or {}).get("userProfiles")
    if not isinstance(profiles, dict):
        return []
    rendered = []
    for key, profile in sorted(profiles.items()):
        body = {"profileId": key}
        for name in ("profileType", "vendorId", "applicationId", "description"):
            if profile.get(name):
                body[name] = profile[name]
        if profile.get("credentialType") and profile.get("username"):
            body["credentials"] = [
                {"type": profile["credentialType"], "username": profile["username"]}
            ]
        rendered.append(body)
    return rendered


def _extra_list(record: Any, name: str) -> list[Any] | None:
    value = (record.extra or {}).get(name)
    return value if isinstance(value, list) else None


def _org(org: Org, version: str, refs: References) -> dict[str, Any]:
    return {
        **_base(org),
        "name": org.name,
        "type": org.type,
        "identifier": org.identifier or "",
        "parent": refs.org(org.parent_id),
        "children": [refs.to("orgs", "org", sid) for sid in refs.org_children.get(org.id, [])],
    }


def _session(term: AcademicSession, version: str, refs: References) -> dict[str, Any]:
    school_year = term.school_year or (str(term.end_date.year) if term.end_date else None)
    return {
        **_base(term),
        "title": term.title,
        "startDate": _day(term.start_date),
        "endDate": _day(term.end_date),
        "type": term.type,
        "parent": refs.session(term.parent_id),
        "children": [
            refs.to("academicSessions", "academicSession", sid)
            for sid in refs.session_children.get(term.id, [])
        ],
        "schoolYear": school_year,
    }


def _course(course: Course, version: str, refs: References) -> dict[str, Any]:
    return {
        **_base(course),
        "title": course.title,
        "schoolYear": refs.session(course.school_year_id),
        "courseCode": course.course_code or "",
        "grades": list(course.grades or []),
        "subjects": list(course.subjects or []),
        "org": refs.org(course.org_id),
        "subjectCodes": _extra_list(course, "subjectCodes"),
    }


def _class(klass: SchoolClass, version: str, refs: References) -> dict[str, Any]:
    course_sid = refs.courses.get(klass.course_id or "")
    return {
        **_base(klass),
        "title": klass.title,
        "classCode": klass.class_code,
        "classType": klass.class_type,
        "location": klass.location,
        "grades": list(klass.grades or []),
        "subjects": list(klass.subjects or []),
        "course": refs.to("courses", "course", course_sid) if course_sid else None,
        "school": refs.org(klass.school_id),
        "terms": [
            refs.to("academicSessions", "academicSession", term.sourced_id)
            for term in sorted(klass.terms, key=lambda t: t.sourced_id)
            if term.status != RecordStatus.DELETED
        ],
        "subjectCodes": _extra_list(klass, "subjectCodes"),
        "periods": list(klass.periods or []),
    }


def _role_1p1(role: str) -> str:
    if role in ROLES_1P1:
        return role
    if role in ("districtAdministrator", "principal", "siteAdministrator", "systemAdministrator"):
        return "administrator"
    return "ext:" + role if role else "student"


def _role_1p2(role: str) -> str:
    if role in ROLES_1P2:
        return role
    return "siteAdministrator" if role == "administrator" else "ext:" + role


def _user(user: User, version: str, refs: References) -> dict[str, Any]:
    roles: list[Any] = sorted(
        user.roles, key=lambda r: (r.role_type != "primary", r.org_id, r.role)
    ) or _roles_from_enrollments(refs.enrolled_at.get(user.id, []))
    body: dict[str, Any] = {
        **_base(user),
        "userMasterIdentifier": _extra_text(user, "userMasterIdentifier"),
        "username": user.username,
        "userIds": _user_ids(user),
        "enabledUser": "true" if user.status == RecordStatus.ACTIVE else "false",
        "givenName": user.given_name,
        "familyName": user.family_name,
        "middleName": user.middle_name,
    }
    if version == V1P1:
        org_ids = sorted({r.org_id for r in roles}, key=lambda i: refs.orgs.get(i, ""))
        body |= {
            "role": _role_1p1(user.primary_role),
            "identifier": user.identifier,
            "email": user.email,
            "sms": _extra_text(user, "sms"),
            "phone": _extra_text(user, "phone"),
            "agents": [],
            "orgs": [ref for ref in (refs.org(i) for i in org_ids) if ref],
            "grades": user.grades,
        }
        body.pop("userMasterIdentifier")
        return body
    primary = next((r for r in roles if r.role_type == "primary"), roles[0] if roles else None)
    body |= {
        "preferredFirstName": user.preferred_given_name,
        "preferredMiddleName": _extra_text(user, "preferredMiddleName"),
        "preferredLastName": user.preferred_family_name,
        "pronouns": _extra_text(user, "pronouns"),
        "roles": [
            {
                key: value
                for key, value in {
                    "roleType": r.role_type
                    if r.role_type in ("primary", "secondary")
                    else "primary",
                    "role": _role_1p2(r.role),
                    "org": refs.org(r.org_id),
                    "userProfile": getattr(r, "user_profile_sourced_id", None),
                    "beginDate": _day(r.begin_date),
                    "endDate": _day(r.end_date),
                }.items()
                if value is not None
            }
            for r in roles
            if refs.org(r.org_id)
        ],
        "userProfiles": _user_profiles(user),
        "primaryOrg": refs.org(user.primary_org_id or (primary.org_id if primary else None)),
        "identifier": user.identifier,
        "email": user.email,
        "sms": _extra_text(user, "sms"),
        "phone": _extra_text(user, "phone"),
        "agents": [],
        "grades": user.grades,
    }
    return body


@dataclass(frozen=True)
class _DerivedRole:
    org_id: str
    role: str
    role_type: str
    begin_date: date | None = None
    end_date: date | None = None


def _roles_from_enrollments(pairs: list[tuple[str, str]]) -> list[_DerivedRole]:
    """Roles for a user who has none of their own (a SCIM user without schools, say): one per
    school they are enrolled at, the first role at each school primary."""
    roles: list[_DerivedRole] = []
    seen: set[str] = set()
    for school_id, role in pairs:
        roles.append(_DerivedRole(school_id, role, "secondary" if school_id in seen else "primary"))
        seen.add(school_id)
    return roles


def _enrollment(enrollment: Enrollment, version: str, refs: References) -> dict[str, Any]:
    user_sid = refs.users.get(enrollment.user_id)
    class_sid = refs.classes.get(enrollment.class_id)
    role, primary = _enrollment_role(enrollment.role, enrollment.primary)
    return {
        **_base(enrollment),
        "user": refs.to("users", "user", user_sid) if user_sid else None,
        "class": refs.to("classes", "class", class_sid) if class_sid else None,
        "school": refs.org(enrollment.school_id),
        "role": role,
        "primary": "true" if primary else "false",
        "beginDate": _day(enrollment.begin_date),
        "endDate": _day(enrollment.end_date),
    }


def _enrollment_role(role: str, primary: bool) -> tuple[str, bool]:
    """The role and ``primary`` flag the enrollment vocabulary can say (module docstring)."""
    if role == "aide":
        return "teacher", False
    return (role if role in ENROLLMENT_ROLES else "ext:" + role), primary


def _sex(gender: str | None, version: str) -> str | None:
    value = (gender or "").strip().casefold()
    sex = {"m": "male", "male": "male", "f": "female", "female": "female"}.get(value)
    if sex or version == V1P1 or not value:
        return sex
    if value in ("u", "unspecified", "unknown", "not specified"):
        return "unspecified"
    return "other"


def _demographics(user: User, version: str, refs: References) -> dict[str, Any]:
    flags = user.demographic_flags or {}
    ethnicity = (user.ethnicity or "").casefold()
    body: dict[str, Any] = {
        **_base(user),
        "birthDate": _day(user.birth_date),
        "sex": _sex(user.gender, version),
    }
    for name in RACE_FIELDS:
        value = flags.get(name)
        if value is None and ethnicity:
            value = ethnicity == name.casefold()
        if value is not None:
            body[name] = "true" if str(value).casefold() in ("true", "1", "yes", "y") else "false"
    for name in BIRTH_FIELDS:
        value = flags.get(name)
        body[name] = str(value) if value not in (None, "") else None
    return body


_RENDERERS: dict[str, Callable[[Any, str, References], dict[str, Any]]] = {
    "org": _org,
    "academicSession": _session,
    "course": _course,
    "class": _class,
    "user": _user,
    "enrollment": _enrollment,
    "demographics": _demographics,
}
