"""The school CSV / XLSX "export for upload": one school's students in exactly the import's
columns (:mod:`server.imports.school_csv`), so staff can edit usernames or passwords in a
spreadsheet and import it back.

The Password column holds the temporary password of accounts that are still ``issued`` (each
reveal is audited) and is empty otherwise. Every text cell is neutralised against formula
injection (:mod:`server.domain.cells`) and XLSX cells are written as strings.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from server.db import CredentialState, Enrollment, RecordStatus, SchoolClass, User, UserRole
from server.domain import credentials
from server.domain.actors import Actor
from server.domain.cells import neutralise
from server.domain.secrets import SecretBox
from server.errors import InvalidValue
from server.imports.school_csv import COLUMNS, FLAGS

GENDER_LETTERS = {"male": "M", "female": "F", "other": "X", "unspecified": "U"}
YEAR_LETTERS = {"KG": "R", "PK": "N"}
BATCH = 500


def school_rows(
    session: Session, actor: Actor, box: SecretBox, school_id: str
) -> Iterator[list[str]]:
    """The school CSV rows (header first) of the students with a role at one school.

    Only a role counts here, not an enrollment (unlike
    :func:`server.domain.access.users_at_schools`):
    importing the file back as this school's upload gives every row a role at the school.
    """
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
        from server.domain.roster_views import list_schools

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
