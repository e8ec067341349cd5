"""Plain records that file readers hand to the import engine, and the outcome of each row.

Readers (``oneroster/csv_records.py``, :mod:`server.imports.school_csv`) only translate a file's
row into an :class:`ImportRecord`; the engine decides what it means for the database through
the domain services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum, nonmember
from typing import Any


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DEACTIVATED = "deactivated"
    REACTIVATED = "reactivated"
    ERROR = "error"
    SKIPPED = "skipped"

    ALL = nonmember((CREATED, UPDATED, UNCHANGED, DEACTIVATED, REACTIVATED, ERROR, SKIPPED))


class FileProblem(Exception):
    """The file itself cannot be read: F001 unreadable, F002 headers, F003 manifest."""

    def __init__(self, code: str, message: str, file: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.file = file


class RowProblem(Exception):
    """A row a reader cannot translate: a required cell is empty (R101) or malformed (R102)."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass
class ImportRecord:
    """One row of a file, translated: what kind of record, its key and its fields.

    ``fields`` use the domain's names; references to other records are given by the keys the
    file uses (``school_key``, ``class_key``…), resolved by the engine. ``status`` is
    ``active`` or ``tobedeleted`` (OneRoster delta); ``enabled`` is OneRoster ``enabledUser``.
    """

    file: str
    number: int
    kind: str
    key: str
    fields: dict[str, Any] = field(default_factory=dict)
    refs: dict[str, Any] = field(default_factory=dict)
    status: str = "active"
    password: str | None = None
    enabled: bool | None = None
    repairs: list[str] = field(default_factory=list)  # W203 texts: what lenient reading fixed
    # What the row's outcome depends on, as read (issue 15): the digest of its cells (with the
    # file, reader version and mode) and the keys it names per kind; None: always apply it
    source: Source | None = None


# (digest of a row's cells, ((kind, keys it names), ...)): see ``oneroster/csv_records.py``
Source = tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]


@dataclass(frozen=True, slots=True)
class Sighted:
    """A row the read-ahead found unchanged against a read snapshot, before translating it
    (issue 15): the engine confirms it in the write transaction and reports it unchanged,
    or translates it then and applies it. Kept small (it is spooled): ``refs`` are the keys
    the row names joined by ``\\x1f``, ``line`` its cells joined by ``\\x1f`` in the order
    of ``columns``."""

    file: str
    number: int
    key: str
    repairs: list[str]
    refs: str
    columns: tuple[str, ...]
    line: str

    def cells(self) -> dict[str, str]:
        """The row's cells as read."""
        return dict(zip(self.columns, self.line.split("\x1f"), strict=True))


@dataclass(frozen=True)
class RowResult:
    """The outcome of one row (or of one record a full import deactivates)."""

    file: str | None
    row_number: int | None
    record_key: str | None
    outcome: str
    code: str | None = None
    message: str | None = None
    changes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "row": self.row_number,
            "key": self.record_key,
            "outcome": self.outcome,
            "code": self.code,
            "message": self.message,
            "changes": self.changes,
        }


EMPTY_LINE = "W210"


def empty_line(file: str, number: int) -> RowResult:
    """The report's row for an empty line (or one of empty cells): skipped, and said so."""
    return RowResult(
        file,
        number,
        None,
        Outcome.SKIPPED,
        EMPTY_LINE,
        f"Line {number} is empty: skipped. Remove empty lines from the file.",
    )
