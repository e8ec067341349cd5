"""Unchanged rows of an import cost next to nothing (SPEC §5: a push sent twice changes
nothing the second time; issue 15: a nightly full sync of an unchanged district).

When an import has written a record, or found it unchanged, it keeps a hash of what the row
said sealed with the record's ``version`` after the write (:func:`remember`). The next import
of the same content finds the same hash only while nothing has changed the record since: every
change through any surface (SCIM, staff, another file of the package) bumps ``version``. Such a
row is reported unchanged without being loaded or diffed (:func:`unchanged`).

Rules, decided here only:

- only an **active** record owned by the **importing connection** is skipped: a row for an
  inactive record reactivates it (W202), one for another connection's record is R109;
- the caller hashes everything the row's outcome depends on (its fields, the references it
  resolved, the options that change its meaning) and never skips a row that carries a
  password (the stored password may have been changed since; only a check can tell).

Example::

    found = stored(session, User, tenant_id, ["u1", "u2"])
    if unchanged(actor, found.get("u1"), digest({"fields": fields})): ...
    remember(session, User, [(user.id, digest({"fields": fields}), user.version)])
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import String, bindparam, func, select, true
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from server.db import Enrollment, RecordStatus, SchoolClass, User
from server.db.bulk_insert import update_rows
from server.domain import record_refs
from server.domain.actors import Actor

STORED_COLUMNS = ("sourced_id", "id", "connection_id", "status", "version", "content_hash")


class Stored(NamedTuple):
    """What :func:`unchanged` needs of a stored record, read without loading it (a tuple:
    a batch reads a thousand of them)."""

    id: str
    connection_id: str
    status: str
    version: int
    content_hash: str | None


def digest(content: Mapping[str, Any]) -> str:
    """A stable hash of a row's content (dates, dataclasses and sets included).

    >>> digest({"b": 1, "a": [2]}) == digest({"a": [2], "b": 1})
    True
    """
    return hashlib.sha256(_ENCODER.encode(content).encode()).hexdigest()


def row_digest(source: str, ids: Iterable[str]) -> str:
    """The hash of a row known by the digest of its cells as read (``source``) and the ids of
    the records it names now: no JSON, a nightly sync computes one per row."""
    return hashlib.sha256(f"{source}:{','.join(ids)}".encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return repr(value)


# json.dumps with these options builds an encoder per call; one is enough
_ENCODER = json.JSONEncoder(sort_keys=True, default=_plain, separators=(",", ":"))


def sealed(row_digest: str, version: int) -> str:
    """The stored hash: the row's digest bound to the version the write left."""
    return hashlib.sha256(f"{row_digest}:{version}".encode()).hexdigest()


def stored(session: Session, model: Any, tenant_id: str, keys: Iterable[str]) -> dict[str, Stored]:
    """sourcedId -> :class:`Stored` for the tenant's records of ``model`` among ``keys``
    (one SELECT per 900 keys, nothing loaded into the session)."""
    rows = record_refs.rows_named(session, _stored_query(model), tenant_id, keys)
    return {row[0]: Stored._make(row[1:]) for row in rows}


@functools.cache
def _stored_query(model: Any) -> Any:
    """The SELECT of :func:`stored`, built once per model: its keys are one expanding
    parameter, so a batch's 500 keys are not each made into a SQL literal object."""
    table = model.__table__
    return select(*(table.c[name] for name in STORED_COLUMNS)).where(
        table.c.tenant_id == bindparam("tenant"),
        table.c.sourced_id.in_(bindparam("keys", expanding=True)),
    )


def stored_all(session: Session, model: Any, tenant_id: str) -> dict[str, Stored]:
    """sourcedId -> :class:`Stored` of every record of ``model`` in the tenant, in one
    SELECT: what the rows of a whole file name (a read-ahead's users and classes)."""
    table = model.__table__
    columns = (table.c[name] for name in STORED_COLUMNS)
    statement = select(*columns).where(table.c.tenant_id == tenant_id)
    rows = session.connection().execute(statement).all()
    return {row[0]: Stored._make(row[1:]) for row in rows}


def stored_hashes(
    session: Session, model: Any, actor: Actor, keys: list[str]
) -> dict[str, tuple[int, str]]:
    """sourcedId -> (version, stored hash) of the records among ``keys`` that a row may leave
    alone (the rules of :func:`unchanged`: active, owned by the importing connection), in one
    SELECT per 900 keys; empty for any other actor."""
    if actor.kind != "connection":
        return {}
    # by (tenant, sourcedId): the unique index, not the owner's
    rows = record_refs.rows_named(session, _stored_query(model), actor.tenant_id, keys)
    owner, active = actor.connection_id, RecordStatus.ACTIVE
    return {
        key: (version, content_hash)
        for key, _, connection_id, status, version, content_hash in rows
        if connection_id == owner and status == active and content_hash is not None
    }


def matches(found: tuple[int, str] | None, row_digest: str | None) -> bool:
    """:func:`unchanged` for what :func:`stored_hashes` found."""
    return found is not None and row_digest is not None and found[1] == sealed(row_digest, found[0])


