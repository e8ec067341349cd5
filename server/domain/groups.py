"""Plain groups (staff groups, clubs: SCIM groups that are not classes) and class memberships.

Same rules as every synced record: the owning connection's pushes change everything, others are
refused by the guard, each write bumps the version (the ETag) and is audited, and writing the
same values again changes nothing and returns an empty change set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    bindparam,
    literal,
    literal_column,
    select,
    union,
)
from sqlalchemy.orm import Session

from server.db import (
    Connection,
    Enrollment,
    Group,
    GroupMember,
    RecordStatus,
    SchoolClass,
    User,
    fold,
    new_id,
    not_deleted,
    utcnow,
)
from server.domain import audit, guard, provider_attributes
from server.domain.actors import Actor
from server.domain.users import owning_connection
from server.errors import InvalidValue, NotFound, RequiredValue

GROUP_FIELDS = frozenset({"display_name", "external_id", "extra", "member_ids"})
CREATE_FIELDS = GROUP_FIELDS | {"id"}
Changes = dict[str, list[Any]]


def create_group(session: Session, actor: Actor, fields: Mapping[str, Any]) -> Group:
    """A group owned by the actor's connection. ``fields``: display_name (required),
    external_id, extra, member_ids (ids of users of the tenant), and optionally ``id``: a
    deleted group with that id comes back (a class turned back into a plain group keeps its id).

    :raises RequiredValue: no display name. :raises InvalidValue: an unknown member.
    """
    group_id = fields.get("id")
    values = _values(session, actor, {k: v for k, v in fields.items() if k != "id"})
    if not values.get("display_name"):
        raise RequiredValue("A group needs a displayName.", field="display_name")
    owner = owning_connection(session, actor)
    former = session.get(Group, group_id) if group_id else None
    if former is not None:
        if former.tenant_id != actor.tenant_id or former.status != RecordStatus.DELETED:
            raise InvalidValue("This group id is already used.", field="id")
        former.status = RecordStatus.ACTIVE
        former.connection_id = owner.id
        update_group(session, actor, former, values)
        return former
    group = Group(id=group_id or new_id(), tenant_id=actor.tenant_id, connection_id=owner.id)
    group.created_at = group.updated_at = utcnow()
    _assign(session, group, values, [])
    session.add(group)
    session.flush()
    audit.record(
        session,
        actor,
        "group.create",
        target_kind="group",
        target_id=group.id,
        target_label=group.display_name,
        changes={k: [None, v] for k, v in values.items() if k != "extra" and v},
    )
    return group


def update_group(
    session: Session,
    actor: Actor,
    group: Group,
    fields: Mapping[str, Any],
    *,
    current: list[str] | None = None,
) -> Changes:
    """Apply what differs; returns ``{field: [before, after]}`` (empty: unchanged).

    The members are read once (``current``: the caller's read of them, sorted); only those
    who join are looked up (issue 15: a change to a group of thousands read and checked
    every member three times).
    """
    if current is None:
        current = group_member_ids(session, group) if "member_ids" in fields else []
    values = _values(session, actor, fields, group_id=group.id, current=current)
    changes: Changes = {}
    for name, new in values.items():
        old = current if name == "member_ids" else getattr(group, name)
        if old != new:
            changes[name] = [old, new]
    if not changes:
        return {}
    owner = session.get(Connection, group.connection_id)
    assert owner is not None
    guard.check_change(actor, owner, changes)
    _assign(session, group, {k: values[k] for k in changes}, current)
    group.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "group.update",
        target_kind="group",
        target_id=group.id,
        target_label=group.display_name,
        changes={k: v for k, v in changes.items() if k != "extra"},
    )
    return changes


def delete_group(session: Session, actor: Actor, group: Group) -> bool:
    """Mark a group deleted (it then answers 404). Returns False if it already was."""
    if group.status == RecordStatus.DELETED:
        return False
    owner = session.get(Connection, group.connection_id)
    assert owner is not None
    guard.check_change(actor, owner, ["status"])
    group.status = RecordStatus.DELETED
    group.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "group.delete",
        target_kind="group",
        target_id=group.id,
        target_label=group.display_name,
        changes={"status": [RecordStatus.ACTIVE, RecordStatus.DELETED]},
    )
    return True


def get_group(session: Session, actor: Actor, group_id: str) -> Group:
    """A group of the actor's tenant (a connection's own groups only). :raises NotFound:"""
    group = session.get(Group, group_id)
    if (
        group is None
        or group.tenant_id != actor.tenant_id
        or group.status == RecordStatus.DELETED
        or (actor.kind == "connection" and group.connection_id != actor.connection_id)
    ):
        raise NotFound("No such group.")
    return group


def group_member_ids(session: Session, group: Group) -> list[str]:
    return sorted(
        session.scalars(select(GroupMember.user_id).where(GroupMember.group_id == group.id))
    )


@dataclass(frozen=True)
class Membership:
    """A user's direct membership of a plain group or a class."""

    user_id: str
    group_id: str
    display: str


