"""Which OneRoster field names can be filtered and sorted on, and the SQL each one means.

Each object kind (``user``, ``org``, ``class``…) maps its REST field names (dotted for
references: ``school.sourcedId``, ``roles.org.sourcedId``) to a :class:`FieldSpec` that turns
``op 'value'`` into a SQL condition, and names the column to sort by. Conditions on indexed
columns use the index; ``~`` (contains) is a case-insensitive ``LIKE``. Field-name matching
is case-sensitive, as in the spec.

Value conventions:

- ``status``: ``active`` and ``tobedeleted`` (our ``inactive``); ``enabledUser`` and
  ``primary``: ``'true'``/``'false'``.
- dates and ``dateLastModified``: ISO 8601 (``2026-01-01`` or ``2026-01-01T08:00:00Z``).
- ``username``, ``email``, ``givenName``, ``familyName``: ``=`` and ``!=`` ignore case.
- multi-valued fields (``grades``, ``roles.role``, ``terms.sourcedId``…): ``=`` means "one of
  them is", ``!=`` means "none of them is", ``~`` means "one of them contains".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    String,
    and_,
    case,
    cast,
    exists,
    literal,
    not_,
    or_,
    select,
)

from oneroster.errors import bad_filter, bad_selection
from server.db import (
    AcademicSession,
    Course,
    Enrollment,
    Org,
    RecordStatus,
    SchoolClass,
    User,
    UserGrade,
    UserRole,
    class_terms,
    fold,
)
from server.db.roster import SyncedRecord

Condition = Callable[[str, str], ColumnElement[bool]]
Column = SQLColumnExpression[Any]
Record = type[SyncedRecord] | type[User]
ADMIN_ROLES = ("administrator", "districtAdministrator", "principal", "siteAdministrator")


@dataclass(frozen=True)
class FieldSpec:
    """How one field filters (``condition(op, value)``) and sorts (``sort``, None: it can't)."""

    condition: Condition
    sort: Any = None


def _compare(expr: Column, op: str, value: object) -> ColumnElement[bool]:
    if op == "=":
        return expr == value
    if op == "!=":
        return or_(expr != value, expr.is_(None))
    if op == ">":
        return expr > value
    if op == ">=":
        return expr >= value
    if op == "<":
        return expr < value
    if op == "<=":
        return expr <= value
    return expr.ilike(f"%{_escape_like(str(value))}%", escape="\\")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def text(column: Column, folded: Column | None = None) -> FieldSpec:
    def condition(op: str, value: str) -> ColumnElement[bool]:
        if folded is not None and op in ("=", "!="):
            return _compare(folded, op, fold(value))
        return _compare(column, op, value)

    return FieldSpec(condition, column)


def moment(column: Column) -> FieldSpec:
    """A timestamp (``dateLastModified``): the value is an ISO date or date-time, compared at
    its own precision, so the rendered (millisecond) value of a record is equal to it:
    ``dateLastModified>'2026-01-05T08:00:00.123Z'`` leaves out a record modified at
    08:00:00.123456, which a client saw as ``.123Z``, and ``='2026-01-05'`` means that day.
    """

    def condition(op: str, value: str) -> ColumnElement[bool]:
        start = _datetime(value)
        end = start + _precision(value)
        if op == "=":
            return and_(column >= start, column < end)
        if op == "!=":
            return or_(column < start, column >= end)
        if op == ">":
            return column >= end
        if op == ">=":
            return column >= start
        if op == "<":
            return column < start
        if op == "<=":
            return column < end
        raise bad_filter("dateLastModified is compared with = != > >= < or <=.")

    return FieldSpec(condition, column)


def _precision(value: str) -> timedelta:
    text = value.strip()
    if len(text) <= 10:
        return timedelta(days=1)
    match = re.search(r"T\d{2}:\d{2}(:\d{2}(\.(\d+))?)?", text)
    if match is None or match.group(1) is None:
        return timedelta(minutes=1)
    digits = len(match.group(3) or "")
    return timedelta(microseconds=10 ** max(0, 6 - digits)) if digits else timedelta(seconds=1)


def day(column: Column) -> FieldSpec:
    return FieldSpec(lambda op, value: _compare(column, op, _date(value)), column)


def status(model: Record) -> FieldSpec:
    def condition(op: str, value: str) -> ColumnElement[bool]:
        stored = {"active": RecordStatus.ACTIVE, "tobedeleted": RecordStatus.INACTIVE}.get(value)
        if stored is None and op in ("=", "!="):
            raise bad_filter(f"status is 'active' or 'tobedeleted', not {value!r}.")
        return _compare(model.status, op, stored or value)

    return FieldSpec(condition, model.status)


def enabled(model: type[User]) -> FieldSpec:
    def condition(op: str, value: str) -> ColumnElement[bool]:
        if value not in ("true", "false") or op not in ("=", "!="):
            raise bad_filter("enabledUser is compared with = or != to 'true' or 'false'.")
        wanted = (value == "true") == (op == "=")
        return model.status == (RecordStatus.ACTIVE if wanted else RecordStatus.INACTIVE)

    return FieldSpec(condition, model.status)


def flag(column: Column) -> FieldSpec:
    """A boolean the spec writes as the string 'true'/'false' (``primary``)."""

    def condition(op: str, value: str) -> ColumnElement[bool]:
        if value not in ("true", "false") or op not in ("=", "!="):
            raise bad_filter("This field is compared with = or != to 'true' or 'false'.")
        return column == ((value == "true") == (op == "="))

    return FieldSpec(condition, column)


def json_list(column: Column) -> FieldSpec:
    """A list kept as JSON (class and course ``grades``, ``subjects``, ``periods``)."""

    def condition(op: str, value: str) -> ColumnElement[bool]:
        as_text = cast(column, String)
        if op == "~":
            return as_text.ilike(f"%{_escape_like(value)}%", escape="\\")
        contains = as_text.like(f'%"{_escape_like(value)}"%', escape="\\")
        if op == "=":
            return contains
        if op == "!=":
            return not_(contains)
        raise bad_filter("List fields are compared with =, != or ~.")

    return FieldSpec(condition)


def many(element: Column, link: Callable[[], list[ColumnElement[bool]]]) -> FieldSpec:
    """A multi-valued field: one of the linked rows' ``element`` matches (none, for ``!=``)."""

    def condition(op: str, value: str) -> ColumnElement[bool]:
        if op == "!=":
            return not_(exists().where(*link(), element == value))
        return exists().where(*link(), _compare(element, op, value))

    return FieldSpec(condition)


def reference(column: Column, target: Record) -> FieldSpec:
    """``x.sourcedId`` of a reference held in ``column`` (our id of a ``target`` record)."""

    def condition(op: str, value: str) -> ColumnElement[bool]:
        if op == "!=":
            chosen = select(target.id).where(target.sourced_id == value)
            return or_(column.is_(None), column.not_in(chosen))
        return column.in_(select(target.id).where(_compare(target.sourced_id, op, value)))

    return FieldSpec(condition)


def user_role() -> FieldSpec:
    """OneRoster 1.1 ``role``: the user's primary role, with 1.2's admin roles as
    ``administrator``."""

    def condition(op: str, value: str) -> ColumnElement[bool]:
        if value == "administrator" and op in ("=", "!="):
            inside = User.primary_role.in_(ADMIN_ROLES)
            return inside if op == "=" else not_(inside)
        return _compare(User.primary_role, op, value)

    return FieldSpec(condition, User.primary_role)


def _datetime(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise bad_filter(f"{value!r} is not an ISO 8601 date or date-time.") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise bad_filter(f"{value!r} is not an ISO 8601 date (YYYY-MM-DD).") from None


def _common(model: Record) -> dict[str, FieldSpec]:
    return {
        "sourcedId": text(model.sourced_id),
        "status": status(model),
        "dateLastModified": moment(model.updated_at),
    }


def _role_rows() -> list[ColumnElement[bool]]:
    return [UserRole.user_id == User.id]


def _role_org_rows() -> list[ColumnElement[bool]]:
    return [UserRole.user_id == User.id, Org.id == UserRole.org_id]


def _grade_rows() -> list[ColumnElement[bool]]:
    return [UserGrade.user_id == User.id]


def _term_rows() -> list[ColumnElement[bool]]:
    return [
        class_terms.c.class_id == SchoolClass.id,
        AcademicSession.id == class_terms.c.session_id,
    ]


USER_FIELDS: dict[str, FieldSpec] = {
    **_common(User),
    "username": text(User.username, User.username_folded),
    "enabledUser": enabled(User),
    "givenName": text(User.given_name, User.given_folded),
    "familyName": text(User.family_name, User.family_folded),
    "middleName": text(User.middle_name),
    "preferredFirstName": text(User.preferred_given_name),
    "preferredLastName": text(User.preferred_family_name),
    "identifier": text(User.identifier),
    "email": text(User.email, User.email_folded),
    "role": user_role(),
    "roles.role": many(UserRole.role, _role_rows),
    "roles.roleType": many(UserRole.role_type, _role_rows),
    "roles.org.sourcedId": many(Org.sourced_id, _role_org_rows),
    "orgs.sourcedId": many(Org.sourced_id, _role_org_rows),
    "primaryOrg.sourcedId": reference(User.primary_org_id, Org),
    "grades": many(UserGrade.grade, _grade_rows),
}

DEMOGRAPHICS_FIELDS: dict[str, FieldSpec] = {
    **_common(User),
    "birthDate": day(User.birth_date),
    "sex": text(User.gender),
}

ORG_FIELDS: dict[str, FieldSpec] = {
    **_common(Org),
    "name": text(Org.name),
    "type": text(Org.type),
    "identifier": text(Org.identifier),
    "parent.sourcedId": reference(Org.parent_id, Org),
}

SESSION_FIELDS: dict[str, FieldSpec] = {
    **_common(AcademicSession),
    "title": text(AcademicSession.title),
    "type": text(AcademicSession.type),
    "startDate": day(AcademicSession.start_date),
    "endDate": day(AcademicSession.end_date),
    "schoolYear": text(AcademicSession.school_year),
    "parent.sourcedId": reference(AcademicSession.parent_id, AcademicSession),
}

COURSE_FIELDS: dict[str, FieldSpec] = {
    **_common(Course),
    "title": text(Course.title),
    "courseCode": text(Course.course_code),
    "grades": json_list(Course.grades),
    "subjects": json_list(Course.subjects),
    "org.sourcedId": reference(Course.org_id, Org),
    "schoolYear.sourcedId": reference(Course.school_year_id, AcademicSession),
}

CLASS_FIELDS: dict[str, FieldSpec] = {
    **_common(SchoolClass),
    "title": text(SchoolClass.title, SchoolClass.title_folded),
    "classCode": text(SchoolClass.class_code),
    "classType": text(SchoolClass.class_type),
    "location": text(SchoolClass.location),
    "grades": json_list(SchoolClass.grades),
    "subjects": json_list(SchoolClass.subjects),
    "periods": json_list(SchoolClass.periods),
    "course.sourcedId": reference(SchoolClass.course_id, Course),
    "school.sourcedId": reference(SchoolClass.school_id, Org),
    "terms.sourcedId": many(AcademicSession.sourced_id, _term_rows),
}

# An aide's enrollment is served as a non-primary teacher (oneroster/render.py): filters and
# sorts compare what is served.
SERVED_ROLE = case((Enrollment.role == "aide", literal("teacher")), else_=Enrollment.role)
SERVED_PRIMARY = and_(Enrollment.primary, Enrollment.role != "aide")

ENROLLMENT_FIELDS: dict[str, FieldSpec] = {
    **_common(Enrollment),
    "role": text(SERVED_ROLE),
    "primary": flag(SERVED_PRIMARY),
    "beginDate": day(Enrollment.begin_date),
    "endDate": day(Enrollment.end_date),
    "user.sourcedId": reference(Enrollment.user_id, User),
    "class.sourcedId": reference(Enrollment.class_id, SchoolClass),
    "school.sourcedId": reference(Enrollment.school_id, Org),
}

FIELDS_BY_KIND: dict[str, dict[str, FieldSpec]] = {
    "user": USER_FIELDS,
    "demographics": DEMOGRAPHICS_FIELDS,
    "org": ORG_FIELDS,
    "academicSession": SESSION_FIELDS,
    "course": COURSE_FIELDS,
    "class": CLASS_FIELDS,
    "enrollment": ENROLLMENT_FIELDS,
}


def filter_condition(kind: str, groups: list[list[Any]]) -> ColumnElement[bool] | None:
    """The SQL of a parsed filter for objects of ``kind``.

    :raises StatusError: (400 ``invalid_filter_field``) an unknown field or a bad value.
    """
    if not groups:
        return None
    specs = FIELDS_BY_KIND[kind]
    ors = []
    for group in groups:
        ands = []
        for predicate in group:
            spec = specs.get(predicate.field)
            if spec is None:
                raise bad_filter(
                    f"{predicate.field!r} is not a field that {kind} objects can be filtered on."
                )
            ands.append(spec.condition(predicate.op, predicate.value))
        ors.append(and_(*ands))
    return or_(*ors) if len(ors) > 1 else ors[0]


def sort_column(kind: str, name: str) -> Any:
    """The column to sort by. :raises StatusError: (400 ``invalid_selection_field``)"""
    spec = FIELDS_BY_KIND[kind].get(name)
    if spec is None or spec.sort is None:
        raise bad_selection(f"{name!r} is not a field that {kind} objects can be sorted by.")
    return spec.sort
