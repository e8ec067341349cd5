"""Exports: OneRoster CSV 1.1 / 1.2 packages, and (in :mod:`server.imports.school_export`)
the school CSV / XLSX "export for upload".

- A OneRoster export is a bulk package of the tenant's (or some schools') active orgs,
  academic sessions, courses, classes, enrollments, the users that are not deleted
  (``enabledUser=false`` for inactive ones), their roles (1.2 ``roles.csv``) and
  demographics. Imported into an empty tenant it reproduces the same records.
- A school-limited package holds the users of those schools as every other surface defines
  them (:func:`server.domain.access.users_at_schools`: a role or an enrollment there), and the
  orgs their roles name, so its references resolve.
- Every text cell is neutralised against formula injection (``=``, ``+``, ``-``, ``@``, tab,
  CR get a leading ``'``, :mod:`server.domain.cells`); the importers take the quote off again.

Rows are read with ``yield_per`` and written as they come.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

from sqlalchemy import ColumnElement, and_, exists, select
from sqlalchemy.orm import Session, aliased

from oneroster.csv_files import role_sourced_id, write_package
from server.db import (
    AcademicSession,
    Course,
    Enrollment,
    Org,
    RecordStatus,
    SchoolClass,
    User,
    UserRole,
    not_deleted,
)
from server.domain import audit
from server.domain.access import import_scope, users_at_schools
from server.domain.actors import Actor
from server.domain.secrets import SecretBox
from server.errors import InvalidValue
from server.imports.school_export import export_school

FORMATS = ("oneroster-1.1", "oneroster-1.2", "school-csv", "xlsx")
BATCH = 500


def export(
    session: Session,
    actor: Actor,
    box: SecretBox,
    fmt: str,
    out: str | Path | IO[bytes],
    *,
    school_ids: list[str] | None = None,
) -> int:
    """Write an export in ``fmt`` to ``out``; returns how many users it holds.

    Every export is audited as a read of student data (``read.export``: format, schools and
    how many users), since it carries names, birth dates and demographics out of Rollcall.

    :raises InvalidValue: an unknown format, or a school export without exactly one school.
    :raises NotAllowed: ``actor`` does not export, or not for these schools
        (:func:`server.domain.access.import_scope`).
    """
    if fmt not in FORMATS:
        raise InvalidValue(f"Unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}.")
    school_ids = import_scope(actor, school_ids or []) or None
    if fmt.startswith("oneroster-"):
        count = export_oneroster(session, actor, fmt.split("-", 1)[1], out, school_ids=school_ids)
    else:
        count = export_school(
            session, actor, box, out, spreadsheet=fmt == "xlsx", school_ids=school_ids
        )
    audit.record(
        session,
        actor,
        "read.export",
        target_kind="org" if school_ids and len(school_ids) == 1 else None,
        target_id=school_ids[0] if school_ids and len(school_ids) == 1 else None,
        changes={"format": [None, fmt], "users": [None, count]},
        detail=f"{fmt} export of {count} user(s)"
        + (f" in {len(school_ids)} school(s)." if school_ids else " of the whole district."),
    )
    return count


def export_oneroster(
    session: Session,
    actor: Actor,
    version: str,
    out: str | Path | IO[bytes],
    *,
    school_ids: list[str] | None = None,
) -> int:
    """Write a OneRoster CSV bulk package of the tenant (or of some schools); returns how many
    users it holds. Each output file has its own row function below."""
    package = _Package.read(session, actor.tenant_id, version, set(school_ids or []))
    files: dict[str, Iterator[dict[str, Any]]] = {
        "orgs.csv": _org_rows(package),
        "academicSessions.csv": _session_rows(package),
        "courses.csv": _course_rows(package),
        "classes.csv": _class_rows(package),
        "users.csv": _user_rows(package),
        "enrollments.csv": _enrollment_rows(package),
        "demographics.csv": _demographic_rows(package),
    }
    if version == "1.2":
        files["roles.csv"] = _role_rows(package)
        files["userProfiles.csv"] = _profile_rows(package)
    write_package(out, version, files)
    return package.users_written


@dataclass
class _Package:
    """What every file of one OneRoster export reads: the tenant's orgs, terms and courses by
    id, the schools it covers (none: the whole tenant) and the stand-ins of :class:`_StandIns`.
    """

    session: Session
    tenant: str
    version: str
    scope: set[str]
    orgs: dict[str, Org]
    terms: dict[str, AcademicSession]
    courses: dict[str, Course]
    stand_in: _StandIns
    users_written: int = 0

    @classmethod
    def read(cls, session: Session, tenant: str, version: str, scope: set[str]) -> _Package:
        def by_id(model: Any) -> dict[str, Any]:
            query = select(model).where(model.tenant_id == tenant).order_by(model.sourced_id)
            return {record.id: record for record in session.scalars(query)}

        return cls(
            session,
            tenant,
            version,
            scope,
            by_id(Org),
            by_id(AcademicSession),
            by_id(Course),
            _stand_ins(session, tenant, scope),
        )

    def sid(self, records: dict[str, Any], record_id: str | None) -> str:
        """The sourcedId of ``record_id`` among ``records`` ("" when unknown)."""
        return records[record_id].sourced_id if record_id and record_id in records else ""

    def exported_users(self) -> ColumnElement[bool]:
        """The users the package holds: not deleted, with a role at some org (a user without
        one is not a valid OneRoster user: 1.1 ``orgSourcedIds`` and 1.2 ``roles`` are
        required), and, for a school export, the users of those schools
        (:func:`server.domain.access.users_at_schools`)."""
        condition = and_(
            User.tenant_id == self.tenant,
            not_deleted(User.status),
            exists().where(UserRole.user_id == User.id),
        )
        return and_(condition, users_at_schools(self.scope)) if self.scope else condition

    def users(self) -> Iterator[User]:
        query = select(User).where(self.exported_users()).order_by(User.sourced_id, User.id)
        yield from self.session.scalars(query.execution_options(yield_per=BATCH))


def _org_rows(package: _Package) -> Iterator[dict[str, Any]]:
    """The covered schools, the orgs the exported users' roles name, and their parents."""
    orgs = package.orgs
    if package.scope:
        role = aliased(UserRole)  # apart from the UserRole the user condition names
        exported = select(User.id).where(package.exported_users())
        roles_at = set(
            package.session.scalars(select(role.org_id).where(role.user_id.in_(exported)))
        )
        wanted = _with_parents(orgs, package.scope | roles_at)
    else:
        wanted = set(orgs)
    for org in orgs.values():
        if org.id in wanted and org.status == RecordStatus.ACTIVE:
            yield {
                "sourcedId": org.sourced_id,
                "name": org.name,
                "type": org.type,
                "identifier": org.identifier,
                "parentSourcedId": package.sid(orgs, org.parent_id),
            }