def matches_row(found: tuple[int, str], source: str, ids: list[str]) -> bool:
    """:func:`matches` of the :func:`row_digest` of ``source`` and ``ids``."""
    return found[1] == sealed(row_digest(source, ids), found[0])


Linked = tuple[dict[str, Stored], dict[str, Stored], dict[str, Stored]]


def stored_enrollments(session: Session, tenant_id: str, keys: Iterable[str]) -> Linked:
    """What :func:`stored` gives for the tenant's enrollments among ``keys``, for the users
    they name and for the classes they name (three dicts by sourcedId), in one SELECT per 900
    keys: an unchanged batch names the same users and classes as it did. A user or class
    named by many enrollments is read into one :class:`Stored`."""
    enrollments: dict[str, Stored] = {}
    people: dict[str, Stored] = {}
    classes: dict[str, Stored] = {}
    query = _linked_query(session.get_bind().dialect.name)
    for row in record_refs.rows_named(session, query, tenant_id, keys):
        enrollments[row[0]] = Stored._make(row[1:6])
        if row[6] is not None and row[6] not in people:
            people[row[6]] = Stored._make(row[7:12])
        if row[12] is not None and row[12] not in classes:
            classes[row[12]] = Stored._make(row[13:18])
    return enrollments, people, classes


@functools.cache
def _linked_query(dialect: str) -> Any:
    """The SELECT of :func:`stored_enrollments` for ``dialect``, built once: the enrollments
    named, each joined to its user and its class by id (:func:`_probes` on PostgreSQL)."""
    enrollments, people, classes = Enrollment.__table__, User.__table__, SchoolClass.__table__
    if dialect == "postgresql":
        return _probes()
    return (
        select(
            *(table.c[name] for table in (enrollments, people, classes) for name in STORED_COLUMNS)
        )
        .join_from(enrollments, people, people.c.id == enrollments.c.user_id)
        .join(classes, classes.c.id == enrollments.c.class_id)
        .where(
            enrollments.c.tenant_id == bindparam("tenant"),
            enrollments.c.sourced_id.in_(bindparam("keys", expanding=True)),
        )
    )


def _probes() -> Any:
    """PostgreSQL's SELECT of :func:`stored_enrollments`: the keys (``unnest(:keys)``, one
    array parameter), then for each key its enrollment by the unique (tenant, sourcedId)
    index, then that enrollment's user and class by id: one index lookup each, in this
    order, whatever the planner believes of the tables.

    During a first import the statistics lag the import's own transaction (no column
    statistics: the tenant's rows look like 0.5% of a table they fill; a plan cached by a
    prepared statement while the tables were empty). Joined in one SELECT with an ``IN``
    list, the enrollments were read as every enrollment of the tenant, filtered, once per
    batch or once per user (2,000 users: 8 of 11 s of the server's CPU, issue 15). Each
    LATERAL subquery keeps its ``OFFSET``, so the planner cannot merge it into a join it
    would reorder: it runs once per row before it, by the index its equality names."""
    array = bindparam("keys", type_=postgresql.ARRAY(String))
    keys = func.unnest(array).table_valued("key").render_derived(name="k")  # AS k(key)
    enrollments, people, classes = Enrollment.__table__, User.__table__, SchoolClass.__table__
    named = _lookup(
        enrollments,
        ("user_id", "class_id"),
        enrollments.c.tenant_id == bindparam("tenant"),
        enrollments.c.sourced_id == keys.c.key,
    )
    person = _lookup(people, (), people.c.id == named.c.user_id)
    group = _lookup(classes, (), classes.c.id == named.c.class_id)
    joined = keys.join(named, true()).join(person, true()).join(group, true())
    found = (named, person, group)
    return select(*(table.c[name] for table in found for name in STORED_COLUMNS)).select_from(
        joined
    )


def _lookup(table: Any, more: tuple[str, ...], *where: Any) -> Any:
    """A LATERAL subquery of :data:`STORED_COLUMNS` (and ``more``) of ``table`` where
    ``where``; ``OFFSET 0`` keeps it a subquery of its own (see :func:`_probes`)."""
    columns = (table.c[name] for name in (*STORED_COLUMNS, *more))
    return select(*columns).where(*where).offset(0).lateral(f"{table.name}_found")


def unchanged(actor: Actor, record: Stored | None, row_digest: str | None) -> bool:
    """True when the row may be reported unchanged without being applied (see the rules)."""
    return (
        record is not None
        and row_digest is not None
        and record.status == RecordStatus.ACTIVE
        and actor.kind == "connection"
        and record.connection_id == actor.connection_id
        and record.content_hash == sealed(row_digest, record.version)
    )


def remember(session: Session, model: Any, rows: Iterable[tuple[str, str, int]]) -> None:
    """Store ``(id, row digest, version after the write)`` for written records, in one
    ``executemany`` (a plain UPDATE of the hash: it does not bump ``version``)."""
    params = [(sealed(row_digest, version), id_) for id_, row_digest, version in rows]
    update_rows(session, model.__table__, ("content_hash",), "id", params)
