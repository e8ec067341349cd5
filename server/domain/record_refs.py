"""Users and classes a source's rows name by sourcedId, read as plain tuples (issue 15).

An enrollments.csv batch names up to a thousand users and classes; the rules it applies to
them (R108: the record exists and is not deleted, R109: the importing connection owns the
user, the tenant, the class's school as the enrollment's default school) need a few columns,
not the records. Loading each as an ORM object cost a first import a sixth of its time
(cProfile at 5,000 users: 25k objects populated). These reads take one SELECT per kind and
batch, build no ORM object, and fill nothing into the session.

:func:`referenced_user`, :func:`server.domain.roster.enroll` and
:func:`server.domain.enrollments.enroll_many` take these tuples where they take records.

Example::

    people = users_named(session, tenant_id, ["u1", "u2"])
    people["u1"].connection_id
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from server.db import Connection, RecordStatus, SchoolClass, User
from server.domain.actors import Actor
from server.errors import NotFound, OwnedByAnotherConnection

CHUNK = 900  # bound parameters per IN list


class UserRef(NamedTuple):
    """What the rules of a reference to a user read (its owner's name for R109's message)."""

    id: str
    sourced_id: str
    tenant_id: str
    connection_id: str
    status: str
    version: int
    connection_name: str


class ClassRef(NamedTuple):
    """What the rules of a reference to a class read."""

    id: str
    sourced_id: str
    tenant_id: str
    connection_id: str
    status: str
    version: int
    school_id: str


def users_named(session: Session, tenant_id: str, keys: Iterable[str]) -> dict[str, UserRef]:
    """sourcedId -> :class:`UserRef` of the tenant's users among ``keys`` (deleted included:
    the caller's rule tells them apart)."""
    return {
        ref.sourced_id: UserRef._make(ref) for ref in rows_named(session, _users(), tenant_id, keys)
    }


def classes_named(session: Session, tenant_id: str, keys: Iterable[str]) -> dict[str, ClassRef]:
    """sourcedId -> :class:`ClassRef` of the tenant's classes among ``keys``."""
    rows = rows_named(session, _classes(), tenant_id, keys)
    return {ref.sourced_id: ClassRef._make(ref) for ref in rows}


def rows_named(session: Session, statement: Any, tenant_id: str, keys: Iterable[str]) -> list[Any]:
    """The rows of ``statement`` (parameters ``tenant`` and an expanding ``keys``) for the
    tenant's sourcedIds among ``keys``: one execution per :data:`CHUNK` keys, after a flush,
    without the ORM."""
    wanted = sorted({key for key in keys if key})
    if not wanted:
        return []
    session.flush()  # what session.execute would do; the rows are then read without the ORM
    connection = session.connection()
    found: list[Any] = []
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        sql = _written(connection.dialect, statement, len(chunk))
        if sql is not None:
            found += connection.exec_driver_sql(sql, (tenant_id, *chunk)).all()
        else:
            found += connection.execute(statement, {"tenant": tenant_id, "keys": chunk}).all()
    return found


@functools.lru_cache(maxsize=64)
def _written(dialect: Any, statement: Any, size: int) -> str | None:
    """On SQLite, the SQL of ``statement`` for ``size`` keys, written once: its parameters
    the tenant then the keys, in that order (a batch's 500 keys were otherwise each given
    a bind name and processed per execution: half the CPU of a re-import's hash reads at
    20,000 users). None elsewhere, or for a statement whose parameters come in another
    order: the statement then runs as it is."""
    if dialect.paramstyle != "qmark":
        return None
    compiled = statement.params(tenant="", keys=[""] * size).compile(
        dialect=dialect, compile_kwargs={"render_postcompile": True}
    )
    expected = ("tenant", *(f"keys_{i}" for i in range(1, size + 1)))
    return compiled.string if tuple(compiled.positiontup or ()) == expected else None


def _columns(table: Any) -> list[Any]:
    names = ("id", "sourced_id", "tenant_id", "connection_id", "status", "version")
    return [table.c[name] for name in names]


@functools.cache
def _users() -> Any:
    """The SELECT of :func:`users_named`, built once (its keys are one expanding parameter)."""
    people, owners = User.__table__, Connection.__table__
    return (
        select(*_columns(people), owners.c.name)
        .join_from(people, owners, owners.c.id == people.c.connection_id)
        .where(
            people.c.tenant_id == bindparam("tenant"),
            people.c.sourced_id.in_(bindparam("keys", expanding=True)),
        )
    )


@functools.cache
def _classes() -> Any:
    """The SELECT of :func:`classes_named`, built once."""
    classes = SchoolClass.__table__
    return select(*_columns(classes), classes.c.school_id).where(
        classes.c.tenant_id == bindparam("tenant"),
        classes.c.sourced_id.in_(bindparam("keys", expanding=True)),
    )


Referenced = TypeVar("Referenced", User, UserRef)  # a user as a record or a tuple


def referenced_user(actor: Actor, user: Referenced | None, key: str, field: str) -> Referenced:
    """The user a source's row names by sourcedId ``key`` (found by the caller as a ``User``
    or a :class:`~server.domain.record_refs.UserRef`, or None), checked: it exists and
    belongs to the acting connection (SPEC §4 ownership).

    :raises NotFound: (R108) no such user, or a deleted one.
    :raises OwnedByAnotherConnection: (R109) another connection's user.
    """
    if user is None or user.status == RecordStatus.DELETED:
        raise NotFound(f"No user with sourcedId {key!r}.", field=field)
    if not may_reference(actor, user.status, user.connection_id):
        owner = user.connection_name if isinstance(user, UserRef) else user.connection.name
        raise OwnedByAnotherConnection(owner, "This user")
    return user


def may_reference(actor: Actor, status: str, connection_id: str) -> bool:
    """Whether a source's row may name a user in this state (see :func:`referenced_user`)."""
    return status != RecordStatus.DELETED and connection_id == actor.connection_id
