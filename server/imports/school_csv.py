"""The one-file school CSV (or XLSX): the columns school staff keep in a spreadsheet.

Required columns: ``Student Full Name, Username, Year Group, Class, Gender`` (``Male``,
``Female``, ``Non-Binary`` as the miMove template's help lists them, any case, or ``M``/``F``/
``X``/``NB``/``U``; mapped to OneRoster ``sex`` male/female/other/unspecified); optional:
``Pupil Premium, SEND, EAL`` (Yes/No), ``Ethnicity`` (a 4-character code, ``NOBT`` = not
obtained) and ``Password``. Headers are matched without regard to case or spacing; a
semicolon-separated file (Excel in some locales) is read too.

- A blank Username is generated from the name; a blank Password leaves the account pending
  (no password yet). A password goes through the policy and the SSO guard (R106, R107).
- Matching: by username (any case), else by full name in the same class; the row's message
  says which rule matched. An inactive match is reactivated (W202). A new student with the name
  of an active student at the school is created with warning W204 (possible duplicate). A
  username that belongs to a person of another name is skipped with warning W205: the file
  never renames someone else (issue 14, item 12).
- A row whose first cell starts with ``#`` is a comment and is skipped (the template's example
  row is one, so the template imported unchanged creates nobody).
- Year Group ``1``..``13`` (or ``Year 7``) maps to the CEDS grades ``01``..``13``,
  ``R``/``Reception`` to ``KG``, ``N``/``Nursery`` to ``PK``.
- Class is the student's class at the school: a class that does not exist yet is created,
  and the student leaves the other classes this connection put them in at that school.
- Year Group and Class are required for a new student; left blank for a student who already
  exists (as an export lists students made by hand), they leave the grade and classes as
  they are, so whatever Rollcall exports for upload imports back.
- The school is the one given with ``--school``, else the connection's only school, else the
  tenant's only school.

Example (the template, ``rollcall import --template``)::

    Student Full Name,Username,Year Group,Class,Gender,Pupil Premium,Ethnicity,SEND,EAL,Password
    # Example (skipped): Ava Adams,,7,7A,F,No,WBRI,No,No,
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from xml.sax import SAXException

from sqlalchemy import exists, func, select

from server.db import Enrollment, Org, RecordStatus, SchoolClass, User, UserRole, fold
from server.domain import credentials, duplicates, roster, users
from server.domain.cells import restore
from server.domain.import_limits import ImportLimits, bounded_lines, check_row, scan_workbook
from server.domain.import_records import (
    FileProblem,
    ImportRecord,
    Outcome,
    RowProblem,
    RowResult,
    empty_line,
)
from server.domain.users import RoleAssignment
from server.domain.vocabulary import check_grade
from server.imports.contract import (
    Deactivation,
    ImportContext,
    ImportOptions,
    ImportRefused,
    Progress,
    Step,
)
from server.imports.read_ahead import Spool, replay

REQUIRED = ("Student Full Name", "Username", "Year Group", "Class", "Gender")
OPTIONAL = ("Pupil Premium", "Ethnicity", "SEND", "EAL", "Password")
COLUMNS = REQUIRED + OPTIONAL
FLAGS = {"Pupil Premium": "pupil_premium", "SEND": "send", "EAL": "eal"}
GENDERS = {
    "m": "male",
    "male": "male",
    "boy": "male",
    "f": "female",
    "female": "female",
    "girl": "female",
    "x": "other",
    "o": "other",
    "other": "other",
    "u": "unspecified",
    "unspecified": "unspecified",
    "not known": "unspecified",
    # the miMove template's help page lists Male, Female, Non-Binary (OneRoster sex "other")
    "non-binary": "other",
    "non binary": "other",
    "nonbinary": "other",
    "nb": "other",
}
YEAR_WORDS = {"r": "KG", "reception": "KG", "rec": "KG", "n": "PK", "nursery": "PK"}
EXAMPLE = ("# Example (skipped): Ava Adams", "", "7", "7A", "F", "No", "WBRI", "No", "No", "")
COMMENT = "#"
FILE = "school.csv"
XLSX_COLUMNS = 256  # columns of a worksheet that are read; the school CSV has 10


def template() -> str:
    """The template with one example row, a comment the importer skips (what
    ``GET /admin/import/template.csv`` serves)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerow(EXAMPLE)
    return out.getvalue()


