"""A user's status (SPEC §3): what a (de)activation writes and what follows it, once.

A deactivated user keeps their data, cannot sign in and loses their tokens; a student who
leaves is kept until the end of the school year (:func:`server.domain.leavers.
leaver_keep_until`); reactivating restores them. :func:`status_values` is the change of the
user's row, :func:`after_status_change` what follows it (tokens revoked, the SCIM index marked)
and :func:`status_event` its audit event. :mod:`server.domain.users` applies them to ORM users
(the staff app, the admin API, imports, SCIM ``PUT`` and the engine's ``PATCH``);
:func:`server.domain.status_rows.set_active` applies the very same to a user read as a
plain row, for the SCIM ``PATCH`` of ``active`` alone (issue 15).

>>> status_values(session, tenant_id, "student", "inactive", utcnow())  # doctest: +SKIP
{'status': 'inactive', 'updated_at': ..., 'deleted_at': None, 'purge_after': ...}
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from server.db import RecordStatus
from server.domain import scim_index
from server.domain.actors import Actor
from server.domain.leavers import keep_until, leaver_keep_until
from server.domain.oauth import revoke_tokens_of

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


def after_status_change(
    session: Session, actor: Actor, user_ids: list[str], status: str, *, tokens: bool = True
) -> None:
    """What follows a written status change of users of the actor's tenant: their tokens
    revoked unless active, the index marked. ``tokens=False``: the caller read, in this
    transaction, that the users hold no token to revoke."""
    if status != RecordStatus.ACTIVE and user_ids and tokens:
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
