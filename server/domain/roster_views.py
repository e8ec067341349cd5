"""Reading orgs, classes and their members for staff and the domain: one query each.

(What apps read through OneRoster, with their scopes and paging, is
:mod:`server.domain.roster_reads`.)
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import Enrollment, Org, RecordStatus, SchoolClass, User, not_deleted
from server.db.roster import SyncedRecord
from server.domain.access import visible_classes
from server.domain.actors import Actor
from server.errors import NotFound

Record = TypeVar("Record", bound=SyncedRecord)


def get_class(session: Session, actor: Actor, class_id: str) -> SchoolClass:
    if "\x00" in class_id:
        raise NotFound("No such class.")
    klass = session.scalars(
        select(SchoolClass).where(SchoolClass.id == class_id, visible_classes(actor))
    ).first()
    if klass is None or klass.status == RecordStatus.DELETED:
        raise NotFound("No such class.")
    return klass


def list_classes(
    session: Session, actor: Actor, *, school_id: str | None = None
) -> list[SchoolClass]:
    query = select(SchoolClass).where(
        visible_classes(actor), SchoolClass.status == RecordStatus.ACTIVE
    )
    if school_id:
        query = query.where(SchoolClass.school_id == school_id)
    return list(session.scalars(query.order_by(SchoolClass.title_folded, SchoolClass.id)))


def class_members(
    session: Session, actor: Actor, klass: SchoolClass, role: str | None = None
) -> list[User]:
    """Active users enrolled in a class (optionally with one role), by family name."""
    query = (
        select(User)
        .join(Enrollment, Enrollment.user_id == User.id)
        .where(
            Enrollment.class_id == klass.id,
            Enrollment.status == RecordStatus.ACTIVE,
            User.tenant_id == actor.tenant_id,
            not_deleted(User.status),
        )
    )
    if role:
        query = query.where(Enrollment.role == role)
    return list(session.scalars(query.order_by(User.family_folded, User.given_folded)).unique())


def class_titles_of(session: Session, user_ids: list[str]) -> dict[str, list[str]]:
    """The titles of each user's active classes, in one query (for lists and print sheets)."""
    titles: dict[str, list[str]] = {user_id: [] for user_id in user_ids}
    if not user_ids:
        return titles
    rows = session.execute(
        select(Enrollment.user_id, SchoolClass.title)
        .join(SchoolClass, SchoolClass.id == Enrollment.class_id)
        .where(
            Enrollment.user_id.in_(user_ids),
            Enrollment.status == RecordStatus.ACTIVE,
            SchoolClass.status == RecordStatus.ACTIVE,
        )
        .order_by(SchoolClass.title)
    )
    for user_id, title in rows:
        titles[user_id].append(title)
    return titles


def find_by_sourced_id(
    session: Session, model: type[Record], tenant_id: str, sourced_id: str
) -> Record | None:
    return session.scalars(
        select(model).where(model.tenant_id == tenant_id, model.sourced_id == sourced_id)
    ).first()


def list_schools(session: Session, tenant_id: str) -> list[Org]:
    return list(
        session.scalars(
            select(Org)
            .where(
                Org.tenant_id == tenant_id, Org.type == "school", Org.status == RecordStatus.ACTIVE
            )
            .order_by(Org.name)
        )
    )


def list_sourced_ids(
    session: Session, model: type[Record], tenant_id: str, *, limit: int = 200
) -> list[str]:
    """The sourcedIds of a tenant's active records of one kind (schools, courses, terms)."""
    query = select(model.sourced_id).where(
        model.tenant_id == tenant_id, model.status == RecordStatus.ACTIVE
    )
    return list(session.scalars(query.order_by(model.sourced_id).limit(limit)))
