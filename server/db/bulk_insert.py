"""Many rows into one table with one DBAPI ``executemany`` (issue 15).

A Core ``executemany`` through SQLAlchemy builds a parameter dict per row and runs every
value through its type's bind processor one row at a time (``construct_params``): on a first
import that cost more than SQLite spent storing the rows. Here the SQL of a table and a column
list is written once per dialect, each column's values are converted together by the same
bind processors SQLAlchemy uses (so JSON is serialised, ``None`` in a JSON column stored as
``null``, datetimes made UTC and, on SQLite, stored in SQLAlchemy's own text format, byte for
byte), and the tuples go to the driver in one ``executemany`` on the session's connection
(sqlite3 runs it in C). On PostgreSQL an INSERT sends up to :data:`ROWS_PER_INSERT` rows in
one statement of many ``VALUES`` instead, and an UPDATE sends them as one
``UPDATE ... FROM (VALUES ...)``: psycopg 3's ``executemany`` is one statement per row, and
the roster triggers run once per statement. The statements still pass through the
connection's events, so statement counts and logs see them.

Rows are tuples in the order of ``columns``, or dicts that all hold every column (what a Core
``executemany`` needs too). A value of :class:`JSONText` in a JSON column is JSON its caller
serialised already (the audit log's ``changes``): it is stored as it is.

Example::

    insert_rows(session, AuditEvent.__table__, ("id", "action"), [(1, "user.create")])
    insert_dicts(session, User.__table__, [{"id": "…", "username": "ann", …}, …])
    update_rows(session, User.__table__, ("content_hash",), "id", [("ab12…", "u1")])
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import repeat
from operator import is_, itemgetter
from typing import Any

from sqlalchemy import JSON, Date, DateTime, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

Convert = Callable[[Any], Any]


class JSONText(str):
    """JSON text serialised by the caller, written to a JSON column as it is."""


@dataclass(frozen=True)
class _Plan:
    """The SQL of one statement for one dialect, and each parameter's converter; ``rows``:
    rows a statement of many ``VALUES`` sends at once (1: an ``executemany`` of ``sql``), as
    ``head``, one ``row`` per row joined by commas, and ``tail``."""

    sql: str
    converters: tuple[Convert | None, ...]
    rows: int = 1
    head: str = ""
    row: str = ""
    tail: str = ""


# PostgreSQL: rows of one multi-row INSERT, within the protocol's 65,535 parameters
ROWS_PER_INSERT = 1000
_PARAMETERS = 65535


_PLANS: dict[tuple[Any, ...], _Plan] = {}


def insert_rows(
    session: Session, table: Any, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """INSERT ``rows`` (tuples in the order of ``columns``) with one ``executemany``."""
    connection = session.connection()
    plan = _plan(connection.dialect, table, tuple(columns), None)
    _execute(connection, plan, rows)


def insert_dicts(session: Session, table: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT ``rows`` (dicts with the same keys, one per column written)."""
    if rows:
        columns = tuple(rows[0])
        pick = itemgetter(*columns)
        values = map(pick, rows) if len(columns) > 1 else ((pick(row),) for row in rows)
        insert_rows(session, table, columns, values)


