"""Exports: OneRoster CSV 1.1 / 1.2 packages, and the school CSV / XLSX "export for upload".

- A OneRoster export is a bulk package of the tenant's (or some schools') active orgs,
  academic sessions, courses, classes, enrollments, the users that are not deleted
  (``enabledUser=false`` for inactive ones), their roles (1.2 ``roles.csv``) and
  demographics. Imported into an empty tenant it reproduces the same records.
- The school CSV / XLSX export has exactly the import's columns, so staff can edit usernames
  or passwords in a spreadsheet and import it back. The Password column holds the temporary
  password of accounts that are still ``issued`` (each reveal is audited) and is empty
  otherwise: after activation nobody can see a password.
- Every text cell is neutralised against formula injection (``=``, ``+``, ``-``, ``@``, tab,
  CR get a leading ``'``, :mod:`server.domain.cells`) and XLSX cells are written as strings;
  the importers take the quote off again, so an export re-imported gives back the same values.

Rows are read with ``yield_per`` and written as they come.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from oneroster.csv_files import role_sourced_id, write_package
from server.db import (
    AcademicSession,
    Course,
    CredentialState,
    Enrollment,
    Org,
    RecordStatus,
    SchoolClass,
    User,
    UserRole,
)
from server.domain import audit, credentials
from server.domain.actors import Actor
from server.domain.cells import neutralise
from server.domain.secrets import SecretBox
from server.errors import InvalidValue
from server.imports.school_csv import COLUMNS, FLAGS

FORMATS = ("oneroster-1.1", "oneroster-1.2", "school-csv", "xlsx")
GENDER_LETTERS = {"male": "M", "female": "F", "other": "X", "unspecified": "U"}
YEAR_LETTERS = {"KG": "R", "PK": "N"}
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
    """
    if fmt not in FORMATS:
        raise InvalidValue(f"Unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}.")
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
    tenant = actor.tenant_id
    orgs = {
        o.id: o
        for o in session.scalars(
            select(Org).where(Org.tenant_id == tenant).order_by(Org.sourced_id)
        )
    }
    terms = {
        s.id: s
        for s in session.scalars(
            select(AcademicSession)
            .where(AcademicSession.tenant_id == tenant)
            .order_by(AcademicSession.sourced_id)
        )
    }
    courses = {
        c.id: c
        for c in session.scalars(
            select(Course).where(Course.tenant_id == tenant).order_by(Course.sourced_id)
        )
    }
    scope = set(school_ids or [])
    counter = {"users": 0}

    def sid(records: dict[str, Any], record_id: str | None) -> str:
        return records[record_id].sourced_id if record_id and record_id in records else ""

    def org_rows() -> Iterator[dict[str, Any]]:
        wanted = set(orgs) if not scope else _with_parents(orgs, scope)
        for org in orgs.values():
            if org.id in wanted and org.status == RecordStatus.ACTIVE:
                yield {
                    "sourcedId": org.sourced_id,
                    "name": org.name,
                    "type": org.type,
                    "identifier": org.identifier,
                    "parentSourcedId": sid(orgs, org.parent_id),
                }

    stand_in = _stand_ins(session, tenant, scope)

    def session_rows() -> Iterator[dict[str, Any]]:
        if stand_in.classes_without_term:
            yield stand_in.term
        for term in terms.values():
            if term.status == RecordStatus.ACTIVE:
                yield {
                    "sourcedId": term.sourced_id,
                    "title": term.title,
                    "type": term.type,
                    "startDate": _date(term.start_date),
                    "endDate": _date(term.end_date),
                    "parentSourcedId": sid(terms, term.parent_id),
                    "schoolYear": term.school_year,
                }

    def course_rows() -> Iterator[dict[str, Any]]:
        yield from stand_in.courses.values()
        for course in courses.values():
            if course.status == RecordStatus.ACTIVE:
                yield {
                    "sourcedId": course.sourced_id,
                    "schoolYearSourcedId": sid(terms, course.school_year_id),
                    "title": course.title,
                    "courseCode": course.course_code,
                    "grades": ",".join(course.grades or []),
                    "orgSourcedId": sid(orgs, course.org_id),
                    "subjects": ",".join(course.subjects or []),
                    "subjectCodes": ",".join((course.extra or {}).get("subjectCodes", [])),
                }

    def class_rows() -> Iterator[dict[str, Any]]:
        query = select(SchoolClass).where(
            SchoolClass.tenant_id == tenant, SchoolClass.status == RecordStatus.ACTIVE
        )
        if scope:
            query = query.where(SchoolClass.school_id.in_(scope))
        for klass in session.scalars(
            query.order_by(SchoolClass.sourced_id).execution_options(yield_per=BATCH)
        ):
            yield {
                "sourcedId": klass.sourced_id,
                "title": klass.title,
                "grades": ",".join(klass.grades or []),
                "courseSourcedId": sid(courses, klass.course_id)
                or stand_in.courses[klass.id]["sourcedId"],
                "classCode": klass.class_code,
                "classType": klass.class_type,
                "location": klass.location,
                "schoolSourcedId": sid(orgs, klass.school_id),
                "termSourcedIds": ",".join(sorted(t.sourced_id for t in klass.terms))
                or stand_in.term["sourcedId"],
                "subjects": ",".join(klass.subjects or []),
                "subjectCodes": ",".join((klass.extra or {}).get("subjectCodes", [])),
                "periods": ",".join(klass.periods or []),
            }

    def scoped_users() -> Iterator[User]:
        # a user without a role at an org is not a valid OneRoster user (1.1 orgSourcedIds,
        # 1.2 roles are required): left out, with their enrollments
        query = select(User).where(
            User.tenant_id == tenant,
            User.status != RecordStatus.DELETED,
            exists().where(UserRole.user_id == User.id),
        )
        if scope:
            query = query.where(
                exists().where(UserRole.user_id == User.id, UserRole.org_id.in_(scope))
            )
        yield from session.scalars(
            query.order_by(User.sourced_id, User.id).execution_options(yield_per=BATCH)
        )

    def user_rows() -> Iterator[dict[str, Any]]:
        for user in scoped_users():
            counter["users"] += 1
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
            if version == "1.1":
                row["role"] = user.primary_role
                row["orgSourcedIds"] = ",".join(
                    sorted({sid(orgs, r.org_id) for r in user.roles if r.role == user.primary_role})
                    or sorted({sid(orgs, r.org_id) for r in user.roles})
                )
            else:
                primary_org = sid(orgs, user.primary_org_id) if user.primary_org_id else ""
                row |= {
                    "userMasterIdentifier": extra.get("userMasterIdentifier"),
                    "preferredGivenName": user.preferred_given_name,
                    "preferredMiddleName": extra.get("preferredMiddleName"),
                    "preferredFamilyName": user.preferred_family_name,
                    "primaryOrgSourcedId": primary_org,
                    "pronouns": extra.get("pronouns"),
                }
            yield row

    def role_rows() -> Iterator[dict[str, Any]]:
        for user in scoped_users():
            for role in sorted(user.roles, key=lambda r: (r.org_id, r.role)):
                org = sid(orgs, role.org_id)
                yield {
                    "sourcedId": role.sourced_id
                    or role_sourced_id(user.sourced_id, org, role.role),
                    "userSourcedId": user.sourced_id,
                    "roleType": role.role_type,
                    "role": role.role,
                    "beginDate": _date(role.begin_date),
                    "endDate": _date(role.end_date),
                    "orgSourcedId": org,
                    "userProfileSourcedId": role.user_profile_sourced_id,
                }

    def profile_rows() -> Iterator[dict[str, Any]]:
        for user in scoped_users():
            profiles = (user.extra or {}).get("userProfiles") or {}
            for key, profile in sorted(profiles.items()):
                yield {"sourcedId": key, "userSourcedId": user.sourced_id, **profile}

    def demographic_rows() -> Iterator[dict[str, Any]]:
        for user in scoped_users():
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

    def enrollment_rows() -> Iterator[dict[str, Any]]:
        query = (
            select(Enrollment, User.sourced_id, SchoolClass.sourced_id)
            .join(User, User.id == Enrollment.user_id)
            .join(SchoolClass, SchoolClass.id == Enrollment.class_id)
            .where(
                Enrollment.tenant_id == tenant,
                Enrollment.status == RecordStatus.ACTIVE,
                SchoolClass.status == RecordStatus.ACTIVE,
                User.status != RecordStatus.DELETED,
                exists().where(UserRole.user_id == User.id),
            )
        )
        if scope:
            query = query.where(Enrollment.school_id.in_(scope))
        for enrollment, user_sid, class_sid in session.execute(
            query.order_by(Enrollment.id).execution_options(yield_per=BATCH)
        ):
            yield {
                "sourcedId": enrollment.sourced_id,
                "classSourcedId": class_sid,
                "schoolSourcedId": sid(orgs, enrollment.school_id),
                "userSourcedId": user_sid,
                "role": enrollment.role,
                "primary": "true" if enrollment.primary else "false",
                "beginDate": _date(enrollment.begin_date),
                "endDate": _date(enrollment.end_date),
            }

    files: dict[str, Any] = {
        "orgs.csv": org_rows(),
        "academicSessions.csv": session_rows(),
        "courses.csv": course_rows(),
        "classes.csv": class_rows(),
        "users.csv": user_rows(),
        "enrollments.csv": enrollment_rows(),
        "demographics.csv": demographic_rows(),
    }
    if version == "1.2":
        files["roles.csv"] = role_rows()
        files["userProfiles.csv"] = profile_rows()
    write_package(out, version, files)
    return counter["users"]


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


