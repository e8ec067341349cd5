"""Users: create, update, deactivate, reactivate, delete (soft, with retention), restore, purge.

Every write goes through the guard (:mod:`server.domain.guard`), bumps the record's version
(its ETag), stamps ``updated_at`` and appends one audit event. Writing the same values again
changes nothing and returns an empty change set, so every push is idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import (
    Connection,
    Credential,
    Org,
    RecordStatus,
    Tenant,
    User,
    UserGrade,
    UserRole,
    new_record_id,
    utcnow,
)
from server.db.bulk_insert import insert_dicts
from server.domain import (
    audit,
    guard,
)
from server.domain.access import ensure_can_create, ensure_visible
from server.domain.actors import Actor
from server.domain.bulk_updates import changed_columns, write_changes
from server.domain.new_user_rows import (
    NewUserRows,
    creation_event,
    inserted_user,
    new_user_rows,
    write_new_users,
)
from server.domain.tenants import tenant_setting
from server.domain.user_fields import (
    Changes,
    assign,
    diff,
    normalise,
    with_defaults,
    with_primary_org,
)
from server.domain.user_fields import (  # re-exported: many callers name them users.X
    RoleAssignment as RoleAssignment,
)
from server.domain.user_fields import role_assignments as role_assignments
from server.domain.user_fields import role_rows as role_rows
from server.domain.user_lookups import Claims, claims
from server.domain.user_lookups import find_adoptable as find_adoptable
from server.domain.user_lookups import find_by_external_id as find_by_external_id
from server.domain.user_lookups import find_by_sourced_id as find_by_sourced_id
from server.domain.user_lookups import find_by_username as find_by_username
from server.domain.user_lookups import get_user as get_user
from server.domain.user_lookups import owning_connection as owning_connection
from server.domain.user_status import (
    ACTIONS,
    STATUS_COLUMNS,
    after_status_change,
    mark_scim_index_stale,
    status_event,
    status_values,
)
from server.domain.usernames import generate_username, is_username_taken
from server.errors import (
    Conflict,
    NotAllowed,
    NotFound,
    OwnedByAnotherConnection,
    RequiredValue,
    UsernameTaken,
    VersionMismatch,
)

Made = TypeVar("Made", User, Credential, UserGrade)


def create_user(session: Session, actor: Actor, fields: Mapping[str, Any]) -> User:
    """Create a user owned by the actor's connection (manual for staff).

    ``fields`` holds :data:`USER_FIELDS`; a missing username is generated from the tenant
    pattern. The credential starts ``sso`` for SSO-linked users and ``pending`` otherwise (set a
    password with :mod:`server.domain.credentials`). A connection re-creating a deleted user's
    externalId within the retention period restores that user instead.

    :raises UsernameTaken: (R104) the username is used in this tenant.
    :raises OwnedByAnotherConnection: (R109) a connection met another connection's user.
    :raises InvalidValue, RequiredValue, NotFound: bad fields or unknown orgs.
    """
    made = _new_user(session, actor, fields)
    if isinstance(made, User):
        return made
    owner, rows, event = made
    user = inserted_user(session, owner, rows)
    # one row: the same row audit.record adds, without the ORM's unit of work (issue 15)
    audit.record_many(session, actor, "user.create", [event])
    return user


def create_user_rows(
    session: Session, actor: Actor, fields: Mapping[str, Any]
) -> User | NewUserRows:
    """:func:`create_user` for a caller that needs only the stored values (SCIM answers a
    create from a view of them): a new user's rows are written with Core (roles too, as the
    imports write theirs) and returned, with no ORM object made for them (issue 15). A
    restored user is returned as its :class:`User`.

    :raises: as :func:`create_user`.
    """
    made = _new_user(session, actor, fields)
    if isinstance(made, User):
        return made
    _, rows, event = made
    write_new_users(session, [rows])
    audit.record_many(session, actor, "user.create", [event])
    return rows


def _new_user(
    session: Session, actor: Actor, fields: Mapping[str, Any]
) -> User | tuple[Connection, NewUserRows, dict[str, Any]]:
    """The checked rows of a new user, its owner and its ``user.create`` event; or the user
    restored instead (:func:`create_user`)."""
    values = with_defaults(session, actor, normalise(session, actor.tenant_id, fields), None)
    values = with_primary_org(values, None)
    owner = owning_connection(session, actor)
    user_id = values.get("id") or new_record_id()
    held = _claims(session, actor, owner, values, values.get("sourced_id") or user_id)
    restored = _restore_by_external_id(session, actor, held.restorable)
    if restored is not None:
        update_user(session, actor, restored, values)
        return restored
    _ensure_creatable(actor, values)
    username = _choose_username(session, actor, values, taken=held.username_taken)
    rows = new_user_rows(actor, owner, {**values, "id": user_id}, username)
    if held.sourced_id_taken:
        taken = rows.user["sourced_id"]
        raise Conflict(f"The sourcedId {taken!r} is already used.", field="sourced_id")
    return owner, rows, creation_event(user_id, username, values)


def _ensure_creatable(actor: Actor, values: Mapping[str, Any]) -> None:
    ensure_can_create(actor, sorted({r.org_id for r in values.get("roles", [])}))
    if not (values.get("given_name") or values.get("family_name") or values.get("username")):
        raise RequiredValue("A user needs a name or a username.", field="given_name")


def prepared_for_create(
    session: Session, actor: Actor, fields: Mapping[str, Any], *, org_ids: set[str] | None = None
) -> dict[str, Any]:
    """``fields`` validated and normalised as :func:`create_user` does, the checks that need
    no other user included; ``org_ids``: the tenant's orgs, when the caller read them already.

    :raises InvalidValue, RequiredValue, NotFound, NotAllowed: as :func:`create_user`.
    """
    values = normalise(session, actor.tenant_id, fields, org_ids=org_ids)
    values = with_primary_org(with_defaults(session, actor, values, None), None)
    _ensure_creatable(actor, values)
    return values


def update_user(
    session: Session,
    actor: Actor,
    user: User,
    fields: Mapping[str, Any],
    *,
    override: bool = False,
    expected_version: int | None = None,
) -> Changes:
    """Apply the fields that differ; returns ``{field: [before, after]}`` (empty: unchanged).

    :raises ManagedBySource: a manual change to what the owning connection manages.
    :raises VersionMismatch: ``expected_version`` is not the current version.
    """
    change = _user_change(session, actor, user, fields, override, expected_version)
    if change is None:
        return {}
    session.flush()
    audit.record(session, actor, "user.update", **_update_event(user, change))
    _mark_scim_index_stale(session, actor, user)
    return change.changes


def update_users(
    session: Session, actor: Actor, items: Sequence[tuple[User, Mapping[str, Any]]]
) -> list[Changes]:
    """:func:`update_user` for many users at once (what an import changes): the same checks
    and changes, the changed columns written with one ``executemany`` per set of changed
    columns (roles and grades by the ORM's flush), the audit events with one more (issue 15).
    Returns each user's change set.

    :raises: the first error :func:`update_user` raises for a user (the caller rolls back).
    """
    orgs = org_ids_named(session, actor.tenant_id, [fields for _, fields in items])
    new_roles: list[dict[str, Any]] = []
    with session.no_autoflush:  # written below, not one UPDATE per user
        planned = [
            _user_change(session, actor, user, fields, org_ids=orgs, new_roles=new_roles)
            for user, fields in items
        ]
    by_columns: dict[tuple[str, ...], list[User]] = {}
    for (user, _), change in zip(items, planned, strict=True):
        columns = changed_columns(user) if change is not None else None
        if columns:
            by_columns.setdefault(columns, []).append(user)
    for columns, written in by_columns.items():
        write_changes(session, written, columns)
    session.flush()  # the rows of changed grades, and of roles that stay or go
    changed = [user for (user, _), change in zip(items, planned, strict=True) if change]
    _insert_roles(session, new_roles, changed)
    events = []
    for (user, _), change in zip(items, planned, strict=True):
        if change is not None:
            events.append(_update_event(user, change))
            _mark_scim_index_stale(session, actor, user)
    audit.record_many(session, actor, "user.update", events)
    return [change.changes if change is not None else {} for change in planned]


def _insert_roles(session: Session, rows: list[dict[str, Any]], changed: list[User]) -> None:
    """The roles a batch's users gain, one ``executemany`` after the flush deleted the rows
    that go (the unique (user, org, role) rows hold); the changed users' roles read again
    when next used (their collections hold only the rows that stayed)."""
    if not rows:
        return
    insert_dicts(session, UserRole.__table__, rows)
    for user in changed:
        session.expire(user, ["roles"])


def org_ids_named(session: Session, tenant_id: str, batch: Sequence[Mapping[str, Any]]) -> set[str]:
    """The tenant's orgs among those the batch's roles and primary orgs name (one read per
    900, for the checks of a batch of users)."""
    wanted = sorted(
        {role.org_id for row in batch for role in row.get("roles") or []}
        | {row["primary_org_id"] for row in batch if row.get("primary_org_id")}
    )
    found: set[str] = set()
    for start in range(0, len(wanted), 900):
        chunk = wanted[start : start + 900]
        query = select(Org.id).where(Org.tenant_id == tenant_id, Org.id.in_(chunk))
        found |= set(session.scalars(query))
    return found


@dataclass(frozen=True)
class _Update:
    """A checked change of a user (set on the object, not flushed)."""

    changes: Changes
    overridden: bool


def _user_change(
    session: Session,
    actor: Actor,
    user: User,
    fields: Mapping[str, Any],
    override: bool = False,
    expected_version: int | None = None,
    org_ids: set[str] | None = None,
    new_roles: list[dict[str, Any]] | None = None,
) -> _Update | None:
    """Check and set the fields of ``user`` that differ (not flushed), or None when none do.
    ``org_ids``: the tenant's orgs among those the fields name, when read for a batch;
    ``new_roles``: gathers the rows of the roles the user gains (see ``assign``)."""
    _ensure_may_touch(session, actor, user)
    if expected_version is not None and expected_version != user.version:
        raise VersionMismatch("The record was changed since you read it; reload and try again.")
    normalised = normalise(session, actor.tenant_id, fields, org_ids=org_ids)
    values = with_primary_org(with_defaults(session, actor, normalised, user), user)
    changes = diff(user, values)
    if not changes:
        return None
    overridden = guard.check_change(
        actor, user.connection, changes, override=override, what=record_name(user)
    )
    if "username" in changes:
        _ensure_username_free(session, actor, values["username"], user)
    if "sourced_id" in changes:
        _ensure_sourced_id_free(session, actor.tenant_id, values["sourced_id"])
    assign(user, {k: values[k] for k in changes}, new_roles)
    user.updated_at = utcnow()
    return _Update(changes, overridden)


def _update_event(user: User, change: _Update) -> dict[str, Any]:
    return {
        "target_kind": "user",
        "target_id": user.id,
        "target_label": user.username,
        "changes": audit.changed_only(change.changes),
        "override": change.overridden,
        "detail": guard.override_warning(user.connection) if change.overridden else None,
    }


def deactivate_user(
    session: Session, actor: Actor, user: User, *, override: bool = False, reason: str | None = None
) -> bool:
    """Mark a user inactive: data kept, sign-in refused. Returns False if already inactive."""
    return _set_status(
        session,
        actor,
        user,
        RecordStatus.INACTIVE,
        ACTIONS[RecordStatus.INACTIVE],
        override,
        reason,
    )


def reactivate_user(
    session: Session, actor: Actor, user: User, *, override: bool = False, reason: str | None = None
) -> bool:
    """Restore an inactive (or deleted, not yet purged) user with their history."""
    if user.status == RecordStatus.DELETED:
        _ensure_username_free(session, actor, user.username, user)
    return _set_status(
        session, actor, user, RecordStatus.ACTIVE, ACTIONS[RecordStatus.ACTIVE], override, reason
    )


def ensure_can_delete(actor: Actor) -> None:
    """Only district admins (and connections, the system) delete accounts; other staff
    deactivate. :raises NotAllowed:"""
    if actor.kind == "staff" and not actor.is_district_admin:
        raise NotAllowed("Only district admins can delete accounts; deactivate it instead.")


def delete_user(
    session: Session,
    actor: Actor,
    user: User,
    *,
    override: bool = False,
    reason: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Delete a user: the one deletion of every surface (SCIM ``DELETE``, the staff app, the
    admin API, the retention of deactivated students).

    The user is hidden everywhere at once, cannot sign in and loses their tokens; their
    personal data is purged (:func:`purge_deleted_users`) after the tenant's
    ``retention_days`` (SPEC §5), until when a re-provisioning connection restores them.
    Returns False if already deleted.

    :raises NotAllowed: staff other than district admins.
    """
    ensure_can_delete(actor)
    changed = _set_status(
        session, actor, user, RecordStatus.DELETED, "user.delete", override, reason
    )
    if changed:
        days = int(tenant_setting(session, user.tenant_id, "retention_days"))
        user.deleted_at = now or utcnow()
        user.purge_after = user.deleted_at + timedelta(days=days)
    return changed


def _set_status(
    session: Session,
    actor: Actor,
    user: User,
    status: str,
    action: str,
    override: bool,
    reason: str | None,
) -> bool:
    change = _status_change(session, actor, user, status, override)
    if change is None:
        return False
    session.flush()
    _after_status_change(session, actor, [user], status)
    audit.record_many(session, actor, action, [_status_event(user, change, status, reason)])
    return True


def deactivate_users(
    session: Session, actor: Actor, batch: Sequence[User], *, reason: str | None = None
) -> list[bool]:
    """:func:`deactivate_user` for every user of ``batch`` at once (what a full import
    deactivates): the same checks and changes, one flush, one token revocation and the audit
    events in one ``executemany`` (issue 15). Returns, per user, whether it changed.

    :raises: the first error :func:`deactivate_user` raises for a user (the caller rolls back).
    """
    status = RecordStatus.INACTIVE
    with session.no_autoflush:  # written below with one UPDATE, not one per user
        changes = [_status_change(session, actor, user, status, False) for user in batch]
    changed = [(user, change) for user, change in zip(batch, changes, strict=True) if change]
    write_changes(session, [user for user, _ in changed], STATUS_COLUMNS)
    _after_status_change(session, actor, [user for user, _ in changed], status)
    events = [_status_event(user, change, status, reason) for user, change in changed]
    audit.record_many(session, actor, ACTIONS[status], events)
    return [change is not None for change in changes]


def _status_change(
    session: Session, actor: Actor, user: User, status: str, override: bool
) -> tuple[str, bool] | None:
    """Check and set a user's status (not flushed); returns (status before, overridden) or
    None when it already has ``status``."""
    _ensure_may_touch(session, actor, user)
    if user.status == status:
        return None
    overridden = guard.check_change(
        actor, user.connection, ["status"], override=override, what=record_name(user)
    )
    before = user.status
    values = status_values(session, user.tenant_id, user.primary_role, status, utcnow())
    for name, value in values.items():
        setattr(user, name, value)
    return before, overridden


def _after_status_change(session: Session, actor: Actor, changed: list[User], status: str) -> None:
    after_status_change(session, actor, [user.id for user in changed], status)


def _status_event(
    user: User, change: tuple[str, bool], status: str, reason: str | None
) -> dict[str, Any]:
    before, overridden = change
    return status_event(
        user.id, user.username, before, status, overridden=overridden, reason=reason
    )


def _mark_scim_index_stale(session: Session, actor: Actor, user: User) -> None:
    mark_scim_index_stale(session, actor, user.tenant_id, user.id)


def record_name(user: User) -> str:
    """How a refusal names the user: "This student", "This teacher", else "This user"."""
    role = user.primary_role if user.primary_role in ("student", "teacher") else "user"
    return f"This {role}"


def _ensure_may_touch(session: Session, actor: Actor, user: User) -> None:
    if user.tenant_id != actor.tenant_id:
        raise NotFound("No such user.")
    if actor.kind == "connection":
        if user.connection_id != actor.connection_id:
            raise OwnedByAnotherConnection(
                user.connection.name, record_name(user), provider=user.connection.provider_name
            )
        return
    ensure_visible(session, actor, user)


def _claims(
    session: Session, actor: Actor, owner: Connection, values: Mapping[str, Any], sourced_id: str
) -> Claims:
    """Who holds the username, sourcedId and externalId a new user claims (one read)."""
    external_id = values.get("external_id")
    return claims(
        session,
        actor.tenant_id,
        sourced_id=sourced_id,
        username=values.get("username"),
        external_id=(owner.id, external_id) if actor.kind == "connection" and external_id else None,
    )


def _restore_by_external_id(session: Session, actor: Actor, user_id: str | None) -> User | None:
    """The connection's deleted user with the new user's externalId, restored (SPEC §5)."""
    deleted = session.get(User, user_id) if user_id else None
    if deleted is None or deleted.status != RecordStatus.DELETED:
        return None
    reactivate_user(session, actor, deleted, reason="Re-provisioned within the retention period.")
    return deleted


def _choose_username(session: Session, actor: Actor, values: dict[str, Any], *, taken: bool) -> str:
    """The given username (``taken``: :func:`claims` found it held), else a generated one."""
    username = values.get("username")
    if username:
        if taken:
            _ensure_username_free(session, actor, username, None)
        return str(username)
    tenant = session.get(Tenant, actor.tenant_id)
    pattern = (tenant.settings if tenant else {}).get("username_pattern") or "{first}{last}"
    return generate_username(
        session,
        actor.tenant_id,
        values.get("given_name") or "",
        values.get("family_name") or "",
        email=values.get("email"),
        pattern=pattern,
    )


def _ensure_username_free(session: Session, actor: Actor, username: str, user: User | None) -> None:
    if not is_username_taken(
        session, actor.tenant_id, username, except_user_id=user.id if user else None
    ):
        return
    holder = find_by_username(session, actor.tenant_id, username)
    if (
        actor.kind == "connection"
        and holder is not None
        and holder.connection_id != actor.connection_id
    ):
        raise OwnedByAnotherConnection(
            holder.connection.name,
            f"The username {username!r}",
            provider=holder.connection.provider_name,
        )
    raise UsernameTaken(
        f"The username {username!r} is already used by another account.", field="username"
    )


def _ensure_sourced_id_free(session: Session, tenant_id: str, sourced_id: str) -> None:
    if find_by_sourced_id(session, tenant_id, sourced_id) is not None:
        raise Conflict(f"The sourcedId {sourced_id!r} is already used.", field="sourced_id")
