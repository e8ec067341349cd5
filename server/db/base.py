"""The declarative base, shared column types and small column helpers."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from typing import Any, overload

from sqlalchemy import JSON, Date, DateTime, MetaData, String, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Base of every Rollcall table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        date: Date(),
        dict[str, Any]: JSONType,
        list[str]: JSONType,
        str: String(255),
    }


def new_id() -> str:
    """A random UUID in its canonical text form: our ids, SCIM ids and default sourcedIds.

    A random version-4 UUID as ``str(uuid.uuid4())`` writes it, made from a pool that one
    ``os.urandom`` fills 256 ids at a time (``uuid4`` per id was 5% of a first import, issue
    15). The pool is emptied in a forked child, so two workers never share its ids.
    """
    try:
        return _POOL.pop()
    except IndexError:
        _POOL.extend(_random_ids(256))
        return _POOL.pop()


_POOL: list[str] = []
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}  # RFC 9562 §4.1


def _random_ids(count: int) -> list[str]:
    """``count`` random version-4 UUIDs: 122 random bits each, the version digit ``4`` and
    the variant bits ``10`` set as RFC 9562 §5.4 says (``uuid.uuid4`` does the same)."""
    hexed, v = os.urandom(16 * count).hex(), _VARIANT
    return [
        f"{hexed[i : i + 8]}-{hexed[i + 8 : i + 12]}-4{hexed[i + 13 : i + 16]}-"
        f"{v[hexed[i + 16]]}{hexed[i + 17 : i + 20]}-{hexed[i + 20 : i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


os.register_at_fork(after_in_child=_POOL.clear)


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def fold(text: str) -> str: ...
@overload
def fold(text: None) -> None: ...
def fold(text: str | None) -> str | None:
    """Case-fold a key for case-insensitive unique indexes (usernames, emails, externalIds)."""
    return None if text is None else text.casefold()
