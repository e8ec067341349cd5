"""The school CSV's columns and one row's translation into an import record (see
:mod:`server.imports.school_csv` for what each column means)."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from server.db import fold
from server.domain.import_records import (
    FileProblem,
    ImportRecord,
    RowProblem,
)
from server.domain.vocabulary import check_grade

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
