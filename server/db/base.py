"""The declarative base, shared column types and small column helpers."""

from __future__ import annotations

import os
import time
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


def new_record_id() -> str:
    """A time-ordered UUID (version 7, RFC 9562 §5.7) in canonical text form: the id of a
    new roster record (user, org, session, course, class, enrollment).

    Ids made later sort after those made earlier (in one process: strictly), so a record's
    INSERT appends to every index its id is in (its primary key, enrollments by user or
    class, audit events by target) instead of landing on a random page of each (issue 15:
    a first import's INSERTs of users, enrollments and audit events at 20,000 users took
    5.2 s instead of 8.5 s). The first 48 bits are the Unix time in milliseconds (the
    record's creation, which its ``created_at`` shows anyway), the next 12 its fraction
    (RFC 9562 §6.2, method 3), the last 62 random. Other tables' ids stay random
    (:func:`new_id`). Made a pool at a time, emptied in a forked child like :func:`new_id`'s.
    """
    try:
        return _ORDERED.pop()
    except IndexError:
        _ORDERED.extend(reversed(_ordered_ids(256)))
        return _ORDERED.pop()


_ORDERED: list[str] = []
_LAST_STAMP = [0]  # the last 60-bit stamp (milliseconds, then 12 bits of their fraction)


def _ordered_ids(count: int) -> list[str]:
    """``count`` version-7 UUIDs, ascending: consecutive stamps from now (or from just after
    the last one, should the clock step back), each with 62 random bits and the version
    digit ``7`` and variant bits ``10`` set."""
    now = time.time_ns()
    stamp = max(
        (now // 1_000_000) << 12 | (now % 1_000_000) * 4096 // 1_000_000, _LAST_STAMP[0] + 1
    )
    _LAST_STAMP[0] = stamp + count - 1
    hexed, v = os.urandom(8 * count).hex(), _VARIANT
    stamps = map("{:015x}".format, range(stamp, stamp + count))
    return [
        f"{s[:8]}-{s[8:12]}-7{s[12:]}-{v[hexed[i]]}{hexed[i + 1 : i + 4]}-{hexed[i + 4 : i + 16]}"
        for s, i in zip(stamps, range(0, 16 * count, 16), strict=True)
    ]


os.register_at_fork(after_in_child=_POOL.clear)
os.register_at_fork(after_in_child=_ORDERED.clear)


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def fold(text: str) -> str: ...
@overload
def fold(text: None) -> None: ...
def fold(text: str | None) -> str | None:
    """Case-fold a key for case-insensitive unique indexes (usernames, emails, externalIds)."""
    return None if text is None else text.casefold()
