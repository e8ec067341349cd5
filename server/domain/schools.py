"""Looking up schools: by the sourcedIds people and files use, and the ones an actor works at."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import Org, RecordStatus
from server.domain.access import visible_schools
from server.domain.actors import Actor
from server.domain.vocabulary import check_texts
from server.errors import InvalidValue


def resolve_school_ids(session: Session, tenant_id: str, sourced_ids: list[str]) -> list[str]:
    """Our ids of the schools with these sourcedIds. :raises InvalidValue: an unknown one."""
    check_texts(sourced_ids, "school")
    ids = []
    for sourced_id in sourced_ids:
        org_id = session.scalars(
            select(Org.id).where(Org.tenant_id == tenant_id, Org.sourced_id == sourced_id)
        ).first()
        if org_id is None:
            raise InvalidValue(f"No school with sourcedId {sourced_id!r}.", field="school")
        ids.append(org_id)
    return ids


def schools_for(session: Session, actor: Actor) -> list[Org]:
    """The active schools ``actor`` works at (:func:`server.domain.access.visible_schools`),
    by name: what staff may pick for a new student, an import or an export."""
    query = select(Org).where(
        visible_schools(actor), Org.type == "school", Org.status == RecordStatus.ACTIVE
    )
    return list(session.scalars(query.order_by(Org.name, Org.id)))
