"""Plain records that file readers hand to the import engine, and the outcome of each row.

Readers (``oneroster/csv_records.py``, :mod:`server.imports.school_csv`) only translate a file's
row into an :class:`ImportRecord`; the engine decides what it means for the database through
the domain services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Outcome:
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DEACTIVATED = "deactivated"
    REACTIVATED = "reactivated"
    ERROR = "error"
    SKIPPED = "skipped"

    ALL = (CREATED, UPDATED, UNCHANGED, DEACTIVATED, REACTIVATED, ERROR, SKIPPED)


# SPEC §10: every code a row or file of a report can carry (served at
# ``GET /admin/api/imports/status-codes`` and listed in the README).
STATUS_CODES = {
    "F001": "file unreadable (encoding, not CSV / not a zip)",
    "F002": "required column missing or a header renamed",
    "F003": "OneRoster manifest missing or inconsistent with the files",
    "F004": "a pull's upstream cannot be read (unreachable, credentials refused, not OneRoster)",
    "R101": "required field empty",
    "R102": "invalid value (enumeration, date, boolean, grade, sourcedId)",
    "R103": "duplicate key inside the file",
    "R104": "username already used by another account",
    "R105": "username breaks the policy",
    "R106": "password breaks the policy",
    "R107": "SSO-linked account: username or password cannot be changed here",
    "R108": "reference to a record that does not exist (class, school, user)",
    "R109": "record owned by another connection",
    "W201": "will be deactivated: missing from a full import",
    "W202": "matches an inactive account, which will be reactivated",
    "W203": "value repaired by lenient reading (from → to); refused with --strict",
}


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
