"""A SCIM (de)activation on plain rows (issue 15): the status rule of
:mod:`server.domain.user_status` applied to a user read without an ORM object.

A ``PATCH`` of ``active`` alone is the request identity providers send most. Loading the user
as an ORM object and flushing it were half of it; here it is one read of the user with its
memberships, the live check of the token, the tenant's settings and whether the user holds
OIDC tokens (:func:`server.domain.user_views.find_view_to_change`), one ``UPDATE … WHERE id =
:id AND version = :v``, the revocation (only when there are tokens to revoke) and the audit row.

>>> set_active(session, actor, user_id, False, token=digest)  # doctest: +SKIP
(UserView(..., status='inactive', version=2, ...), True)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from server.db import RecordStatus, User, utcnow
from server.domain import audit
from server.domain.actors import Actor
from server.domain.user_status import (
    ACTIONS,
    STATUS_COLUMNS,
    after_status_change,
    status_event,
    status_values,
)
from server.domain.user_views import UserView, find_view_to_change


def set_active(
    session: Session, actor: Actor, user_id: str, active: bool, *, token: str | None = None
) -> tuple[UserView, bool] | None:
    """Deactivate or reactivate a connection's user read as a plain row; the view of the user
    as stored and whether it changed, or None when the connection sees no such user (or
    ``token``, the digest of the request's bearer token, is no longer live: the caller asks
    which). A user that already has that status is not written.

    The read finds only the connection's own users, not deleted (:func:`server.domain.access.
    visible_records`): all that :func:`server.domain.users.deactivate_user` checks of a
    connection (its own user; the SSO guard locks usernames and passwords, not a status).

    :raises StaleDataError: the user was changed between the read and the write.
    :raises ValueError: ``actor`` is not a connection (others go through :mod:`users`).
    """
    if actor.kind != "connection":
        raise ValueError("Only a connection sets a user's status from a plain row.")
    found = find_view_to_change(session, actor, user_id, token=token)
    if found is None:
        return None
    view, status = found.view, RecordStatus.ACTIVE if active else RecordStatus.INACTIVE
    if view.status == status:
        return view, False
    now = utcnow()
    settings = found.settings
    values = status_values(session, actor.tenant_id, view.primary_role, status, now, settings)
    _write_status(session, view, values)
    after_status_change(session, actor, [view.id], status, tokens=found.holds_tokens)
    event = status_event(view.id, view.username, view.status, status)
    audit.record_many(session, actor, ACTIONS[status], [event])
    return replace(view, status=status, updated_at=now, version=view.version + 1), True


def _write_status(session: Session, view: UserView, values: dict[str, Any]) -> None:
    """One UPDATE of the user's status columns, checking and moving its version (its ETag)
    as the ORM's flush does."""
    parameters = {f"s_{name}": value for name, value in values.items()}
    parameters.update(s_id=view.id, s_version=view.version, s_next=view.version + 1)
    result = session.connection().execute(_STATUS_UPDATE, parameters)
    if cast("CursorResult[Any]", result).rowcount != 1:
        raise StaleDataError(f"User {view.id} changed since it was read.")


_USERS = cast(Table, User.__table__)
# built once: every status column, as a (de)activation writes them all
_STATUS_UPDATE = (
    update(_USERS)
    .where(_USERS.c.id == bindparam("s_id"), _USERS.c.version == bindparam("s_version"))
    .values(
        version=bindparam("s_next"), **{name: bindparam(f"s_{name}") for name in STATUS_COLUMNS}
    )
)
