"""Adoption: a connection taking over a user another connection (or staff) made.

The one adoption path of every surface (SCIM, OneRoster push, imports, pulls): a connection
adopts only by the key it is set to adopt by (SPEC §4), the guard refuses a user SSO-linked to
another provider, and an SSO connection's adoption voids the user's local credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from server.db import User, utcnow
from server.domain import audit, guard, sso_link
from server.domain.actors import Actor
from server.domain.user_lookups import find_adoptable, owning_connection
from server.domain.users import record_name
from server.errors import OwnedByAnotherConnection


def adopt_user(session: Session, actor: Actor, user: User, matched_by: str) -> None:
    """Move a user to the acting connection (only when that connection is set to adopt).

    The one adoption path of every surface (SCIM, OneRoster push, imports, pulls). Audited with
    the previous owner. Adopted by an SSO connection, the account loses every local credential
    (:func:`server.domain.sso_link.void_local_credentials`).

    :raises OwnedByAnotherConnection: (R109) the connection does not adopt by ``matched_by``.
    :raises ManagedBySource: (R107) the user is SSO-linked to another provider (the guard).
    """
    connection = owning_connection(session, actor)
    if connection.adopt_by != matched_by:
        raise OwnedByAnotherConnection(
            user.connection.name, record_name(user), provider=user.connection.provider_name
        )
    previous = user.connection
    guard.check_adoption(connection, previous)
    user.connection_id = connection.id
    user.connection = connection
    if guard.is_sso_linked(connection):
        sso_link.void_local_credentials(session, actor, user)
    user.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "user.adopt",
        target_kind="user",
        target_id=user.id,
        target_label=user.username,
        changes={"connection": [previous.name, connection.name]},
        detail=f"Matched by {matched_by}; previously owned by {previous.name!r}"
        + (f" (SSO: {previous.provider_name})." if guard.is_sso_linked(previous) else "."),
    )


def adopt_matching(session: Session, actor: Actor, fields: Mapping[str, Any]) -> User | None:
    """Take over the user that the acting connection adopts for ``fields``, if any (SPEC §4).

    What every push calls before creating a user: :func:`find_adoptable`, then
    :func:`adopt_user` (guarded and audited). Returns the adopted user or None.

    :raises ManagedBySource: (R107) the match is SSO-linked to another provider.
    """
    user = find_adoptable(session, actor, fields)
    if user is not None:
        adopt_user(session, actor, user, owning_connection(session, actor).adopt_by or "")
    return user
