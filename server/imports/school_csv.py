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
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from xml.sax import SAXException

from sqlalchemy import func, select

from server.db import User, fold
from server.domain import users
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
from server.imports.contract import (
    Deactivation,
    ImportContext,
    ImportOptions,
    Progress,
    Step,
)
from server.imports.read_ahead import Spool, replay
from server.imports.school_columns import (
    COLUMNS,
    COMMENT,
    FILE,
    FLAGS,
    OPTIONAL,
    REQUIRED,
    XLSX_COLUMNS,
    _cell_text,
    _columns,
    _translate,
    split_name,
    template,
    year_group,
)
from server.imports.school_rows import _prefetch, _school_id, _students_in_scope, handle_student

__all__ = [
    "COLUMNS",
    "FLAGS",
    "OPTIONAL",
    "REQUIRED",
    "SchoolCsvSource",
    "split_name",
    "template",
    "year_group",
]


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

    def read_ahead(
        self,
        options: ImportOptions,
        check: Progress | None = None,
        snapshot: ImportContext | None = None,
    ) -> None:
        """Check and read the file now, before the write transaction (issue 11 item 6); the
        school CSV has no row hashes, so ``snapshot`` is not used."""
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
            deactivate_many=lambda c, batch: users.deactivate_users(
                c.session, c.actor, batch, reason="Missing from a full import."
            ),
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
