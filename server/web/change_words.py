"""An import report's changed fields in a secretary's words (issue 14, item 11).

The engine stores each row's changes as ``{field: [before, after]}`` in the domain's names;
the report page shows them as ``Pupil Premium: No → Yes``: field labels in words, booleans as
Yes/No, nothing as "(empty)", a dict (the demographic flags) one line per key that changed.

>>> change_lines({"demographic_flags": [{}, {"pupil_premium": True}], "grades": [None, ["04"]]})
['Pupil Premium: (empty) → Yes', 'Year group: (empty) → 04']
"""

from __future__ import annotations

from typing import Any

from server.imports.school_csv import FLAGS

EMPTY = "(empty)"
LABELS = {
    "username": "Username",
    "given_name": "First name",
    "family_name": "Last name",
    "middle_name": "Middle name",
    "preferred_given_name": "Preferred first name",
    "preferred_family_name": "Preferred last name",
    "email": "Email",
    "phone": "Phone",
    "sms": "Mobile phone",
    "identifier": "SIS number",
    "birth_date": "Birth date",
    "grades": "Year group",
    "gender": "Gender",
    "sex": "Sex",
    "ethnicity": "Ethnicity",
    "class": "Class",
    "status": "Status",
    "enabled": "Can sign in",
    "primary_role": "Role",
    "roles": "Roles",
    "sourced_id": "SIS id",
    "external_id": "Provider id",
    "title": "Title",
    "school_id": "School",
    "connection": "Managed by",
}
# The school CSV's Yes/No columns name the flags staff know ("Pupil Premium", "SEND", "EAL").
FLAG_LABELS = {flag: column for column, flag in FLAGS.items()}


def change_lines(changes: dict[str, Any] | None) -> list[str]:
    """One ``Label: before → after`` line per changed field (per key for a dict)."""
    lines: list[str] = []
    for field, change in (changes or {}).items():
        before, after = (
            change if isinstance(change, list | tuple) and len(change) == 2 else (None, change)
        )
        if field == "password":
            lines.append("Password: a new password is set")
        elif isinstance(before, dict) or isinstance(after, dict):
            lines.extend(_dict_lines(before or {}, after or {}))
        else:
            lines.append(f"{label(field)}: {words(before)} → {words(after)}")
    return lines


def _dict_lines(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    keys = sorted(set(before) | set(after))
    return [
        f"{FLAG_LABELS.get(key, label(key))}: {words(before.get(key))} → {words(after.get(key))}"
        for key in keys
        if before.get(key) != after.get(key)
    ]


def label(field: str) -> str:
    """``"given_name"`` -> ``"First name"``; an unknown field in words, ``"home_room"`` ->
    ``"Home room"``."""
    return LABELS.get(field) or field.replace("_", " ").strip().capitalize()


def words(value: Any) -> str:
    """A value as staff read it: Yes/No, a list joined with commas, "(empty)" for nothing."""
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list | tuple):
        return ", ".join(words(item) for item in value)
    if isinstance(value, dict) and "role" in value:
        return str(value["role"])  # a role at a school; the school's id means nothing to staff
    if isinstance(value, dict):
        return ", ".join(f"{label(k)} {words(v)}" for k, v in sorted(value.items()))
    return str(value)
