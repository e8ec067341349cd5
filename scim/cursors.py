"""Keyset cursors of SCIM searches (RFC 9865): a position in the order ``(sort value, id)``.

A cursor carries the direction it reads (``next`` or ``previous``), the sort value of the row
it stands beside and that row's id; :func:`beyond` turns it into the SQL condition of the rows
past it, nulls sorting last as the attribute index sorts them.
"""

from __future__ import annotations

from typing import Any

from scim2_models import InvalidCursorException
from sqlalchemy import ColumnElement, and_, or_

from scim.filters import decode_sort_value, encode_sort_value

Anchor = tuple[Any, str]


def read_position(position: Any) -> tuple[str, Anchor | None]:
    """The direction and anchor of a decoded cursor (``None``: the first page, forwards).

    :raises InvalidCursorException: the cursor is not one this server handed out.
    """
    if position is None:
        return "next", None
    try:
        direction, value, identifier = position["d"], position["k"], position["i"]
    except (TypeError, KeyError):
        raise InvalidCursorException from None
    if direction not in ("next", "previous") or not isinstance(identifier, str):
        raise InvalidCursorException
    return direction, (decode_sort_value(value), identifier)


def position(direction: str, row: Any) -> dict[str, Any]:
    """The cursor of ``row`` (a search row with its sort value ``sv`` and ``id``)."""
    return {"d": direction, "k": encode_sort_value(row.sv), "i": row.id}


def beyond(found: Any, anchor: Anchor, downwards: bool) -> ColumnElement[bool]:
    """Rows after ``anchor`` in the order ``(sv is null, sv, id)``, read up or down."""
    value, identifier = anchor
    sv, rid = found.c.sv, found.c.id
    if value is None:
        if downwards:
            return or_(sv.is_not(None), and_(sv.is_(None), rid < identifier))
        return and_(sv.is_(None), rid > identifier)
    if downwards:
        return and_(sv.is_not(None), or_(sv < value, and_(sv == value, rid < identifier)))
    return or_(sv.is_(None), sv > value, and_(sv == value, rid > identifier))