def membership_rows(
    actor: Actor, user_ids: list[str] | BindParameter[Any] | None = None
) -> Select[Any]:
    """The memberships the actor may see (see :func:`_membership_rows`)."""
    return _membership_rows(actor.tenant_id, actor.connection_id, actor.kind, user_ids)


def memberships_of_user_row(actor: Actor) -> Select[Any]:
    """:func:`membership_rows` of the user of the enclosing query's ``users`` row (correlated
    to it), by display name: a read of users that shows their memberships in the same
    statement (:mod:`server.domain.user_views`, issue 15)."""
    rows = _membership_rows(actor.tenant_id, actor.connection_id, actor.kind, None, of_row=True)
    return rows.order_by(rows.selected_columns.display, rows.selected_columns.group_id)


def _membership_rows(
    tenant_id: Any, connection_id: Any, kind: str, user_ids: Any | None, *, of_row: bool = False
) -> Select[Any]:
    """The memberships the actor may see, one row per (user, group or class):
    ``user_id``, ``group_id``, ``display``, ``display_folded`` and ``type`` ("direct").

    Deleted groups, classes and enrollments are left out; a connection sees only the groups
    and classes it owns (as it reads no others). Filters (SCIM ``groups.value``) add their
    conditions to this SELECT; ``user_ids`` narrows each half of it to a page of users,
    ``of_row`` to the user of an enclosing query's ``users`` row. The rows of known users
    are read from their own ``group_members`` rows (:func:`_unindexed`).
    """
    group_tenant: ColumnElement[Any] = Group.tenant_id.expression
    group_connection: ColumnElement[Any] = Group.connection_id.expression
    if user_ids is not None or of_row:
        group_tenant, group_connection = _unindexed(group_tenant), _unindexed(group_connection)
    group_where = [group_tenant == tenant_id, not_deleted(Group.status)]
    class_where = [
        SchoolClass.tenant_id == tenant_id,
        not_deleted(SchoolClass.status),
        not_deleted(Enrollment.status),
    ]
    if kind == "connection":
        group_where.append(group_connection == connection_id)
        class_where.append(SchoolClass.connection_id == connection_id)
    if user_ids is not None:
        group_where.append(GroupMember.user_id.in_(user_ids))
        class_where.append(Enrollment.user_id.in_(user_ids))
    if of_row:
        group_where.append(GroupMember.user_id == User.id)
        class_where.append(Enrollment.user_id == User.id)
    direct = literal("direct")
    in_groups = (
        select(
            GroupMember.user_id.label("user_id"),
            Group.id.label("group_id"),
            Group.display_name.label("display"),
            Group.display_name_folded.label("display_folded"),
            direct.label("type"),
        )
        .join(Group, Group.id == GroupMember.group_id)
        .where(*group_where)
    )
    in_classes = (
        select(
            Enrollment.user_id,
            SchoolClass.id,
            SchoolClass.title,
            SchoolClass.title_folded,
            direct,
        )
        .join(SchoolClass, SchoolClass.id == Enrollment.class_id)
        .where(*class_where)
    )
    if of_row:
        in_groups, in_classes = in_groups.correlate(User), in_classes.correlate(User)
    return union(in_groups, in_classes)  # type: ignore[return-value]


def _unindexed(column: Any) -> ColumnElement[Any]:
    """``column || ''``: the same value, which no index answers, on SQLite and PostgreSQL.

    The memberships of known users start from their ``group_members`` rows (the index on
    ``user_id``) and reach each group by its id. SQLite, which keeps no statistics, preferred
    the index on the groups' tenant and connection, then probed every group of the connection
    for the user: a lookup's cost grew with the connection's groups (2,000 groups: 6.9 ms of
    CPU instead of 0.6 at 20,000 users; issue 15). PostgreSQL chooses the user's rows itself
    once it has statistics of ``groups`` (autovacuum); before, it still reads every group.
    """
    unindexed: ColumnElement[Any] = column.op("||")(literal_column("''"))
    return unindexed


def memberships(
    session: Session, actor: Actor, user_ids: Iterable[str]
) -> dict[str, list[Membership]]:
    """The visible memberships of each of these users (one query), by display name."""
    wanted = sorted(set(user_ids))
    found: dict[str, list[Membership]] = {user_id: [] for user_id in wanted}
    if not wanted:
        return found
    statement = _memberships_statement(actor.kind == "connection")
    params = {"tenant_id": actor.tenant_id, "connection_id": actor.connection_id}
    # Core rows on the unit of work's connection (no ORM result processing: about half of a
    # SCIM PATCH's membership read, issue 15), after the flush session.execute would make.
    session.flush()
    for row in session.connection().execute(statement, {**params, "user_ids": wanted}):
        found[row.user_id].append(Membership(row.user_id, row.group_id, row.display))
    return found


def memberships_query(actor: Actor, user_ids: list[str] | BindParameter[Any]) -> Select[Any]:
    """The SELECT of :func:`memberships` for one actor: ``user_id``, ``group_id``,
    ``display``. ``user_ids`` is a list, or an expanding bind parameter (a statement built
    once per actor and run for many users, :mod:`server.domain.user_views`)."""
    return _ordered(membership_rows(actor, user_ids).subquery())


