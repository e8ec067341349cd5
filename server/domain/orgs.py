"""Schools (and other orgs) that district admins add and change by hand.

A district that only uses Entra, or a school that only has a spreadsheet, has no SIS file to
bring its schools (issue 10, defect 5): district admins add them here. Such a school is owned
by the manual connection like any record staff create, so the guard of SPEC §4 applies both
ways: a school a sync connection owns is changed by hand only with an audited override, and a
school added here is never taken over by a push (R109).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import Org, RecordStatus, not_deleted
from server.domain import roster, roster_status, roster_views
from server.domain.actors import Actor
from server.domain.vocabulary import ORG_TYPES, check_choice
from server.errors import InvalidValue, NotAllowed, NotFound, RequiredValue

# OneRoster's GUID character set (1.2.1 CSV binding, as LongsightGroup/oneroster's validator
# checks it): letters, digits and ``. - _ / @``.
SOURCED_ID = re.compile(r"^[0-9A-Za-z.\-_/@]+$")
WRITABLE = ("name", "type", "parent", "identifier")


def add_school(session: Session, actor: Actor, sourced_id: str, fields: Mapping[str, Any]) -> Org:
    """A school (or district, or other org type) owned by the manual connection.

    ``fields``: ``name`` (required), ``type`` (default ``school``), ``parent`` (an org's
    sourcedId), ``identifier``.

    :raises RequiredValue: no name. :raises InvalidValue: a bad sourcedId, type or parent.
    :raises Conflict: the sourcedId is taken. :raises NotAllowed: not a district admin.
    """
    _ensure_district_admin(actor)
    sourced_id = (sourced_id or "").strip()
    if not SOURCED_ID.match(sourced_id):
        raise InvalidValue(
            f"Invalid sourcedId {sourced_id!r}: use letters, digits and . - _ / @ only.",
            field="sourced_id",
        )
    values = _org_fields(session, actor, None, fields)
    if not values.get("name"):
        raise RequiredValue("A school needs a name.", field="name")
    values.setdefault("type", "school")
    return roster.create_org(session, actor, {**values, "sourced_id": sourced_id})


def list_orgs(session: Session, actor: Actor, *, include_inactive: bool = False) -> list[Org]:
    """Every org of the tenant (district first, then schools by name)."""
    query = select(Org).where(Org.tenant_id == actor.tenant_id, not_deleted(Org.status))
    if not include_inactive:
        query = query.where(Org.status == RecordStatus.ACTIVE)
    orgs = list(session.scalars(query.order_by(Org.name)))
    return sorted(orgs, key=lambda org: org.type != "district")


def get_org(session: Session, actor: Actor, sourced_id: str) -> Org:
    """The org with this sourcedId. :raises NotFound: none in the actor's tenant."""
    org = roster_views.find_by_sourced_id(session, Org, actor.tenant_id, sourced_id)
    if org is None or org.status == RecordStatus.DELETED:
        raise NotFound(f"No school with sourcedId {sourced_id!r}.", field="sourced_id")
    return org


def change_school(
    session: Session,
    actor: Actor,
    sourced_id: str,
    fields: Mapping[str, Any],
    *,
    override: bool = False,
) -> dict[str, list[Any]]:
    """Rename a school, change its type or parent; returns the change set.

    :raises ManagedBySource: the school belongs to a sync connection and ``override`` is off.
    """
    _ensure_district_admin(actor)
    org = get_org(session, actor, sourced_id)
    values = _org_fields(session, actor, org, fields)
    if "name" in values and not values["name"]:
        raise RequiredValue("A school needs a name.", field="name")
    return roster.update_record(session, actor, org, values, override=override)


def set_school_active(
    session: Session, actor: Actor, sourced_id: str, active: bool, *, override: bool = False
) -> bool:
    """Deactivate (OneRoster ``tobedeleted``) or reactivate a school; False if it already was."""
    _ensure_district_admin(actor)
    org = get_org(session, actor, sourced_id)
    status = RecordStatus.ACTIVE if active else RecordStatus.INACTIVE
    return roster_status.set_status(session, actor, org, status, override=override)


def _org_fields(
    session: Session, actor: Actor, org: Org | None, fields: Mapping[str, Any]
) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(WRITABLE))
    if unknown:
        raise InvalidValue(f"Unknown school field {unknown[0]!r}.", field=unknown[0])
    for name, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise InvalidValue(f"The school's {name} must be text.", field=name)
    values: dict[str, Any] = {}
    if "name" in fields:
        values["name"] = (fields["name"] or "").strip()
    if fields.get("type"):
        values["type"] = check_choice(fields["type"], ORG_TYPES, "type")
    if "identifier" in fields:
        values["identifier"] = (fields["identifier"] or "").strip() or None
    if "parent" in fields:
        values["parent_id"] = _parent_id(session, actor, org, fields["parent"])
    return values


def _parent_id(session: Session, actor: Actor, org: Org | None, parent: str | None) -> str | None:
    """The parent's id; refuses an unknown parent and a parent chain that loops back."""
    if not parent:
        return None
    found = roster_views.find_by_sourced_id(session, Org, actor.tenant_id, parent.strip())
    if found is None:
        raise InvalidValue(f"No parent org with sourcedId {parent!r}.", code="R108", field="parent")
    ancestor: Org | None = found
    while ancestor is not None and org is not None:
        if ancestor.id == org.id:
            raise InvalidValue("A school cannot be its own parent or ancestor.", field="parent")
        ancestor = session.get(Org, ancestor.parent_id) if ancestor.parent_id else None
    return found.id


def _ensure_district_admin(actor: Actor) -> None:
    if actor.is_district_admin:
        return
    raise NotAllowed("Only district admins add and change schools.")