def _session_rows(package: _Package) -> Iterator[dict[str, Any]]:
    if package.stand_in.classes_without_term:
        yield package.stand_in.term
    for term in package.terms.values():
        if term.status == RecordStatus.ACTIVE:
            yield {
                "sourcedId": term.sourced_id,
                "title": term.title,
                "type": term.type,
                "startDate": _date(term.start_date),
                "endDate": _date(term.end_date),
                "parentSourcedId": package.sid(package.terms, term.parent_id),
                "schoolYear": term.school_year,
            }


def _course_rows(package: _Package) -> Iterator[dict[str, Any]]:
    yield from package.stand_in.courses.values()
    for course in package.courses.values():
        if course.status == RecordStatus.ACTIVE:
            yield {
                "sourcedId": course.sourced_id,
                "schoolYearSourcedId": package.sid(package.terms, course.school_year_id),
                "title": course.title,
                "courseCode": course.course_code,
                "grades": ",".join(course.grades or []),
                "orgSourcedId": package.sid(package.orgs, course.org_id),
                "subjects": ",".join(course.subjects or []),
                "subjectCodes": ",".join((course.extra or {}).get("subjectCodes", [])),
            }


def _class_rows(package: _Package) -> Iterator[dict[str, Any]]:
    query = select(SchoolClass).where(
        SchoolClass.tenant_id == package.tenant, SchoolClass.status == RecordStatus.ACTIVE
    )
    if package.scope:
        query = query.where(SchoolClass.school_id.in_(package.scope))
    stand_in = package.stand_in
    for klass in package.session.scalars(
        query.order_by(SchoolClass.sourced_id).execution_options(yield_per=BATCH)
    ):
        yield {
            "sourcedId": klass.sourced_id,
            "title": klass.title,
            "grades": ",".join(klass.grades or []),
            "courseSourcedId": package.sid(package.courses, klass.course_id)
            or stand_in.courses[klass.id]["sourcedId"],
            "classCode": klass.class_code,
            "classType": klass.class_type,
            "location": klass.location,
            "schoolSourcedId": package.sid(package.orgs, klass.school_id),
            "termSourcedIds": ",".join(sorted(t.sourced_id for t in klass.terms))
            or stand_in.term["sourcedId"],
            "subjects": ",".join(klass.subjects or []),
            "subjectCodes": ",".join((klass.extra or {}).get("subjectCodes", [])),
            "periods": ",".join(klass.periods or []),
        }