@cache
def _memberships_statement(of_connection: bool) -> Select[Any]:
    """The SELECT of :func:`memberships`, built once with bound parameters: building the
    UNION anew took about a third of a user's membership read (issue 15)."""
    rows = _membership_rows(
        bindparam("tenant_id"),
        bindparam("connection_id"),
        "connection" if of_connection else "staff",
        bindparam("user_ids", expanding=True),
    ).subquery()
    return _ordered(rows)


def _ordered(rows: Any) -> Select[Any]:
    """``user_id``, ``group_id``, ``display`` of the membership rows, by user and display."""
    return select(rows.c.user_id, rows.c.group_id, rows.c.display).order_by(
        rows.c.user_id, rows.c.display, rows.c.group_id
    )


def class_enrollments(session: Session, klass: SchoolClass) -> list[Enrollment]:
    """The class's enrollments that are not deleted, oldest first."""
    return list(
        session.scalars(
            select(Enrollment)
            .where(Enrollment.class_id == klass.id, not_deleted(Enrollment.status))
            .order_by(Enrollment.created_at, Enrollment.id)
        )
    )


def tenant_users(session: Session, actor: Actor, user_ids: Iterable[str]) -> list[User]:
    """The users with these ids in the actor's tenant (deleted ones excluded).

    :raises InvalidValue: an id that names no such user.
    """
    wanted = sorted(set(user_ids))
    if not wanted:
        return []
    found = {
        user.id: user
        for user in session.scalars(
            select(User).where(
                User.tenant_id == actor.tenant_id,
                User.id.in_(wanted),
                not_deleted(User.status),
            )
        )
    }
    missing = [uid for uid in wanted if uid not in found]
    if missing:
        raise InvalidValue(f"No user with id {missing[0]!r}.", field="members")
    return [found[uid] for uid in wanted]


def tenant_user_ids(session: Session, actor: Actor, user_ids: Iterable[str]) -> list[str]:
    """The sorted ids, checked to name users of the actor's tenant (deleted ones excluded).

    :raises InvalidValue: an id that names no such user.
    """
    wanted = sorted(set(user_ids))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(
            session.scalars(
                select(User.id).where(
                    User.tenant_id == actor.tenant_id,
                    User.id.in_(chunk),
                    not_deleted(User.status),
                )
            )
        )
    missing = [uid for uid in wanted if uid not in found]
    if missing:
        raise InvalidValue(f"No user with id {missing[0]!r}.", field="members")
    return wanted


def _values(
    session: Session,
    actor: Actor,
    fields: Mapping[str, Any],
    *,
    group_id: str | None = None,
    current: list[str] | None = None,
) -> dict[str, Any]:
    """Checked values; ``current``: the members of group ``group_id`` now, if it exists."""
    unknown = set(fields) - GROUP_FIELDS
    if unknown:
        raise InvalidValue(f"Unknown group fields: {', '.join(sorted(unknown))}.")
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if name in ("display_name", "external_id"):
            values[name] = (value.strip() if isinstance(value, str) else value) or None
        elif name == "extra":
            values[name] = provider_attributes.minimise_extra(
                session, actor.tenant_id, dict(value or {}), "Group"
            )
        elif name == "member_ids":
            values[name] = _checked_members(session, actor, value or [], group_id, current or [])
    return values


def _checked_members(
    session: Session, actor: Actor, wanted: list[str], group_id: str | None, current: list[str]
) -> list[str]:
    """:func:`tenant_user_ids` of ``wanted``, looking up only those not members yet: of the
    members who stay, one read checks that none has been deleted since.

    :raises InvalidValue: an id that names no user of the tenant, or a deleted one.
    """
    members = set(current)
    joining = [user_id for user_id in wanted if user_id not in members]
    staying = members.intersection(wanted)
    if staying and group_id is not None:
        deleted = session.scalars(
            select(GroupMember.user_id)
            .join(User, User.id == GroupMember.user_id)
            .where(GroupMember.group_id == group_id, User.status == RecordStatus.DELETED)
            .order_by(GroupMember.user_id)
        ).all()
        joining += [user_id for user_id in deleted if user_id in staying]
    tenant_user_ids(session, actor, joining)
    return sorted(set(wanted))


def _assign(session: Session, group: Group, values: dict[str, Any], members: list[str]) -> None:
    """Set ``values``; ``members``: the group's members before (none for a new group)."""
    for name, value in values.items():
        if name == "member_ids":
            current = set(members)
            for user_id in current - set(value):
                member = session.get(GroupMember, (group.id, user_id))
                if member is not None:
                    session.delete(member)
            session.add_all(
                GroupMember(group_id=group.id, user_id=user_id)
                for user_id in sorted(set(value) - current)
            )
        else:
            setattr(group, name, value)
    group.display_name_folded = fold(group.display_name) or ""
    group.external_id_folded = fold(group.external_id)