def update_rows(
    session: Session,
    table: Any,
    columns: Sequence[str],
    key: str | Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> int:
    """UPDATE ``columns`` of the rows whose ``key`` column (or columns) match, one
    ``executemany`` (PostgreSQL: one ``UPDATE ... FROM (VALUES ...)`` per
    :data:`ROWS_PER_INSERT` rows); each of ``rows`` is ``(*values of columns, *keys)``, and a
    column may be both set and matched (a version). Returns the number of rows changed."""
    connection = session.connection()
    keys = (key,) if isinstance(key, str) else tuple(key)
    plan = _plan(connection.dialect, table, tuple(columns), keys)
    return _execute(connection, plan, rows)


def _execute(connection: Any, plan: _Plan, rows: Iterable[Sequence[Any]]) -> int:
    params = _converted(plan.converters, rows)
    if len(params) > 1 and plan.rows > 1:
        return _insert_in_statements(connection, plan, params)
    if params:
        return int(connection.exec_driver_sql(plan.sql, params).rowcount)
    return 0


def _insert_in_statements(connection: Any, plan: _Plan, params: list[tuple[Any, ...]]) -> int:
    """The rows as statements of up to ``plan.rows`` rows each (PostgreSQL): psycopg 3's
    ``executemany`` runs one statement per row, and each ran the roster triggers, which
    PostgreSQL runs once per statement (``roster_changed_<table>``, migration 0014): 37x the
    server's CPU of one statement per 1,000 rows (issue 15)."""
    changed = 0
    for start in range(0, len(params), plan.rows):
        chunk = params[start : start + plan.rows]
        values = tuple(value for row in chunk for value in row)
        sql = _rows_sql(plan.head, plan.row, plan.tail, len(chunk))
        changed += connection.exec_driver_sql(sql, values).rowcount
    return changed


@functools.lru_cache(maxsize=256)
def _rows_sql(head: str, row: str, tail: str, count: int) -> str:
    """A statement of ``count`` rows of ``VALUES``."""
    return f"{head}{', '.join([row] * count)}{tail}"


def _converted(
    converters: tuple[Convert | None, ...], rows: Iterable[Sequence[Any]]
) -> list[tuple[Any, ...]]:
    """The rows with every value converted, a column at a time (``map`` runs in C)."""
    rows = rows if isinstance(rows, list) else list(rows)
    if not rows or not any(converters):
        return [tuple(row) for row in rows]
    columns = [
        _column(convert, values) if convert is not None else values
        for convert, values in zip(converters, zip(*rows, strict=True), strict=True)
    ]
    return list(zip(*columns, strict=True))


def _column(convert: Convert, values: tuple[Any, ...]) -> list[Any]:
    """A column's values converted; one object in every row (a batch's ``created_at``, a
    shared ``None``) is converted once (a third of the conversions of a first import)."""
    first = values[0]
    if all(map(is_, values, repeat(first))):  # in C, stops at the first other object
        return [convert(first)] * len(values)
    return list(map(convert, values))


def _plan(
    dialect: Dialect, table: Table, columns: tuple[str, ...], keys: tuple[str, ...] | None
) -> _Plan:
    """The SQL and converters of a statement, made once per dialect kind, table and columns
    (an engine's JSON serializer is the dialect's default: Rollcall sets none)."""
    cache_key = (dialect.name, dialect.driver, table.fullname, columns, keys)
    plan = _PLANS.get(cache_key)
    if plan is None:
        plan = _PLANS[cache_key] = _make_plan(dialect, table, columns, keys)
    return plan


def _make_plan(
    dialect: Dialect, table: Table, columns: tuple[str, ...], keys: tuple[str, ...] | None
) -> _Plan:
    quote = dialect.identifier_preparer.quote
    name = dialect.identifier_preparer.format_table(table)
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    if dialect.paramstyle not in ("qmark", "format", "pyformat"):
        raise NotImplementedError(f"paramstyle {dialect.paramstyle!r}")
    written = columns if keys is None else (*columns, *keys)
    converters = tuple(_converter(dialect, table.c[column].type) for column in written)
    if dialect.paramstyle != "qmark":  # PostgreSQL (sqlite3 runs executemany in C)
        return _many_values_plan(dialect, table, columns, keys, converters)
    if keys is None:
        names = ", ".join(quote(column) for column in columns)
        sql = f"INSERT INTO {name} ({names}) VALUES ({', '.join(mark for _ in columns)})"
    else:
        assignments = ", ".join(f"{quote(column)} = {mark}" for column in columns)
        matched = " AND ".join(f"{quote(key)} = {mark}" for key in keys)
        sql = f"UPDATE {name} SET {assignments} WHERE {matched}"
    return _Plan(sql, converters)


def _many_values_plan(
    dialect: Dialect,
    table: Table,
    columns: tuple[str, ...],
    keys: tuple[str, ...] | None,
    converters: tuple[Convert | None, ...],
) -> _Plan:
    """An INSERT of many ``VALUES``, or an ``UPDATE ... FROM (VALUES ...) AS v`` joined on
    ``keys`` (each value cast to its column's type: a parameter alone has none; the values
    named ``v0``, ``v1``, ... in order, so that a column may be both set and matched)."""
    quote = dialect.identifier_preparer.quote
    name = dialect.identifier_preparer.format_table(table)
    written = columns if keys is None else (*columns, *keys)
    rows = max(1, min(ROWS_PER_INSERT, _PARAMETERS // max(1, len(written))))
    if keys is None:
        row = f"({', '.join('%s' for _ in written)})"
        head = f"INSERT INTO {name} ({', '.join(quote(column) for column in columns)}) VALUES "
        return _Plan(head + row, converters, rows, head, row, "")
    types = [table.c[column].type.compile(dialect=dialect) for column in written]
    row = f"({', '.join(f'CAST(%s AS {type_})' for type_ in types)})"
    assignments = ", ".join(f"{quote(column)} = v.v{i}" for i, column in enumerate(columns))
    matched = " AND ".join(
        f"{name}.{quote(key)} = v.v{i}" for i, key in enumerate(keys, start=len(columns))
    )
    aliases = ", ".join(f"v{i}" for i in range(len(written)))
    head = f"UPDATE {name} SET {assignments} FROM (VALUES "
    tail = f") AS v ({aliases}) WHERE {matched}"
    return _Plan(head + row + tail, converters, rows, head, row, tail)


def _converter(dialect: Dialect, type_: Any) -> Convert | None:
    """The bind processor SQLAlchemy would run for ``type_``, with a shortcut for the
    values imports write most (UTC datetimes and dates on SQLite, JSON already serialised)
    that gives the very same result."""
    impl = type_.dialect_impl(dialect)
    process = impl.bind_processor(dialect)
    base = getattr(impl, "impl_instance", impl)
    if isinstance(base, JSON) and process is not None:
        return _json_text(dialect, process, binary=base.__visit_name__ == "JSONB")
    if dialect.name != "sqlite" or process is None:
        return process
    if isinstance(base, DateTime) and _same_format(process, datetime(2001, 2, 3, 4, 5, 6, 7, UTC)):
        return _utc_text(process)
    plain_date = isinstance(base, Date) and not isinstance(base, DateTime)
    if plain_date and _same_format(process, date(987, 6, 5)):
        return _date_text(process)
    return process


def _same_format(process: Convert, sample: date) -> bool:
    """Whether the shortcut writes what SQLAlchemy's processor writes (a DateTime declared
    with another ``storage_format`` keeps SQLAlchemy's own processor)."""
    if isinstance(sample, datetime):
        return bool(process(sample) == sample.replace(tzinfo=None).isoformat(" ", "microseconds"))
    return bool(process(sample) == sample.isoformat())


def _utc_text(process: Convert) -> Convert:
    def convert(value: Any) -> Any:
        if type(value) is datetime and value.tzinfo is UTC:
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")
        if value is None:
            return None
        return process(value)  # another zone, a naive datetime (refused)

    return convert


def _date_text(process: Convert) -> Convert:
    def convert(value: Any) -> Any:
        if type(value) is date:
            return value.isoformat()
        return None if value is None else process(value)

    return convert


def _json_text(dialect: Dialect, process: Convert, *, binary: bool) -> Convert:
    if dialect.driver == "psycopg":
        from psycopg.types.json import Json, Jsonb

        wrap = Jsonb if binary else Json

        def as_is(text: str) -> str:
            return text

        def convert(value: Any) -> Any:
            return wrap(value, dumps=as_is) if type(value) is JSONText else process(value)

        return convert

    empty = process({})  # '{}': the usual ``extra`` of a new record

    def convert_text(value: Any) -> Any:
        if type(value) is JSONText:
            return str(value)
        return empty if type(value) is dict and not value else process(value)

    return convert_text
