"""The comparison form of SCIM values, shared by the index writer and the filter translator.

A filter value and a stored value must land in the same form for SQL to compare them as
``ScimFilter.match`` does: strings through the policy's comparison key (case-folded unless the
attribute is caseExact; ``externalId`` is folded too, since identity providers change its case),
booleans as ``true``/``false`` (and 0/1), numbers as numbers, datetimes as ISO 8601 UTC.
"""

from __future__ import annotations

import datetime
from typing import Any

from scim2_models import AttributeBinding

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:user"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:group"
FOLDED_ALWAYS = frozenset({f"{CORE_USER}:externalid", f"{CORE_GROUP}:externalid"})
# Attributes every filter and sort compares on the record's own folded column, never on index
# rows (:func:`scim.filters.column_for`, on users, groups and classes alike): the index holds
# no rows of them (issue 15: two of a created user's 14 entries in ix_scim_values_lookup).
COLUMN_PATHS = frozenset(
    {
        f"{CORE_USER}:username",
        f"{CORE_USER}:externalid",
        f"{CORE_GROUP}:externalid",
        f"{CORE_GROUP}:displayname",
    }
)

# A user's ``active`` is its status column (``users.status``): every filter on it compares the
# column (:func:`scim.filters._active`) and a sort by it reads the column too
# (:func:`scim.filters.sort_expression`), so the index holds no row of it (issue 15: a create
# wrote one, and each PATCH of ``active`` rewrote it, for a sort alone).
STATUS_PATHS = frozenset({f"{CORE_USER}:active"})


def path_key(binding: AttributeBinding) -> str:
    """The index path of an attribute: its full URN, lower-cased."""
    return binding.urn.lower()


def comparison_form(
    binding: AttributeBinding, value: Any, path: str | None = None
) -> tuple[str | None, float | None]:
    """``(text, number)`` of a value as the index stores it and a filter compares it;
    ``path``: the binding's :func:`path_key`, when known."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return ("true" if value else "false"), float(value)
    if isinstance(value, int | float):
        return None, float(value)
    if isinstance(value, datetime.datetime):
        return datetime_text(value), None
    if isinstance(value, bytes):
        return None, None
    if isinstance(value, str):
        try:
            text = binding.comparable(value)
        except ValueError:
            return None, None
        if not isinstance(text, str):
            text = str(text)
        if (path or path_key(binding)) in FOLDED_ALWAYS:
            text = text.casefold()
        return text, None
    return str(value), None


def datetime_text(value: datetime.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