def school_rows(
    session: Session, actor: Actor, box: SecretBox, school_id: str
) -> Iterator[list[str]]:
    """The school CSV rows (header first) of the students at one school."""
    yield list(COLUMNS)
    query = (
        select(User)
        .where(
            User.tenant_id == actor.tenant_id,
            User.status == RecordStatus.ACTIVE,
            User.primary_role == "student",
            exists().where(UserRole.user_id == User.id, UserRole.org_id == school_id),
        )
        .order_by(User.family_folded, User.given_folded, User.id)
    )
    for user in session.scalars(query.execution_options(yield_per=BATCH)).all():
        title = session.scalars(
            select(SchoolClass.title)
            .join(Enrollment, Enrollment.class_id == SchoolClass.id)
            .where(
                Enrollment.user_id == user.id,
                Enrollment.role == "student",
                Enrollment.status == RecordStatus.ACTIVE,
                SchoolClass.school_id == school_id,
                SchoolClass.status == RecordStatus.ACTIVE,
            )
            .order_by(SchoolClass.class_type != "homeroom", SchoolClass.title_folded)
        ).first()
        password = ""
        credential = user.credential
        if (
            credential is not None
            and credential.state == CredentialState.ISSUED
            and credential.temporary_secret is not None
        ):
            password = credentials.reveal_temporary_password(session, actor, user, box=box)
        flags = user.demographic_flags or {}
        grade = user.grades[0] if user.grades else ""
        year = YEAR_LETTERS.get(grade) or (str(int(grade)) if grade.isdigit() else grade)
        values = {
            "Student Full Name": f"{user.given_name} {user.family_name}".strip(),
            "Username": user.username,
            "Year Group": year,
            "Class": title or "",
            "Gender": GENDER_LETTERS.get(user.gender or "", user.gender or ""),
            "Ethnicity": user.ethnicity or "",
            "Password": password,
        }
        for column, flag in FLAGS.items():
            values[column] = "" if flag not in flags else ("Yes" if flags[flag] else "No")
        yield [values[column] for column in COLUMNS]


def export_school(
    session: Session,
    actor: Actor,
    box: SecretBox,
    out: str | Path | IO[bytes],
    *,
    spreadsheet: bool,
    school_ids: list[str] | None,
) -> int:
    if not school_ids or len(school_ids) != 1:
        from server.domain.roster import list_schools

        schools = list_schools(session, actor.tenant_id)
        if school_ids or len(schools) != 1:
            raise InvalidValue("A school export is for one school: choose one school.")
        school_ids = [schools[0].id]
    rows = school_rows(session, actor, box, school_ids[0])
    count = -1
    if spreadsheet:
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("Students")
        for row in rows:
            sheet.append([_text_cell(sheet, value) for value in row])
            count += 1
        workbook.save(out)
        return count
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    for row in rows:
        writer.writerow([neutralise(value) for value in row])
        count += 1
    data = text.getvalue().encode("utf-8-sig")
    if isinstance(out, str | Path):
        Path(out).write_bytes(data)
    else:
        out.write(data)
    return count


def _text_cell(sheet: Any, value: str) -> Any:
    """An XLSX cell that is text whatever it begins with (never a formula), neutralised like
    the CSV's so that editing it in a spreadsheet does not turn it into one either."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=neutralise(value))
    cell.data_type = "s"
    return cell