def split_name(full_name: str) -> tuple[str, str]:
    """``"Mary Ann Smith"`` -> ``("Mary Ann", "Smith")``: the last word is the family name."""
    parts = full_name.split()
    if len(parts) < 2:
        return full_name.strip(), ""
    return " ".join(parts[:-1]), parts[-1]


def year_group(value: str) -> str:
    """``"Year 7"``, ``"7"``, ``"07"`` -> ``"07"``; ``"R"`` -> ``"KG"``. :raises InvalidValue:"""
    text = re.sub(r"^(year|yr|y)\s*", "", value.strip(), flags=re.IGNORECASE)
    return YEAR_WORDS.get(text.casefold()) or check_grade(text)


class SchoolCsvSource:
    """A school CSV or XLSX file."""

    format = "school-csv"
    source_name = None

    def __init__(
        self,
        path: str | Path | IO[bytes],
        *,
        spreadsheet: bool = False,
        limits: ImportLimits | None = None,
    ) -> None:
        self.path = path
        self.spreadsheet = spreadsheet
        self.limits = limits or ImportLimits()
        self.warnings: list[tuple[str, str]] = []
        self._stream: IO[Any] | None = None
        self.spools: dict[str, Spool] = {}
        self._scan_problem: FileProblem | None = None
        if spreadsheet:
            self.format = "xlsx"

    def default_mode(self) -> str:
        return "delta"

    def read_ahead(self, options: ImportOptions, check: Progress | None = None) -> None:
        """Check and read the file now, before the write transaction (issue 11 item 6)."""
        try:
            if self.spreadsheet:
                self._scan()
        except FileProblem as problem:
            self._scan_problem = problem
            return
        self.spools[FILE] = Spool.of(self._records(), check)

    def steps(self, ctx: ImportContext) -> Iterator[Step]:
        if self._scan_problem is not None:
            raise self._scan_problem
        if self.spreadsheet and FILE not in self.spools:
            self._scan()  # a hostile sheet is refused before anything else is looked at
        ctx.cache["school"] = {"id": _school_id(ctx)}
        yield Step(
            file=FILE,
            mode="bulk" if ctx.mode == "full" else "delta",
            records=replay(self.spools, FILE, self._records),
            handle=handle_student,
            prefetch=_prefetch,
            seen_kind="school_row",
        )

    def _records(self) -> Iterator[ImportRecord | RowResult]:
        rows = self._xlsx_rows() if self.spreadsheet else self._csv_rows()
        try:
            header = next(rows, None)
            if header is None:
                raise FileProblem("F002", "The file is empty: it needs the header row.", FILE)
            check_row(header, 1, self.limits, FILE)
            columns = _columns(header)
            for number, cells in enumerate(rows, start=2):
                check_row(cells, number, self.limits, FILE)
                if not any((c or "").strip() for c in cells):
                    if not self.spreadsheet:  # a worksheet's blank rows are only formatting
                        yield empty_line(FILE, number)
                    continue
                if (cells[0] or "").lstrip().startswith(COMMENT):
                    continue  # a comment line, like the template's example
                values = {
                    name: restore(cells[i] if i < len(cells) else "").strip()
                    for name, i in columns.items()
                }
                try:
                    yield _translate(number, values)
                except RowProblem as problem:
                    yield RowResult(
                        FILE,
                        number,
                        fold(values.get("Username")) or None,
                        Outcome.ERROR,
                        problem.code,
                        problem.message,
                    )
        except (UnicodeDecodeError, csv.Error) as error:
            raise FileProblem(
                "F001",
                f"The file cannot be read as CSV ({error}); save it as 'CSV UTF-8'.",
                FILE,
            ) from None

    def _csv_rows(self) -> Iterator[list[str]]:
        raw = open(self.path, "rb") if isinstance(self.path, str | Path) else self.path  # noqa: SIM115
        self._stream = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        lines = bounded_lines(self._stream, self.limits, FILE)
        first = next(lines, "")
        delimiter = ";" if first.count(";") > first.count(",") else ","
        yield from csv.reader(io.StringIO(first), delimiter=delimiter)
        yield from csv.reader(lines, delimiter=delimiter)

    def _xlsx_rows(self) -> Iterator[list[str]]:
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(self.path, read_only=True, data_only=True)
        except Exception as error:  # openpyxl raises many kinds for a broken file
            raise FileProblem("F001", f"The spreadsheet cannot be read: {error}.", FILE) from None
        try:
            # rows are cut at XLSX_COLUMNS: a forged <dimension> cannot make openpyxl pad every
            # row to 16,384 cells (the scan has already bounded the cells it parses)
            for row in workbook.active.iter_rows(values_only=True, max_col=XLSX_COLUMNS):
                yield [_cell_text(value) for value in row]
        finally:
            workbook.close()

    def _scan(self) -> None:
        """The workbook's zip and sheets against the limits (streamed, before openpyxl)."""
        try:
            scan_workbook(self.path, self.limits)
        except (zipfile.BadZipFile, OSError, ValueError, SAXException) as error:
            raise FileProblem("F001", f"The spreadsheet cannot be read: {error}.", FILE) from None

    def deactivations(self, ctx: ImportContext) -> Iterator[Deactivation]:
        yield Deactivation(
            file=FILE,
            kind="student",
            select_missing=lambda c: select(User).where(
                *_students_in_scope(c),
                c.not_seen("user_id", User.id),
                # a listed row that could not be read still protects its username
                c.not_seen("school_row", User.username_folded),
            ),
            deactivate=lambda c, user: users.deactivate_user(
                c.session, c.actor, user, reason="Missing from a full import."
            ),
            key=lambda user: user.username,
            counts_for_shrink=True,
            count_active=lambda c: (
                c.session.scalar(
                    select(func.count()).select_from(User).where(*_students_in_scope(c))
                )
                or 0
            ),
        )

    def close(self) -> None:
        for spool in self.spools.values():
            spool.close()
        if self._stream is not None:
            self._stream.close()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _columns(header: list[str]) -> dict[str, int]:
    by_fold = {re.sub(r"\s+", " ", (h or "").strip()).casefold(): i for i, h in enumerate(header)}
    columns = {name: by_fold[name.casefold()] for name in COLUMNS if name.casefold() in by_fold}
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise FileProblem(
            "F002",
            f"The column {missing[0]!r} is missing; the school CSV needs the columns "
            f"{', '.join(REQUIRED)} (see the template).",
            FILE,
        )
    return columns


