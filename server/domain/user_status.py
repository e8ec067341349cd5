"""A user's status (SPEC §3): what a (de)activation writes and what follows it, once.

A deactivated user keeps their data, cannot sign in and loses their tokens; a student who
leaves is kept until the end of the school year (:func:`server.domain.leavers.
leaver_keep_until`); reactivating restores them. :func:`status_values` is the change of the
user's row, :func:`after_status_change` what follows it (tokens revoked, the SCIM index marked)
and :func:`status_event` its audit event. :mod:`server.domain.users` applies them to ORM users
(the staff app, the admin API, imports, SCIM ``PUT`` and the engine's ``PATCH``);
:func:`set_active` applies the very same to a user read as a plain row, for the request
identity providers send most, a SCIM ``PATCH`` of ``active`` alone (issue 15): one read with
the live check of the token and the tenant's settings (:func:`server.domain.user_views.
find_view_to_change`), one ``UPDATE … WHERE id = :id AND version = :v``, the revocation and
the audit row, and no ORM object (loading the user and flushing it were half of such a
request).

>>> set_active(session, actor, user_id, False, token=digest)  # doctest: +SKIP
(UserView(..., status='inactive', version=2, ...), True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from server.db import RecordStatus, User, utcnow
from server.domain import audit, scim_index
from server.domain.actors import Actor
from server.domain.leavers import keep_until, leaver_keep_until
from server.domain.oauth import revoke_tokens_of
from server.domain.user_views import UserView, find_view_to_change

STATUS_COLUMNS = ("status", "deleted_at", "purge_after", "updated_at")  # status_values sets
ACTIONS = {RecordStatus.INACTIVE: "user.deactivate", RecordStatus.ACTIVE: "user.reactivate"}


def status_values(
    session: Session,
    tenant_id: str,
    primary_role: str,
    status: str,
    now: datetime,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The columns a change of a user's status to ``status`` writes (a deletion's dates are
    :func:`server.domain.users.delete_user`'s): a leaving student's keep-until date, from the
    tenant's ``settings`` when the caller read them already."""
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if status != RecordStatus.DELETED:
        values.update(deleted_at=None, purge_after=None)
    if status == RecordStatus.INACTIVE and primary_role == "student":
        values["purge_after"] = (
            leaver_keep_until(session, tenant_id, now)
            if settings is None
            else keep_until(settings, now)
        )
    return values


def after_status_change(session: Session, actor: Actor, user_ids: list[str], status: str) -> None:
    """What follows a written status change of users of the actor's tenant: their tokens
    revoked unless active, the index marked."""
    if status != RecordStatus.ACTIVE and user_ids:
        revoke_tokens_of(session, user_ids)
    for user_id in user_ids:
        mark_scim_index_stale(session, actor, actor.tenant_id, user_id)


def mark_scim_index_stale(session: Session, actor: Actor, tenant_id: str, user_id: str) -> None:
    """Changes a connection makes index themselves; any other change (a staff override) leaves
    the SCIM attribute index to be refreshed before the next SCIM search."""
    if actor.kind != "connection":
        scim_index.mark_stale(session, tenant_id, "User", user_id)


def status_event(
    user_id: str,
    username: str,
    before: str,
    status: str,
    *,
    overridden: bool = False,
    reason: str | None = None,
) -> dict[str, Any]:
    """The audit event of a status change (:func:`server.domain.audit.record_many`)."""
    return {
        "target_kind": "user",
        "target_id": user_id,
        "target_label": username,
        "changes": {"status": [before, status]},
        "override": overridden,
        "detail": reason,
    }


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
    (view, settings), status = found, RecordStatus.ACTIVE if active else RecordStatus.INACTIVE
    if view.status == status:
        return view, False
    now = utcnow()
    values = status_values(session, actor.tenant_id, view.primary_role, status, now, settings)
    _write_status(session, view, values)
    after_status_change(session, actor, [view.id], status)
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