def _user_rows(package: _Package) -> Iterator[dict[str, Any]]:
    for user in package.users():
        package.users_written += 1
        extra = user.extra or {}
        row = {
            "sourcedId": user.sourced_id,
            "enabledUser": "true" if user.status == RecordStatus.ACTIVE else "false",
            "username": user.username,
            "userIds": ",".join(extra.get("userIds", [])),
            "givenName": user.given_name,
            "familyName": user.family_name,
            "middleName": user.middle_name,
            "identifier": user.identifier,
            "email": user.email,
            "sms": extra.get("sms"),
            "phone": extra.get("phone"),
            "agentSourcedIds": ",".join(extra.get("agentSourcedIds", [])),
            "grades": ",".join(user.grades),
        }
        yield row | (
            _user_1_1(package, user) if package.version == "1.1" else _user_1_2(package, user)
        )


def _user_1_1(package: _Package, user: User) -> dict[str, Any]:
    """1.1's ``role`` and ``orgSourcedIds`` (the orgs of the primary role, else of any)."""
    orgs = package.orgs
    primary = {package.sid(orgs, r.org_id) for r in user.roles if r.role == user.primary_role}
    any_role = {package.sid(orgs, r.org_id) for r in user.roles}
    return {"role": user.primary_role, "orgSourcedIds": ",".join(sorted(primary or any_role))}


def _user_1_2(package: _Package, user: User) -> dict[str, Any]:
    extra = user.extra or {}
    return {
        "userMasterIdentifier": extra.get("userMasterIdentifier"),
        "preferredGivenName": user.preferred_given_name,
        "preferredMiddleName": extra.get("preferredMiddleName"),
        "preferredFamilyName": user.preferred_family_name,
        "primaryOrgSourcedId": package.sid(package.orgs, user.primary_org_id),
        "pronouns": extra.get("pronouns"),
    }


def _role_rows(package: _Package) -> Iterator[dict[str, Any]]:
    for user in package.users():
        for role in sorted(user.roles, key=lambda r: (r.org_id, r.role)):
            org = package.sid(package.orgs, role.org_id)
            yield {
                "sourcedId": role.sourced_id or role_sourced_id(user.sourced_id, org, role.role),
                "userSourcedId": user.sourced_id,
                "roleType": role.role_type,
                "role": role.role,
                "beginDate": _date(role.begin_date),
                "endDate": _date(role.end_date),
                "orgSourcedId": org,
                "userProfileSourcedId": role.user_profile_sourced_id,
            }