def _translate(number: int, values: dict[str, str]) -> ImportRecord:
    # Year Group and Class may be blank for a student who already exists (an export of a
    # student made by hand lists none): checked in handle_student.
    if not values.get("Student Full Name"):
        raise RowProblem("R101", "Student Full Name is empty.", "Student Full Name")
    given, family = split_name(values["Student Full Name"])
    fields: dict[str, Any] = {"given_name": given, "family_name": family}
    if values.get("Username"):
        fields["username"] = values["Username"]
    gender = values.get("Gender", "")
    if gender:
        if gender.casefold() not in GENDERS:
            raise RowProblem(
                "R102",
                f"Gender {gender!r} is not one of Male, Female, Non-Binary (or M, F, X, U).",
                "Gender",
            )
        fields["gender"] = GENDERS[gender.casefold()]
    if "Ethnicity" in values:
        code = values["Ethnicity"].upper()
        if code and not re.fullmatch(r"[A-Z]{4}", code):
            raise RowProblem(
                "R102",
                f"Ethnicity {values['Ethnicity']!r} is not a 4-letter code (NOBT if not obtained).",
                "Ethnicity",
            )
        fields["ethnicity"] = code or None
    flags: dict[str, bool] = {}
    for column, flag in FLAGS.items():
        text = values.get(column, "").casefold()
        if not text:
            continue
        if text not in ("yes", "no", "y", "n", "true", "false"):
            raise RowProblem("R102", f"{column} must be Yes or No, not {values[column]!r}.", column)
        flags[flag] = text in ("yes", "y", "true")
    return ImportRecord(
        FILE,
        number,
        "student",
        fold(values.get("Username")) or "",
        fields=fields,
        refs={"year": values["Year Group"], "class": values["Class"], "flags": flags},
        password=values.get("Password") or None,
    )


def _school_id(ctx: ImportContext) -> str:
    if len(ctx.school_ids) == 1:
        return ctx.school_ids[0]
    if ctx.school_ids:
        raise ImportRefused("A school CSV is for one school: choose one school.")
    schools = list(
        ctx.session.scalars(
            select(Org.id)
            .where(
                Org.tenant_id == ctx.tenant_id,
                Org.type == "school",
                Org.status == RecordStatus.ACTIVE,
            )
            .limit(2)
        )
    )
    if len(schools) != 1:
        raise ImportRefused(
            "Choose the school this file is for."
            if schools
            else "The tenant has no school yet: create one or import a OneRoster package first."
        )
    return schools[0]


