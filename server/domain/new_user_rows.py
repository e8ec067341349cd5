"""The rows a new user is made of, and how they are written.

One definition for every path that creates users: :func:`server.domain.users.create_user`
(one user, its rows written with Core INSERTs and its :class:`User` made as if just read) and
the imports' bulk path (:mod:`server.domain.bulk`, one ``executemany`` per table). An ORM
object per user and its flush were most of a first import and a fifth of a SCIM create
(issue 15).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state, set_committed_value

from server.db import (
    Connection,
    Credential,
    CredentialState,
    User,
    UserGrade,
    UserRole,
    fold,
    new_record_id,
    utcnow,
)
from server.db.bulk_insert import insert_dicts
from server.domain import guard
from server.domain.actors import Actor
from server.domain.user_fields import creation_changes, folded_columns, grade_rows, role_rows

Made = TypeVar("Made", User, Credential, UserGrade)


def inserted_user(session: Session, owner: Connection, rows: NewUserRows) -> User:
    """The new user's rows written with Core INSERTs (:mod:`server.db.bulk_insert`, as the
    imports write theirs), and its :class:`User` made persistent as if just read, its
    credential, grades and connection loaded with it: the ORM's unit of work for one new user
    was a fifth of a SCIM create (issue 15). Roles (their ids are the database's) go in
    through the ORM, flushed here."""
    write_new_users(session, [rows], roles=False)
    user, credential = _as_read(User, rows.user), _as_read(Credential, rows.credential)
    grades = sorted((_as_read(UserGrade, row) for row in rows.grades), key=lambda row: row.grade)
    set_committed_value(credential, "user", user)
    for name, value in (
        ("connection", owner),
        ("credential", credential),
        ("grade_rows", grades),
        ("roles", []),
    ):
        set_committed_value(user, name, value)
    session.add(user)
    if rows.roles:
        user.roles = [UserRole(**row) for row in rows.roles]
        session.flush()
    return user


def _as_read(model: type[Made], row: Mapping[str, Any]) -> Made:
    """A record of ``model`` holding ``row`` (every column) as if just read, detached: its
    values set as a read sets them, without the attribute events of ``model(**row)`` (each
    recorded a change that :func:`make_transient_to_detached` then committed)."""
    made: Made = model.__mapper__.class_manager.new_instance()
    instance_state(made).dict.update(row)
    make_transient_to_detached(made)
    return made


@dataclass(frozen=True)
class NewUserRows:
    """The rows a new user is made of: one definition for :func:`create_user` (ORM objects
    built from them, :func:`new_user`) and the bulk path of imports (Core ``executemany``,
    :mod:`server.domain.bulk`)."""

    user: dict[str, Any]  # every column of ``users``
    roles: list[dict[str, Any]]
    grades: list[dict[str, Any]]
    credential: dict[str, Any]


def write_new_users(session: Session, made: Sequence[NewUserRows], *, roles: bool = True) -> None:
    """Insert the rows of new users, one ``executemany`` per table (:mod:`server.db.bulk_insert`:
    an ORM object per user and its flush were most of a first import and a fifth of a SCIM
    create, issue 15), after what the session holds (the orgs the rows name). ``roles=False``:
    the caller adds the roles through the ORM."""
    session.flush()
    for model, table_rows in (
        (User, [rows.user for rows in made]),
        (UserRole, [row for rows in made for row in rows.roles] if roles else []),
        (UserGrade, [row for rows in made for row in rows.grades]),
        (Credential, [rows.credential for rows in made]),
    ):
        insert_dicts(session, model.__table__, table_rows)


def new_user_rows(
    actor: Actor, owner: Connection, values: Mapping[str, Any], username: str
) -> NewUserRows:
    """The rows of a new user from normalised, checked ``values``: owned by ``owner``, its
    sourcedId its id when none is given, its credential ``sso`` when the owner is an SSO
    connection and ``pending`` otherwise (SPEC §4)."""
    made = values.get("id") or new_record_id()
    now = utcnow()
    columns = {k: v for k, v in values.items() if k not in NOT_COLUMNS}
    given = {
        **columns,
        "id": made,
        "tenant_id": actor.tenant_id,
        "connection_id": owner.id,
        "sourced_id": values.get("sourced_id") or made,
        "username": username,
        "username_folded": fold(username),
        "created_at": now,
        "updated_at": now,
    }
    user = {**_defaults(User.__table__, given), **given}
    user["given_name"] = user["given_name"] or ""
    user["family_name"] = user["family_name"] or ""
    user.update(folded_columns(user))
    state = CredentialState.SSO if guard.is_sso_linked(owner) else CredentialState.PENDING
    credential: dict[str, Any] = {"user_id": made, "state": state, "updated_at": now}
    credential = {**_defaults(Credential.__table__, credential), **credential}
    return NewUserRows(
        user=user,
        roles=role_rows(made, values.get("roles") or []),
        grades=grade_rows(made, values.get("grades") or []),
        credential=credential,
    )


NOT_COLUMNS = frozenset(("roles", "grades", "username", "id", "sourced_id"))


def _column_defaults(table: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every column of ``table`` with its Python-side default: (constants, including None
    for a column without one; factories, called per row so no two rows share a dict). A Core
    ``executemany`` needs the same keys in every row."""
    constants: dict[str, Any] = {}
    factories: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if default is None or default.is_scalar:
            constants[column.key] = default.arg if default is not None else None
        else:
            factories[column.key] = default.arg  # SQLAlchemy wrapped it to take a context
    return constants, factories


def _defaults(table: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    constants, factories = _DEFAULTS[table.name]
    fresh = {key: make(None) for key, make in factories.items() if key not in given}
    return {**constants, **fresh}


_DEFAULTS = {model.__tablename__: _column_defaults(model.__table__) for model in (User, Credential)}


def new_user(actor: Actor, owner: Connection, values: Mapping[str, Any], username: str) -> User:
    """The :class:`User` that :func:`create_user` adds for normalised, checked ``values``."""
    rows = new_user_rows(actor, owner, values, username)
    user = User(**rows.user)
    user.roles = [UserRole(**row) for row in rows.roles]
    user.grade_rows = [UserGrade(**row) for row in rows.grades]
    user.credential = Credential(**rows.credential)
    return user


def creation_event(user_id: str, username: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``user.create`` audit event's details for a user created from ``values``."""
    return {
        "target_kind": "user",
        "target_id": user_id,
        "target_label": username,
        "changes": creation_changes(username, dict(values)),
    }
