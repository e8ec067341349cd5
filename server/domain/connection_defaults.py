"""A connection's default role and school, and what they fill in on a push (issue 10,
defect 4): the half of :mod:`server.domain.completeness` that :mod:`server.domain.users`
applies to every pushed user, so the two need not import each other."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from server.db import Connection, Org, RecordStatus
from server.domain.actors import Actor


@dataclass(frozen=True)
class Defaults:
    """A connection's default role and school (our org id); either may be None."""

    role: str | None = None
    school_id: str | None = None


def defaults_of(connection: Connection) -> Defaults:
    stored = (connection.settings or {}).get("defaults") or {}
    return Defaults(stored.get("role"), stored.get("school_id"))


def fill_for(
    session: Session, actor: Actor, has_roles: bool, named_role: str | None
) -> tuple[str, str | None] | None:
    """The (role, school id or None) a pushed user without roles gets, or None to leave it.

    The role the push named wins over the default role; without either nothing is filled.
    Applies only to pushes (a connection acting): staff choose roles themselves.
    """
    if has_roles or actor.kind != "connection" or not actor.connection_id:
        return None
    connection = session.get(Connection, actor.connection_id)
    defaults = defaults_of(connection) if connection else Defaults()
    role = named_role or defaults.role
    if not role:
        return None
    return role, active_school(session, defaults.school_id)


def active_school(session: Session, school_id: str | None) -> str | None:
    org = session.get(Org, school_id) if school_id else None
    return org.id if org is not None and org.status != RecordStatus.DELETED else None