def _students_in_scope(ctx: ImportContext) -> list[Any]:
    school_id = ctx.cache["school"]["id"]
    return [
        User.connection_id == ctx.connection.id,
        User.status == RecordStatus.ACTIVE,
        User.primary_role == "student",
        exists().where(UserRole.user_id == User.id, UserRole.org_id == school_id),
    ]


def _prefetch(ctx: ImportContext, records: list[ImportRecord]) -> None:
    names = sorted({r.key for r in records if r.key})
    found: dict[str, User] = {}
    if names:
        for user in ctx.session.scalars(
            select(User).where(
                User.tenant_id == ctx.tenant_id,
                User.username_folded.in_(names),
                User.status != RecordStatus.DELETED,
            )
        ):
            found[user.username_folded] = user
    ctx.batch["users"] = found
    if "classes" not in ctx.cache:
        school_id = ctx.cache["school"]["id"]
        rows = ctx.session.execute(
            select(SchoolClass.title_folded, SchoolClass.id).where(
                SchoolClass.tenant_id == ctx.tenant_id,
                SchoolClass.school_id == school_id,
                SchoolClass.status != RecordStatus.DELETED,
            )
        )
        ctx.cache["classes"] = {title: id_ for title, id_ in rows}


def _match(ctx: ImportContext, record: ImportRecord) -> tuple[User | None, str | None]:
    if record.key:
        user = ctx.batch["users"].get(record.key)
        if user is not None:
            return user, "username"
    class_id = ctx.cache["classes"].get(fold(record.refs["class"]) or "")
    if class_id is None:
        return None, None
    user = ctx.session.scalars(
        select(User)
        .where(
            User.tenant_id == ctx.tenant_id,
            duplicates.same_full_name(
                f"{record.fields['given_name']} {record.fields['family_name']}"
            ),
            User.status != RecordStatus.DELETED,
            exists().where(Enrollment.user_id == User.id, Enrollment.class_id == class_id),
        )
        .order_by(User.created_at)
    ).first()
    return (user, "full name and class") if user is not None else (None, None)


def _class_for(ctx: ImportContext, title: str) -> tuple[SchoolClass, bool]:
    classes = ctx.cache["classes"]
    class_id = classes.get(fold(title) or "")
    if class_id is not None:
        klass = ctx.session.get(SchoolClass, class_id)
        if klass is not None:
            return klass, False
    klass = roster.create_class(
        ctx.session, ctx.actor, {"title": title, "school_id": ctx.cache["school"]["id"]}
    )
    classes[fold(title) or ""] = klass.id
    return klass, True


def handle_student(ctx: ImportContext, record: ImportRecord) -> list[RowResult]:
    school_id = ctx.cache["school"]["id"]
    fields = dict(record.fields)
    if record.refs["year"]:
        fields["grades"] = [year_group(record.refs["year"])]
    fields["primary_role"] = "student"
    user, rule = _match(ctx, record)
    if user is not None and rule == "username" and not _same_person(user, fields):
        return [_someone_else(record, user)]
    if user is not None and _same_person(user, fields):
        # the same full name: keep how the account splits it into given and family name
        fields.pop("given_name"), fields.pop("family_name")
    results: list[RowResult] = []
    flags = record.refs["flags"]
    if user is None:
        _ensure_new_student_has(record, "Year Group", "year")
        _ensure_new_student_has(record, "Class", "class")
        alike = duplicates.possible_duplicates(
            ctx.session,
            ctx.actor,
            fields["given_name"],
            fields["family_name"],
            school_id=school_id,
            any_split=True,
        )
        fields["roles"] = [RoleAssignment(school_id, "student")]
        fields["demographic_flags"] = flags
        user = users.create_user(ctx.session, ctx.actor, fields)
        outcome, code, changes = Outcome.CREATED, None, {"username": [None, user.username]}
        message = None
        if alike:
            code, message = "W204", _duplicate_warning(alike)
    else:
        roles = users.role_assignments(user)
        if not any((r.org_id, r.role) == (school_id, "student") for r in roles):
            roles.append(RoleAssignment(school_id, "student"))
        fields["roles"] = sorted(roles)
        fields["demographic_flags"] = {**(user.demographic_flags or {}), **flags}
        before = user.status
        changes = users.update_user(ctx.session, ctx.actor, user, fields)
        message = f"Matched by {rule}."
        code = None
        if before != RecordStatus.ACTIVE:
            users.reactivate_user(ctx.session, ctx.actor, user, reason="Listed again in an import.")
            changes["status"] = [before, RecordStatus.ACTIVE]
            outcome, code = Outcome.REACTIVATED, "W202"
            message += " The account was inactive and is reactivated with its history."
        else:
            outcome = Outcome.UPDATED if changes else Outcome.UNCHANGED
    if not record.refs["class"]:
        # an existing student listed without a class keeps the classes they have
        return _student_result(ctx, record, user, outcome, code, message, changes, results)
    klass, class_created = _class_for(ctx, record.refs["class"])
    if class_created:
        results.append(
            RowResult(
                FILE,
                record.number,
                f"class:{klass.title}",
                Outcome.CREATED,
                message=f"New class {klass.title!r}.",
            )
        )
    moved = _place_in_class(ctx, user, klass)
    if moved:
        changes["class"] = moved
    return _student_result(ctx, record, user, outcome, code, message, changes, results)


