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
    ("F010", "The file is too large", "Split it, or ask IT to import it with the command line."),
    (
        "F011",
        "The zip file unpacks to too much data",
        "Check that it is the right file; a real roster is far smaller.",
    ),
    ("F012", "One file inside is too large", "Split it, or ask IT to raise the limit."),
    ("F013", "The zip file holds too many files", "A roster zip holds a few CSV files only."),
    (
        "F014",
        "The zip file is packed suspiciously tightly",
        "It is probably not a roster export: ask whoever made it.",
    ),
    ("F015", "A line of the file is far too long", "Check the file in a spreadsheet program."),
    ("F016", "A row has far too many cells", "Delete the empty columns at the right."),
    ("F017", "The file has too many rows", "Split it, or ask IT to raise the limit."),
    (
        "F018",
        "The other system sent too much at once",
        "Ask IT: a page of its answer was larger than the limit.",
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
    ("W210", "An empty line was skipped", "Nothing to do, unless a student is missing."),
    (
        "W204",
        "Possibly the same child as an existing student",
        "An active student with the same name is at the school: check before handing it out.",
    ),
    (
        "W205",
        "The username belongs to a different person",
        "The row was skipped and the other child left as they are: leave Username blank for a "
        "new student, or correct the name if it is the same child.",
    ),
)
