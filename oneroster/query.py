"""The query parameters of a OneRoster collection read (1.1 §3.4, 1.2 §3.3 of the REST binding).

``limit``/``offset`` page, ``sort``/``orderBy`` order, ``fields`` selects top-level fields and
``filter`` narrows with the spec's grammar::

    field op 'value' [AND|OR field op 'value' ...]

``op`` is one of ``= != > >= < <= ~`` (``~`` means "contains"); a quote inside a value is
doubled (``familyName='O''Brien'``); field names may be dotted (``school.sourcedId``). ``AND``
binds tighter than ``OR``, as in SQL; the spec shows one logical operator, we accept any number.

>>> [p.value for p in parse_filter("familyName='O''Brien' AND dateLastModified>'2026-01-01'")[0]]
["O'Brien", '2026-01-01']
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from oneroster.errors import bad_filter, bad_selection
from server.domain.search import MAX_FILTER_TERMS

DEFAULT_LIMIT = 100
OPERATORS = ("!=", ">=", "<=", "=", ">", "<", "~")

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_BARE = re.compile(r"[^\s'\"=!<>~]+")
_LOGICAL = re.compile(r"(AND|OR)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Predicate:
    field: str
    op: str
    value: str


Filter = list[list[Predicate]]
"""A disjunction of conjunctions: ``[[a, b], [c]]`` means ``(a AND b) OR c``."""


@dataclass(frozen=True)
class CollectionQuery:
    """The parsed paging, sorting, field selection and filter of one request."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    sort: str | None = None
    descending: bool = False
    fields: tuple[str, ...] = ()
    filter: Filter = field(default_factory=list)


def parse_query(params: Mapping[str, str], max_limit: int) -> CollectionQuery:
    """Read the query parameters; a malformed one is a 400 (``invalid_selection_field`` for
    paging, sorting and fields, ``invalid_filter_field`` for the filter).

    ``limit`` above ``max_limit`` is lowered to it: the spec lets a provider return fewer
    records than asked, and the Link header tells the client where to continue.
    """
    limit = _integer(params.get("limit"), "limit", DEFAULT_LIMIT, minimum=1)
    offset = _integer(params.get("offset"), "offset", 0, minimum=0)
    order = (params.get("orderBy") or "asc").strip().lower()
    if order not in ("asc", "desc"):
        raise bad_selection(f"orderBy must be 'asc' or 'desc', not {params.get('orderBy')!r}.")
    sort = (params.get("sort") or "").strip() or None
    fields = tuple(name.strip() for name in (params.get("fields") or "").split(",") if name.strip())
    text = params.get("filter")
    return CollectionQuery(
        limit=min(limit, max_limit),
        offset=offset,
        sort=sort,
        descending=order == "desc",
        fields=fields,
        filter=parse_filter(text) if text and text.strip() else [],
    )


def _integer(text: str | None, name: str, default: int, *, minimum: int) -> int:
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text.strip())
    except ValueError:
        raise bad_selection(f"{name} must be a whole number, not {text!r}.") from None
    if value < minimum:
        raise bad_selection(f"{name} must be at least {minimum}.")
    return value


def parse_filter(text: str) -> Filter:
    """Parse a filter expression of at most ``MAX_FILTER_TERMS`` predicates.

    :raises StatusError: (400 ``invalid_filter_field``) malformed or too large.
    """
    groups: Filter = [[]]
    position = 0
    length = len(text)
    for _term in range(MAX_FILTER_TERMS + 1):
        position = _skip_spaces(text, position)
        match = _FIELD.match(text, position)
        if not match:
            raise bad_filter(f"Expected a field name at position {position} of the filter.")
        name = match.group()
        position = _skip_spaces(text, match.end())
        op = next((o for o in OPERATORS if text.startswith(o, position)), None)
        if op is None:
            raise bad_filter(f"Expected one of {' '.join(OPERATORS)} after {name!r}.")
        position = _skip_spaces(text, position + len(op))
        value, position = _value(text, position)
        groups[-1].append(Predicate(name, op, value))
        position = _skip_spaces(text, position)
        if position >= length:
            return groups
        logical = _LOGICAL.match(text, position)
        if not logical:
            raise bad_filter(f"Expected AND or OR at position {position} of the filter.")
        if logical.group(1).upper() == "OR":
            groups.append([])
        position = logical.end()
    raise bad_filter(f"The filter is too large: at most {MAX_FILTER_TERMS} predicates are allowed.")


def _skip_spaces(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _value(text: str, position: int) -> tuple[str, int]:
    """A quoted value with doubled quotes inside, or (leniently) a bare word."""
    if position >= len(text):
        raise bad_filter("A filter predicate has no value.")
    quote = text[position]
    if quote not in ("'", '"'):
        bare = _BARE.match(text, position)
        if not bare:
            raise bad_filter(f"Expected a quoted value at position {position} of the filter.")
        if "\x00" in bare.group():
            raise bad_filter("A filter value cannot hold a NUL character.")
        return bare.group(), bare.end()
    chars: list[str] = []
    position += 1
    while position < len(text):
        char = text[position]
        if char == quote:
            if text.startswith(quote * 2, position):
                chars.append(quote)
                position += 2
                continue
            value = "".join(chars)
            if "\x00" in value:
                raise bad_filter("A filter value cannot hold a NUL character.")
            return value, position + 1
        chars.append(char)
        position += 1
    raise bad_filter("A quoted value in the filter is not closed.")