def _same_person(user: User, fields: dict[str, Any]) -> bool:
    """The row names the account's holder: the same full name, any case or spacing (the file
    has one name column, so "Milhouse Van Houten" is the same person however it was split)."""
    return _full_name(user.given_name, user.family_name) == _full_name(
        fields["given_name"], fields["family_name"]
    )


def _full_name(given: str | None, family: str | None) -> str:
    return " ".join(f"{given or ''} {family or ''}".split()).casefold()


def _someone_else(record: ImportRecord, user: User) -> RowResult:
    """W205: the row's username belongs to another person; the row is skipped, not applied."""
    row_name = f"{record.fields['given_name']} {record.fields['family_name']}".strip()
    return RowResult(
        FILE,
        record.number,
        user.username,
        Outcome.SKIPPED,
        "W205",
        f"The username {user.username!r} belongs to {user.given_name} {user.family_name}, "
        f"not {row_name}: the row is skipped and that account is left as it is. Leave the "
        "Username blank for a new student, or correct the name if it is the same child.",
    )


def _ensure_new_student_has(record: ImportRecord, column: str, ref: str) -> None:
    """A new student needs a Year Group and a Class (R101)."""
    if not record.refs[ref]:
        raise RowProblem("R101", f"{column} is empty (needed for a new student).", column)


def _student_result(
    ctx: ImportContext,
    record: ImportRecord,
    user: User,
    outcome: str,
    code: str | None,
    message: str | None,
    changes: dict[str, Any],
    results: list[RowResult],
) -> list[RowResult]:
    """Set the row's password, mark the student seen and report the row first."""
    if credentials.sync_password(ctx.session, ctx.actor, user, record.password, box=ctx.box):
        changes["password"] = [None, "set"]
    if outcome == Outcome.UNCHANGED and changes:
        outcome = Outcome.UPDATED
    ctx.mark_seen("user_id", [user.id])
    results.insert(
        0,
        RowResult(FILE, record.number, user.username, outcome, code, message, changes),
    )
    return results


def _duplicate_warning(alike: list[User]) -> str:
    names = ", ".join(f"{u.given_name} {u.family_name} ({u.username})" for u in alike)
    return (
        f"Created, but an active student with the same name is already at this school: {names}. "
        "If it is the same child, give the row that username and import again."
    )


def _place_in_class(ctx: ImportContext, user: User, klass: SchoolClass) -> list[Any] | None:
    """Enrol the student in ``klass``; leave this connection's other classes at the school."""
    current = list(
        ctx.session.scalars(
            select(Enrollment).where(
                Enrollment.user_id == user.id,
                Enrollment.school_id == klass.school_id,
                Enrollment.role == "student",
                Enrollment.status == RecordStatus.ACTIVE,
                Enrollment.connection_id == ctx.connection.id,
            )
        )
    )
    in_class = ctx.session.scalars(
        select(Enrollment.id).where(
            Enrollment.user_id == user.id,
            Enrollment.class_id == klass.id,
            Enrollment.role == "student",
            Enrollment.status == RecordStatus.ACTIVE,
        )
    ).first()
    others = [e for e in current if e.class_id != klass.id]
    if in_class is not None and not others:
        return None
    before = []
    for enrollment in others:
        other = ctx.session.get(SchoolClass, enrollment.class_id)
        before.append(other.title if other else enrollment.class_id)
        roster.set_status(ctx.session, ctx.actor, enrollment, RecordStatus.INACTIVE)
    if in_class is None:
        roster.enroll(ctx.session, ctx.actor, user, klass, role="student")
    return [", ".join(before) or None, klass.title]
