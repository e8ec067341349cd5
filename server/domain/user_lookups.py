"""Finding users: by id as an actor may see them, by external id, username or sourcedId, and
the user of another connection that a connection adopts (SPEC §4); and which connection owns
what an actor writes. Reads only: :mod:`server.domain.users` writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import bindparam, literal, select, union_all
from sqlalchemy.orm import Session

from server.db import Connection, RecordStatus, User, fold, not_deleted
from server.domain.access import ensure_visible
from server.domain.actors import Actor
from server.domain.tenants import manual_connection
from server.errors import NotFound


def owning_connection(session: Session, actor: Actor) -> Connection:
    """The connection that owns what ``actor`` creates: its own, or the tenant's manual one."""
    if actor.kind == "connection" and actor.connection_id:
        connection = session.get(Connection, actor.connection_id)
        if connection is not None:
            return connection
    return manual_connection(session, actor.tenant_id)


def get_user(
    session: Session, actor: Actor, user_id: str, *, include_deleted: bool = False
) -> User:
    """The user ``actor`` may see. :raises NotFound:"""
    user = session.get(User, user_id) if "\x00" not in user_id else None
    if user is None or (user.status == RecordStatus.DELETED and not include_deleted):
        raise NotFound("No such user.")
    ensure_visible(session, actor, user)
    return user


def find_by_external_id(
    session: Session, connection_id: str, external_id: str, *, include_deleted: bool = False
) -> User | None:
    query = select(User).where(
        User.connection_id == connection_id, User.external_id_folded == fold(external_id)
    )
    if not include_deleted:
        query = query.where(not_deleted(User.status))
    return session.scalars(query.order_by(User.created_at.desc())).first()


def find_by_username(session: Session, tenant_id: str, username: str) -> User | None:
    return session.scalars(
        select(User).where(
            User.tenant_id == tenant_id,
            User.username_folded == fold(username),
            not_deleted(User.status),
        )
    ).first()


def find_by_sourced_id(session: Session, tenant_id: str, sourced_id: str) -> User | None:
    return session.scalars(
        select(User).where(User.tenant_id == tenant_id, User.sourced_id == sourced_id)
    ).first()


@dataclass(frozen=True)
class Claims:
    """Who already holds the names a new user claims (read by :func:`claims`).

    ``restorable``: the id of the owning connection's newest user with that externalId, if
    that user is deleted (SPEC §5: re-provisioning within the retention period restores it).
    """

    username_taken: bool = False
    sourced_id_taken: bool = False
    restorable: str | None = None


def claims(
    session: Session,
    tenant_id: str,
    *,
    sourced_id: str,
    username: str | None = None,
    external_id: tuple[str, str] | None = None,
) -> Claims:
    """Whether a live user of the tenant has ``username``, any user has ``sourced_id``, and
    which user of connection ``external_id[0]`` has externalId ``external_id[1]``: one
    statement (a UNION ALL of three indexed lookups) instead of three (issue 15).
    """
    statement = _claims_statement(bool(username), external_id is not None)
    params = {"tenant_id": tenant_id, "sourced_id": sourced_id, "username": fold(username)}
    if external_id is not None:
        params |= {"connection_id": external_id[0], "external_id": fold(external_id[1])}
    rows = session.execute(statement, params).all()
    same_external = [row for row in rows if row.kind == "external_id"]
    newest = max(same_external, key=lambda row: row.created_at) if same_external else None
    return Claims(
        username_taken=any(row.kind == "username" for row in rows),
        sourced_id_taken=any(row.kind == "sourced_id" for row in rows),
        restorable=newest.id if newest and newest.status == RecordStatus.DELETED else None,
    )


@cache
def _claims_statement(by_username: bool, by_external_id: bool) -> Any:
    """The UNION of :func:`claims`, built once per shape with bound parameters."""
    columns = (User.id, User.status, User.created_at)
    tenant = User.tenant_id == bindparam("tenant_id")
    arms = [
        select(*columns, literal("sourced_id").label("kind")).where(
            tenant, User.sourced_id == bindparam("sourced_id")
        )
    ]
    if by_username:
        arms.append(
            select(*columns, literal("username")).where(
                tenant,
                User.username_folded == bindparam("username"),
                not_deleted(User.status),
            )
        )
    if by_external_id:
        arms.append(
            select(*columns, literal("external_id")).where(
                User.connection_id == bindparam("connection_id"),
                User.external_id_folded == bindparam("external_id"),
            )
        )
    return union_all(*arms)


def find_adoptable(session: Session, actor: Actor, fields: Mapping[str, Any]) -> User | None:
    """The user of another connection that the acting connection adopts for ``fields``.

    Only for a connection set to adopt matching users (``adopt_by``: username, email or
    identifier) and only a live user of the same tenant owned by another connection; call
    :func:`adopt_user` with it to take it over (audited).
    """
    if actor.kind != "connection":
        return None
    connection = owning_connection(session, actor)
    key = connection.adopt_by
    value = fields.get(key) if key else None
    if not key or not isinstance(value, str) or not value.strip():
        return None
    column = {
        "username": User.username_folded,
        "email": User.email_folded,
        "identifier": User.identifier,
    }[key]
    wanted = value.strip() if key == "identifier" else fold(value.strip())
    return session.scalars(
        select(User).where(
            User.tenant_id == actor.tenant_id,
            User.connection_id != connection.id,
            not_deleted(User.status),
            column == wanted,
        )
    ).first()
