"""OneRoster 1.2 (and 1.1) REST objects as OneRoster 1.2 CSV rows (for pulling from an upstream).

A 1.1 user (``role`` and ``orgs[]``, 1.1 REST binding §4.13) is first put in the 1.2 shape by
:func:`as_v1p2`: one role per org, the first org primary and the user's ``primaryOrg``. The
other 1.1 objects already have their 1.2 keys. Booleans sent as strings in any case
(``"TRUE"``, 1.1's usual form) or as JSON booleans become ``true``/``false``.

Only translation, the reverse of ``render.py``: references (``{"sourcedId": …}``) become
``…SourcedId`` cells, lists become comma-separated cells, REST names become CSV names
(``preferredFirstName`` -> ``preferredGivenName``, ``preferredLastName`` ->
``preferredFamilyName``), extension user roles (``ext:aide``) lose their prefix; an enrollment
role outside the 1.2 vocabulary (1.1's ``aide``) is written ``ext:aide``. A user object gives
one ``users.csv`` row and one ``roles.csv`` row per role (OneRoster 1.2 CSV Tables §3.10,
§3.12; Rostering REST ``UserDType``).

Example::

    user_row({"sourcedId": "s1", "givenName": "Ava", "familyName": "Adams",
              "primaryOrg": {"sourcedId": "school-1"}, "enabledUser": "true"})
    # {"sourcedId": "s1", "enabledUser": "true", "givenName": "Ava", ...,
    #  "primaryOrgSourcedId": "school-1"}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oneroster.csv_files import role_sourced_id
from oneroster.render import BIRTH_FIELDS, RACE_FIELDS
from server.domain.vocabulary import ENROLLMENT_ROLES_1P2

Row = dict[str, Any]

# Collection path -> (the list's key in the response body, the CSV file it becomes).
COLLECTIONS: dict[str, tuple[str, str]] = {
    "orgs": ("orgs", "orgs.csv"),
    "academicSessions": ("academicSessions", "academicSessions.csv"),
    "courses": ("courses", "courses.csv"),
    "classes": ("classes", "classes.csv"),
    "users": ("users", "users.csv"),
    "demographics": ("demographics", "demographics.csv"),
    "enrollments": ("enrollments", "enrollments.csv"),
}


def is_active(obj: dict[str, Any]) -> bool:
    """False for ``status: tobedeleted`` (and 1.1's ``inactive``, which the 1.2 OpenAPI text
    reads as tobedeleted): a bulk snapshot leaves such records out."""
    return str(obj.get("status") or "active").casefold() not in ("tobedeleted", "inactive")


def ref(value: Any) -> str:
    """The sourcedId of a reference object (or "")."""
    if isinstance(value, dict):
        return str(value.get("sourcedId") or "")
    return ""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flag(value: Any) -> str:
    """A boolean cell: JSON booleans and ``"True"``/``"FALSE"`` strings as ``true``/``false``."""
    text = _text(value)
    return text.casefold() if text.casefold() in ("true", "false") else text


def as_v1p2(collection: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A 1.1 REST object in its 1.2 shape (only users differ); a 1.2 object as it is."""
    if collection != "users" or isinstance(obj.get("roles"), list) or "role" not in obj:
        return obj
    orgs = [org for org in obj.get("orgs") or [] if ref(org)]
    role = obj.get("role")
    roles = [
        {"roleType": "primary" if n == 0 else "secondary", "role": role, "org": org}
        for n, org in enumerate(orgs)
    ]
    return {**obj, "roles": roles, "primaryOrg": orgs[0] if orgs else None}


def is_v1p1(collection: str, obj: dict[str, Any]) -> bool:
    """True for a user in the 1.1 shape (a ``role`` string, no ``roles`` list)."""
    return collection == "users" and isinstance(obj.get("role"), str) and "roles" not in obj


def _list(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_text(item) for item in value if item not in (None, ""))
    return _text(value)


