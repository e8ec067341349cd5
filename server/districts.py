"""Build a district through the domain services, one call a record: the demo district
(:mod:`server.demo`), the conformance suites and the tests all build theirs with these, so
every one obeys the rules real data obeys (issue 16, item 5).

Example::

    lincoln = districts.school(session, system, "Lincoln", sourced_id="lincoln")
    edna = districts.person(session, system, lincoln, "Edna", "Krabappel", "teacher")
    maths = districts.klass(session, system, lincoln, "Maths 4B")
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from server.db import Connection, Org, SchoolClass, User
from server.domain import roster, users
from server.domain.actors import Actor
from server.domain.connections import create_connection
from server.domain.users import RoleAssignment


def school(session: Session, actor: Actor, name: str = "Lincoln Elementary", **fields: Any) -> Org:
    """A school (an org of type ``school`` unless ``type`` says otherwise)."""
    return roster.create_org(session, actor, {"name": name, "type": "school", **fields})


def person(
    session: Session,
    actor: Actor,
    org: Org,
    given: str,
    family: str,
    role: str = "student",
    **fields: Any,
) -> User:
    """A user whose primary role is ``role`` at ``org``."""
    values = {
        "given_name": given,
        "family_name": family,
        "primary_role": role,
        "roles": [RoleAssignment(org.id, role)],
        **fields,
    }
    return users.create_user(session, actor, values)


def student(
    session: Session, actor: Actor, org: Org, given: str, family: str, **fields: Any
) -> User:
    """A student at ``org``."""
    return person(session, actor, org, given, family, "student", **fields)


def klass(
    session: Session, actor: Actor, org: Org, title: str = "Maths 3A", **fields: Any
) -> SchoolClass:
    """A class at ``org``."""
    return roster.create_class(session, actor, {"title": title, "school_id": org.id, **fields})


def sso_connection(session: Session, actor: Actor, provider: str = "Clever") -> Connection:
    """A OneRoster connection whose users sign in at ``provider`` (the SSO guard holds)."""
    return create_connection(
        session, actor, provider, "oneroster", sso_provider=provider
    ).connection