def _profile_rows(package: _Package) -> Iterator[dict[str, Any]]:
    for user in package.users():
        profiles = (user.extra or {}).get("userProfiles") or {}
        for key, profile in sorted(profiles.items()):
            yield {"sourcedId": key, "userSourcedId": user.sourced_id, **profile}


def _demographic_rows(package: _Package) -> Iterator[dict[str, Any]]:
    for user in package.users():
        demographics = (user.extra or {}).get("demographics") or {}
        if not (user.birth_date or user.gender or demographics):
            continue
        yield {
            "sourcedId": user.sourced_id,
            "birthDate": _date(user.birth_date),
            "sex": user.gender,
            **{
                key: ("true" if value else "false") if isinstance(value, bool) else value
                for key, value in demographics.items()
            },
        }


def _enrollment_rows(package: _Package) -> Iterator[dict[str, Any]]:
    query = (
        select(Enrollment, User.sourced_id, SchoolClass.sourced_id)
        .join(User, User.id == Enrollment.user_id)
        .join(SchoolClass, SchoolClass.id == Enrollment.class_id)
        .where(
            Enrollment.tenant_id == package.tenant,
            Enrollment.status == RecordStatus.ACTIVE,
            SchoolClass.status == RecordStatus.ACTIVE,
            package.exported_users(),
        )
    )
    if package.scope:
        query = query.where(Enrollment.school_id.in_(package.scope))
    for enrollment, user_sid, class_sid in package.session.execute(
        query.order_by(Enrollment.id).execution_options(yield_per=BATCH)
    ):
        yield {
            "sourcedId": enrollment.sourced_id,
            "classSourcedId": class_sid,
            "schoolSourcedId": package.sid(package.orgs, enrollment.school_id),
            "userSourcedId": user_sid,
            "role": enrollment.role,
            "primary": "true" if enrollment.primary else "false",
            "beginDate": _date(enrollment.begin_date),
            "endDate": _date(enrollment.end_date),
        }


@dataclass
class _StandIns:
    """Records a OneRoster package needs but Rollcall lacks for classes made by hand or by a
    school CSV: ``courseSourcedId`` and ``termSourcedIds`` are required (1.1 CSV §2.4, 1.2.1
    CSV §3.4), so such a class is exported with a course of its own (``<class>.course``) and
    the current school year as its term (``rollcall.schoolyear.<year>``)."""

    courses: dict[str, dict[str, Any]]
    classes_without_term: bool
    term: dict[str, Any]


def _stand_ins(session: Session, tenant: str, scope: set[str]) -> _StandIns:
    active = [SchoolClass.tenant_id == tenant, SchoolClass.status == RecordStatus.ACTIVE]
    if scope:
        active.append(SchoolClass.school_id.in_(scope))
    rows = session.execute(
        select(SchoolClass.id, SchoolClass.sourced_id, SchoolClass.title, Org.sourced_id)
        .join(Org, Org.id == SchoolClass.school_id)
        .where(*active, SchoolClass.course_id.is_(None))
    )
    courses = {
        class_id: {
            "sourcedId": f"{class_sid}.course",
            "title": title,
            "orgSourcedId": school_sid,
        }
        for class_id, class_sid, title, school_sid in rows
    }
    without_term = session.scalar(select(exists().where(*active, ~SchoolClass.terms.any())))
    today = date.today()
    year = today.year + 1 if today.month >= 8 else today.year
    term = {
        "sourcedId": f"rollcall.schoolyear.{year}",
        "title": f"School year {year - 1}-{year}",
        "type": "schoolYear",
        "startDate": f"{year - 1}-08-01",
        "endDate": f"{year}-07-31",
        "schoolYear": str(year),
    }
    return _StandIns(courses, bool(without_term), term)


def _with_parents(orgs: dict[str, Org], scope: set[str]) -> set[str]:
    wanted = set()
    for org_id in scope:
        current = orgs.get(org_id)
        while current is not None and current.id not in wanted:
            wanted.add(current.id)
            current = orgs.get(current.parent_id) if current.parent_id else None
    return wanted


def _date(value: Any) -> str:
    return value.isoformat() if value else ""
