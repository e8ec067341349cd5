"""Small builders for domain tests: a school, connections, users in classes."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from server.db import Connection, Org, SchoolClass, User
from server.domain import roster, users
from server.domain.actors import Actor, connection_actor
from server.domain.connections import create_connection
from server.domain.users import RoleAssignment


def school(session: Session, actor: Actor, name: str = "Lincoln Elementary") -> Org:
    return roster.create_org(session, actor, {"name": name, "type": "school"})


def sso_connection(session: Session, actor: Actor, provider: str = "Clever") -> Connection:
    return create_connection(
        session, actor, provider, "oneroster", sso_provider=provider
    ).connection


def student(
    session: Session, actor: Actor, org: Org, given: str, family: str, **extra: Any
) -> User:
    fields = {
        "given_name": given,
        "family_name": family,
        "primary_role": "student",
        "roles": [RoleAssignment(org.id, "student")],
        **extra,
    }
    return users.create_user(session, actor, fields)


def klass(session: Session, actor: Actor, org: Org, title: str = "Maths 3A") -> SchoolClass:
    return roster.create_class(session, actor, {"title": title, "school_id": org.id})


def pushed_by(connection: Connection) -> Actor:
    return connection_actor(connection)
