"""Enumerations shared by every surface: OneRoster roles, CEDS grades, statuses, org types."""

from __future__ import annotations

from datetime import date

from server.errors import InvalidValue

# OneRoster 1.2 role vocabulary (1.1's roles are a subset).
ROLES = (
    "administrator",
    "aide",
    "counselor",
    "guardian",
    "parent",
    "proctor",
    "relative",
    "student",
    "teacher",
    "districtAdministrator",
    "principal",
    "siteAdministrator",
    "systemAdministrator",
)
STAFF_LIKE_ROLES = frozenset(ROLES) - {"student", "guardian", "parent", "relative"}

# CEDS Entry Grade Level codes, as OneRoster uses them.
GRADES = (
    "IT",
    "PR",
    "PK",
    "TK",
    "KG",
    "01",
    "02",
    "03",
    "04",
    "05",
    "06",
    "07",
    "08",
    "09",
    "10",
    "11",
    "12",
    "13",
    "PS",
    "UG",
    "Other",
)

ORG_TYPES = ("department", "district", "local", "national", "school", "state", "technicalCenter")
SESSION_TYPES = ("gradingPeriod", "semester", "schoolYear", "term")
CLASS_TYPES = ("homeroom", "scheduled")
ENROLLMENT_ROLES = ("administrator", "proctor", "student", "teacher", "aide", "guardian")
# The 1.2 enrollment vocabulary (``EnrollmentDType.role`` of 1EdTech's 1.2 Rostering OpenAPI, the
# 1.2.1 CSV enrollments table): 1.1's ``aide`` is gone. A 1.2 source cannot send it; an aide
# stored from a 1.1 source reads as a non-primary teacher (``oneroster/render.py``).
ENROLLMENT_ROLES_1P2 = ("administrator", "proctor", "student", "teacher")


# casefolded spelling -> canonical spelling, the first of ``ROLES`` for each
_ROLES_FOLDED: dict[str, str] = {}
for _role in ROLES:
    _ROLES_FOLDED.setdefault(_role.casefold(), _role)


def check_role(role: str, field: str = "role") -> str:
    """The canonical spelling of ``role``; anything else (``None`` too) is refused, naming
    ``field``."""
    known = _ROLES_FOLDED.get(role.casefold()) if isinstance(role, str) else None
    if known is not None:
        return known
    raise InvalidValue(f"Unknown role {role!r}; expected one of {', '.join(ROLES)}.", field=field)


def check_grade(grade: str) -> str:
    """Normalise a grade to its CEDS code: ``"3"`` and ``"03"`` become ``"03"``.

    A UK "Year Group" of 1 to 13 is a number and lands on the same codes.
    """
    text = grade.strip()
    if text.isdigit() and 0 < int(text) <= 13:
        return f"{int(text):02d}"
    for known in GRADES:
        if text.casefold() == known.casefold():
            return known
    raise InvalidValue(
        f"Unknown grade {grade!r}; expected a CEDS code such as KG, 01 … 13.", field="grades"
    )


def check_choice(value: str, choices: tuple[str, ...], field: str) -> str:
    for known in choices:
        if value.casefold() == known.casefold():
            return known
    raise InvalidValue(
        f"Invalid {field} {value!r}; expected one of {', '.join(choices)}.", field=field
    )


def parse_date(value: date | str | None, field: str) -> date | None:
    """Accept a date or an ISO ``YYYY-MM-DD`` string; empty means no date."""
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise InvalidValue(
            f"Invalid date {value!r} for {field}; use YYYY-MM-DD.", field=field
        ) from None


def check_text(value: str | None, field: str) -> str | None:
    """Refuse text no database stores: PostgreSQL text cannot hold NUL characters.

    >>> check_text("Ada", "given_name")
    'Ada'
    """
    if value is not None and "\x00" in value:
        raise InvalidValue(f"The {field} contains a NUL character.", field=field)
    return value


def check_texts(values: object, field: str = "request") -> None:
    """``check_text`` over every string inside nested lists and dicts (a JSON body)."""
    if isinstance(values, str):
        check_text(values, field)
    elif isinstance(values, dict):
        for key, value in values.items():
            check_text(str(key), field)
            if type(value) is not str and value is not None:
                check_texts(value, str(key))
            elif value is not None and "\x00" in value:  # a plain text: no call (issue 15)
                check_text(value, str(key))
    elif isinstance(values, list | tuple):
        for value in values:
            check_texts(value, field)
