"""Who may see and act on which users (SPEC §8: least privilege, tenant and school isolation).

- the system and district admins: every user of their tenant;
- school admins: users with a role at one of their schools or enrolled in a class there;
- teachers: the students of the classes they teach (enrolled as teacher, via their linked user);
- a connection: the users it owns (changes are further checked by the guard);
- a student: themself.

:func:`visible_users` returns a SQL condition, so searches filter in the database;
:func:`visible_records` is the same rule for the records a protocol reads or searches by id
(users, groups, classes), deleted ones left out.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.orm import Session, aliased

from server.db import (
    Enrollment,
    Group,
    Org,
    RecordStatus,
    SchoolClass,
    User,
    UserRole,
    not_deleted,
)
from server.domain.actors import Actor
from server.errors import NotAllowed, NotFound


def visible_users(actor: Actor) -> ColumnElement[bool]:
    """A WHERE condition on ``User`` selecting what ``actor`` may see (tenant included)."""
    in_tenant = User.tenant_id == actor.tenant_id
    if actor.kind == "system" or actor.is_district_admin:
        return in_tenant
    if actor.kind == "connection":
        return and_(in_tenant, User.connection_id == actor.connection_id)
    if actor.kind == "student":
        return and_(in_tenant, User.id == actor.user_id)
    if actor.role == "school_admin":
        return and_(in_tenant, users_at_schools(actor.school_ids))
    if actor.is_teacher:
        return and_(in_tenant, _taught_by(actor.user_id))
    return false()


def users_at_schools(school_ids: Iterable[str], *, per_row: bool = False) -> ColumnElement[bool]:
    """A WHERE condition on ``User``: the users of these schools, the one definition every
    surface uses (school admins, school-limited OneRoster readers, exports).

    A user belongs to a school when they have a role there or an enrollment in a class there
    (a student enrolled at school B with a role only at school A is a user of both). The ids
    are gathered once per statement (on the role and enrollment school indexes) rather than
    probed per user: a correlated EXISTS made a deep page of a school-limited reader walk every
    user's roles for each of its schools (issue 15). ``per_row`` asks for the probe form
    instead, for a walk that stops early from an anchor over many schools' users.
    """
    schools = tuple(school_ids)
    if not schools:
        return false()
    if per_row:
        return or_(
            exists().where(UserRole.user_id == User.id, UserRole.org_id.in_(schools)),
            exists().where(Enrollment.user_id == User.id, Enrollment.school_id.in_(schools)),
        )
    return User.id.in_(
        select(UserRole.user_id)
        .where(UserRole.org_id.in_(schools))
        .union(select(Enrollment.user_id).where(Enrollment.school_id.in_(schools)))
    )


def _taught_by(teacher_user_id: str | None) -> ColumnElement[bool]:
    if teacher_user_id is None:
        return false()
    teaching = aliased(Enrollment)
    learning = aliased(Enrollment)
    return exists().where(
        learning.user_id == User.id,
        learning.role == "student",
        learning.status == RecordStatus.ACTIVE,
        teaching.class_id == learning.class_id,
        teaching.user_id == teacher_user_id,
        teaching.role.in_(("teacher", "aide")),
        teaching.status == RecordStatus.ACTIVE,
    )


def ensure_visible(session: Session, actor: Actor, user: User) -> None:
    """:raises NotFound: the user is in another tenant or outside what ``actor`` may see."""
    if user.tenant_id != actor.tenant_id:
        raise NotFound("No such user.")
    query = select(User.id).where(User.id == user.id, visible_users(actor))
    if session.scalars(query).first() is None:
        raise NotFound("No such user.")


def visible_groups(actor: Actor) -> ColumnElement[bool]:
    """A WHERE condition on ``Group``: the tenant's groups; a connection's own only."""
    in_tenant = Group.tenant_id == actor.tenant_id
    if actor.kind == "connection":
        return and_(in_tenant, Group.connection_id == actor.connection_id)
    return in_tenant


def visible_records(
    actor: Actor, model: type[User] | type[Group] | type[SchoolClass]
) -> ColumnElement[bool]:
    """A WHERE condition on ``model`` (users, groups or classes): the records ``actor`` may
    see that are not deleted. A connection (SCIM, SPEC §4) sees only the records it owns.
    """
    if model is User:
        visible = visible_users(actor)
    elif model is SchoolClass:
        visible = visible_classes(actor)
    else:
        visible = visible_groups(actor)
    return and_(visible, not_deleted(model.status))


def ensure_can_create(actor: Actor, school_ids: list[str]) -> None:
    """Teachers ask for accounts rather than create them; school admins create at their schools.

    :raises NotAllowed:
    """
    if actor.kind in ("system", "connection") or actor.is_district_admin:
        return
    if actor.role == "school_admin":
        outside = [sid for sid in school_ids if sid not in actor.school_ids]
        if not school_ids or outside:
            raise NotAllowed("School admins can create accounts only at their own schools.")
        return
    if actor.is_teacher:
        raise NotAllowed(
            "Teachers cannot create accounts: send an account request to a school admin."
        )
    raise NotAllowed("You cannot create accounts.")


def ensure_can_manage_connections(actor: Actor) -> None:
    if not actor.is_district_admin:
        raise NotAllowed("Only district admins manage connections, tokens and clients.")


def visible_classes(actor: Actor) -> ColumnElement[bool]:
    """A WHERE condition on ``SchoolClass`` for what ``actor`` may see."""
    in_tenant = SchoolClass.tenant_id == actor.tenant_id
    if actor.kind == "system" or actor.is_district_admin:
        return in_tenant
    if actor.kind == "connection":
        return and_(in_tenant, SchoolClass.connection_id == actor.connection_id)
    if actor.role == "school_admin":
        return and_(in_tenant, SchoolClass.school_id.in_(actor.school_ids or ("",)))
    if actor.is_teacher and actor.user_id:
        teaching = exists().where(
            Enrollment.class_id == SchoolClass.id,
            Enrollment.user_id == actor.user_id,
            Enrollment.role.in_(("teacher", "aide")),
            Enrollment.status == RecordStatus.ACTIVE,
        )
        return and_(in_tenant, teaching)
    return and_(in_tenant, false()) if actor.kind != "system" else true()


def visible_schools(actor: Actor) -> ColumnElement[bool]:
    """A WHERE condition on ``Org`` for the schools ``actor`` works at: a school admin's own,
    every school of the tenant for everyone else (teachers filter by any school)."""
    in_tenant = Org.tenant_id == actor.tenant_id
    if actor.role == "school_admin":
        return and_(in_tenant, Org.id.in_(actor.school_ids or ("",)))
    return in_tenant


def own_import_scope(actor: Actor) -> list[str]:
    """The schools an import or export by ``actor`` covers when none is chosen: the district
    for district admins, all their schools for school admins. :raises NotAllowed:"""
    return import_scope(actor, list(actor.school_ids) if actor.role == "school_admin" else [])


def import_scope(actor: Actor, school_ids: list[str]) -> list[str]:
    """The schools an import or export by ``actor`` covers.

    District admins (and the system) work anywhere; a school admin only at their own schools
    (their one school when none is named). :raises NotAllowed:
    """
    if actor.kind == "system" or actor.is_district_admin:
        return school_ids
    if actor.role == "school_admin":
        if not school_ids and len(actor.school_ids) == 1:
            return list(actor.school_ids)
        if school_ids and set(school_ids) <= set(actor.school_ids):
            return school_ids
        raise NotAllowed("School admins import and export only for their own school.")
    raise NotAllowed("Only district and school admins import and export rosters.")
