"""The import status codes of SPEC §10 in words a school secretary understands, for the
legend page ``/admin/import/codes`` that every import report links to (issue 14, item 11)."""

from __future__ import annotations

STATUS_CODES: tuple[tuple[str, str, str], ...] = (
    ("F001", "The file cannot be read", "Save it again as CSV (UTF-8), Excel .xlsx or a zip."),
    ("F002", "A required column is missing", "Start from the template and keep its headings."),
    ("F003", "The OneRoster manifest is missing or wrong", "Ask whoever made the zip file."),
    (
        "F004",
        "The other system could not be read",
        "It was unreachable or refused the sign-in: check the connection's address and keys.",
    ),
    ("R101", "A required value is empty", "Fill in the cell named in the row."),
    ("R102", "A value is not allowed", "For example a date, a grade or a yes/no answer."),
    ("R103", "The same student is listed twice", "Keep one row per student."),
    ("R104", "The username belongs to another account", "Leave it blank to get a new one."),
    ("R105", "The username is not allowed", "Use letters, digits, dots or dashes."),
    ("R106", "The password is too weak", "Leave it blank and print a temporary one instead."),
    (
        "R107",
        "The student signs in with their school's provider",
        "Their username and password are changed there, not here.",
    ),
    ("R108", "The row names something that does not exist", "Check the class or school name."),
    (
        "R109",
        "This student is managed by another system",
        "For example Clever: change the student there, or it is undone at the next sync.",
    ),
    ("W201", "Will be made inactive", "The student is not in this full list any more."),
    ("W202", "An inactive account will be made active again", "Their history is kept."),
    ("W203", "A value was repaired", "The row shows what was read and what it became."),
    (
        "W204",
        "Possibly the same child as an existing student",
        "An active student with the same name is at the school: check before handing it out.",
    ),
)
