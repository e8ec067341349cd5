"""Users complete enough to serve: a connection's default role and school (issue 10, defect 4).

The one rule, for every surface:

- A connection may carry a default role and a default school. When it pushes a user (SCIM,
  OneRoster push, a file import or a pull) that ends up with no role at any school, the
  connection's defaults fill the gap: the role the push named (SCIM ``userType``, core
  ``roles``) or else the default role, at the default school.
- A user with no role at any school, and no active enrollment to derive one from, is
  *incomplete*. OneRoster never serves it (the 1.2 schema requires ``roles`` with at least one
  entry, and a ``student`` without an org misleads every consumer): not in lists, single
  reads, nested reads or counts. Staff see it marked "incomplete — no role/school", and the
  connection page counts them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, not_, or_, select
from sqlalchemy.orm import Session

from server.db import (
    Connection,
    ConnectionKind,
    Enrollment,
    Org,
    RecordStatus,
    User,
    UserRole,
    not_deleted,
)
from server.domain import audit
from server.domain.access import ensure_can_manage_connections
from server.domain.actors import Actor, connection_actor
from server.domain.connection_defaults import active_school, defaults_of
from server.domain.users import update_user
from server.domain.vocabulary import check_role
from server.errors import InvalidValue, NotFound

_UNSET = object()


def set_defaults(
    session: Session,
    actor: Actor,
    connection: Connection,
    *,
    role: str | object | None = _UNSET,
    school_sourced_id: str | object | None = _UNSET,
) -> dict[str, list[Any]]:
    """Set (or, with ``""``/None, clear) a connection's default role and school.

    Only what is passed changes. Returns the change set (audited).

    :raises InvalidValue: an unknown role or school, or the manual connection.
    """
    ensure_can_manage_connections(actor)
    if connection.tenant_id != actor.tenant_id:
        raise NotFound("No such connection.")
    if connection.kind == ConnectionKind.MANUAL:
        raise InvalidValue(
            "The manual connection pushes nothing: staff choose each user's role and school.",
            field="default_role",
        )
    current = defaults_of(connection)
    new_role, new_school = current.role, current.school_id
    if role is not _UNSET:
        new_role = check_role(str(role)) if role else None
    if school_sourced_id is not _UNSET:
        new_school = _school_id(session, actor, school_sourced_id) if school_sourced_id else None
    changes: dict[str, list[Any]] = {}
    if new_role != current.role:
        changes["default_role"] = [current.role, new_role]
    if new_school != current.school_id:
        changes["default_school"] = [current.school_id, new_school]
    if not changes:
        return {}
    settings = dict(connection.settings or {})
    settings["defaults"] = {"role": new_role, "school_id": new_school}
    connection.settings = settings
    session.flush()
    audit.record(
        session,
        actor,
        "connection.set_defaults",
        target_kind="connection",
        target_id=connection.id,
        target_label=connection.name,
        changes=changes,
    )
    complete_existing(session, connection)
    return changes


def complete_existing(session: Session, connection: Connection) -> int:
    """Apply the connection's defaults to its users that are incomplete now; returns how many
    changed.

    An identity provider re-sends a user only when it changes on its side, so without this a
    user pushed before the defaults were set would stay unserved. The role such a user was
    pushed with is kept when it is anything but ``student`` (the column's default, which a push
    without a role leaves); otherwise the default role applies. Audited as the connection.
    """
    defaults = defaults_of(connection)
    if active_school(session, defaults.school_id) is None:
        return 0
    query = select(User).where(
        User.connection_id == connection.id,
        not_deleted(User.status),
        incomplete_users(),
    )
    pusher = connection_actor(connection)
    changed = 0
    for user in session.scalars(query).all():
        named = user.primary_role if user.primary_role != "student" else None
        role = named or defaults.role
        if role and update_user(session, pusher, user, {"primary_role": role}):
            changed += 1
    return changed


def default_school_sourced_id(session: Session, connection: Connection) -> str | None:
    school_id = defaults_of(connection).school_id
    org = session.get(Org, school_id) if school_id else None
    return org.sourced_id if org else None


def served_users() -> ColumnElement[bool]:
    """Users OneRoster may serve: a role at a school, or an active enrollment to derive one."""
    return or_(
        exists().where(UserRole.user_id == User.id),
        exists().where(
            and_(Enrollment.user_id == User.id, Enrollment.status == RecordStatus.ACTIVE)
        ),
    )


def incomplete_users() -> ColumnElement[bool]:
    return not_(served_users())


def incomplete_ids(session: Session, user_ids: list[str]) -> set[str]:
    """Which of these users are incomplete (for marking them in a list)."""
    if not user_ids:
        return set()
    query = select(User.id).where(User.id.in_(user_ids), incomplete_users())
    return set(session.scalars(query))


def incomplete_counts(session: Session, tenant_id: str) -> dict[str, int]:
    """Per connection id: how many of its non-deleted users are incomplete."""
    query = (
        select(User.connection_id, func.count())
        .where(
            User.tenant_id == tenant_id,
            not_deleted(User.status),
            incomplete_users(),
        )
        .group_by(User.connection_id)
    )
    return {connection_id: count for connection_id, count in session.execute(query)}


def _school_id(session: Session, actor: Actor, sourced_id: object) -> str:
    org = session.scalars(
        select(Org).where(Org.tenant_id == actor.tenant_id, Org.sourced_id == str(sourced_id))
    ).first()
    if org is None or org.status == RecordStatus.DELETED:
        raise InvalidValue(
            f"No school with sourcedId {sourced_id!r}.", code="R108", field="default_school"
        )
    return org.id