def _refs(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(sid for sid in (ref(item) for item in value) if sid)
    return ""


def _role(value: Any) -> str:
    text = _text(value)
    return text[4:] if text.startswith("ext:") else text


def _enrollment_role(value: Any) -> str:
    """A role of the 1.2 enrollment vocabulary as it is; any other (1.1's ``aide``) in the
    1.2 CSV extension form ``ext:aide``, which the package keeps as that role."""
    role = _role(value)
    return role if role in ENROLLMENT_ROLES_1P2 or not role else "ext:" + role


def _base(obj: dict[str, Any]) -> Row:
    return {"sourcedId": _text(obj.get("sourcedId"))}


def org_row(obj: dict[str, Any]) -> Row:
    return {
        **_base(obj),
        "name": _text(obj.get("name")),
        "type": _text(obj.get("type")),
        "identifier": _text(obj.get("identifier")),
        "parentSourcedId": ref(obj.get("parent")),
    }


def session_row(obj: dict[str, Any]) -> Row:
    return {
        **_base(obj),
        "title": _text(obj.get("title")),
        "type": _text(obj.get("type")),
        "startDate": _text(obj.get("startDate")),
        "endDate": _text(obj.get("endDate")),
        "parentSourcedId": ref(obj.get("parent")),
        "schoolYear": _text(obj.get("schoolYear")),
    }


def course_row(obj: dict[str, Any]) -> Row:
    return {
        **_base(obj),
        "schoolYearSourcedId": ref(obj.get("schoolYear")),
        "title": _text(obj.get("title")),
        "courseCode": _text(obj.get("courseCode")),
        "grades": _list(obj.get("grades")),
        "orgSourcedId": ref(obj.get("org")),
        "subjects": _list(obj.get("subjects")),
        "subjectCodes": _list(obj.get("subjectCodes")),
    }


def class_row(obj: dict[str, Any]) -> Row:
    return {
        **_base(obj),
        "title": _text(obj.get("title")),
        "grades": _list(obj.get("grades")),
        "courseSourcedId": ref(obj.get("course")),
        "classCode": _text(obj.get("classCode")),
        "classType": _text(obj.get("classType")),
        "location": _text(obj.get("location")),
        "schoolSourcedId": ref(obj.get("school")),
        "termSourcedIds": _refs(obj.get("terms")),
        "subjects": _list(obj.get("subjects")),
        "subjectCodes": _list(obj.get("subjectCodes")),
        "periods": _list(obj.get("periods")),
    }


def _user_id(value: Any) -> str:
    """1.2 REST ``{"type": "LDAP", "identifier": "x"}`` -> the CSV form ``{LDAP:x}``."""
    if isinstance(value, dict):
        return "{" + f"{_text(value.get('type'))}:{_text(value.get('identifier'))}" + "}"
    return _text(value)


def user_row(obj: dict[str, Any]) -> Row:
    user_ids = obj["userIds"] if isinstance(obj.get("userIds"), list) else []
    return {
        **_base(obj),
        "enabledUser": _flag(obj.get("enabledUser")),
        "username": _text(obj.get("username")),
        "userIds": ",".join(_user_id(item) for item in user_ids),
        "givenName": _text(obj.get("givenName")),
        "familyName": _text(obj.get("familyName")),
        "middleName": _text(obj.get("middleName")),
        "identifier": _text(obj.get("identifier")),
        "email": _text(obj.get("email")),
        "sms": _text(obj.get("sms")),
        "phone": _text(obj.get("phone")),
        "agentSourcedIds": _refs(obj.get("agents")),
        "grades": _list(obj.get("grades")),
        "password": "",
        "userMasterIdentifier": _text(obj.get("userMasterIdentifier")),
        "preferredGivenName": _text(obj.get("preferredFirstName")),
        "preferredMiddleName": _text(obj.get("preferredMiddleName")),
        "preferredFamilyName": _text(obj.get("preferredLastName")),
        "primaryOrgSourcedId": ref(obj.get("primaryOrg")),
        "pronouns": _text(obj.get("pronouns")),
    }


def role_rows(obj: dict[str, Any]) -> list[Row]:
    """The ``roles.csv`` rows of a 1.2 user (its ``roles[]``)."""
    user = _text(obj.get("sourcedId"))
    rows = []
    roles = obj["roles"] if isinstance(obj.get("roles"), list) else []
    for item in roles:
        if not isinstance(item, dict):
            continue
        org, role = ref(item.get("org")), _role(item.get("role"))
        rows.append(
            {
                "sourcedId": role_sourced_id(user, org, role),
                "userSourcedId": user,
                "roleType": _text(item.get("roleType")) or "primary",
                "role": role,
                "beginDate": _text(item.get("beginDate")),
                "endDate": _text(item.get("endDate")),
                "orgSourcedId": org,
            }
        )
    return rows


def enrollment_row(obj: dict[str, Any]) -> Row:
    return {
        **_base(obj),
        "classSourcedId": ref(obj.get("class")),
        "schoolSourcedId": ref(obj.get("school")),
        "userSourcedId": ref(obj.get("user")),
        "role": _enrollment_role(obj.get("role")),
        "primary": _flag(obj.get("primary")),
        "beginDate": _text(obj.get("beginDate")),
        "endDate": _text(obj.get("endDate")),
    }


def demographics_row(obj: dict[str, Any]) -> Row:
    row = {**_base(obj), "birthDate": _text(obj.get("birthDate")), "sex": _text(obj.get("sex"))}
    for name in RACE_FIELDS:
        row[name] = _flag(obj.get(name))
    for name in BIRTH_FIELDS:
        row[name] = _text(obj.get(name))
    return row


CONVERTERS: dict[str, Callable[[dict[str, Any]], Row]] = {
    "orgs.csv": org_row,
    "academicSessions.csv": session_row,
    "courses.csv": course_row,
    "classes.csv": class_row,
    "users.csv": user_row,
    "enrollments.csv": enrollment_row,
    "demographics.csv": demographics_row,
}
