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
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state, set_committed_value

from server.db import (
    Connection,
    Credential,
    CredentialState,
    Org,
    RecordStatus,
    Tenant,
    User,
    UserGrade,
    UserRole,
    fold,
    new_id,
    utcnow,
)
from server.db.bulk_insert import insert_dicts
from server.domain import (
    audit,
    erasure,
    guard,
    pseudonyms,
    sso_link,
)
from server.domain.access import ensure_can_create, ensure_visible
from server.domain.actors import Actor
from server.domain.bulk_updates import changed_columns, write_changes
from server.domain.record_refs import UserRef
from server.domain.signin import account_key, staff_account_key
from server.domain.tenants import tenant_setting
from server.domain.user_fields import (
    Changes,
    assign,
    creation_changes,
    diff,
    folded_columns,
    grade_rows,
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

Referenced = TypeVar("Referenced", User, UserRef)  # a user as a record or a tuple
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
    values = with_defaults(session, actor, normalise(session, actor.tenant_id, fields), None)
    values = with_primary_org(values, None)
    owner = owning_connection(session, actor)
    user_id = values.get("id") or new_id()
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
    user = _inserted(session, owner, rows)
    # one row: the same row audit.record adds, without the ORM's unit of work (issue 15)
    audit.record_many(session, actor, "user.create", [creation_event(user.id, username, values)])
    return user


def _inserted(session: Session, owner: Connection, rows: NewUserRows) -> User:
    """The new user's rows written with Core INSERTs (:mod:`server.db.bulk_insert`, as the
    imports write theirs), and its :class:`User` made persistent as if just read, its
    credential, grades and connection loaded with it: the ORM's unit of work for one new user
    was a fifth of a SCIM create (issue 15). Roles (their ids are the database's) go in
    through the ORM, flushed here."""
    write_new_users(session, [rows], roles=False)
    user, credential = _as_read(User, rows.user), _as_read(Credential, rows.credential)
    grades = sorted((_as_read(UserGrade, row) for row in rows.grades), key=lambda row: row.grade)
    set_committed_value(credential, "user", user)
    for name, value in (
        ("connection", owner),
        ("credential", credential),
        ("grade_rows", grades),
        ("roles", []),
    ):
        set_committed_value(user, name, value)
    session.add(user)
    if rows.roles:
        user.roles = [UserRole(**row) for row in rows.roles]
        session.flush()
    return user


def _as_read(model: type[Made], row: Mapping[str, Any]) -> Made:
    """A record of ``model`` holding ``row`` (every column) as if just read, detached: its
    values set as a read sets them, without the attribute events of ``model(**row)`` (each
    recorded a change that :func:`make_transient_to_detached` then committed)."""
    made: Made = model.__mapper__.class_manager.new_instance()
    instance_state(made).dict.update(row)
    make_transient_to_detached(made)
    return made


def _ensure_creatable(actor: Actor, values: Mapping[str, Any]) -> None:
    ensure_can_create(actor, sorted({r.org_id for r in values.get("roles", [])}))
    if not (values.get("given_name") or values.get("family_name") or values.get("username")):
        raise RequiredValue("A user needs a name or a username.", field="given_name")


@dataclass(frozen=True)
class NewUserRows:
    """The rows a new user is made of: one definition for :func:`create_user` (ORM objects
    built from them, :func:`new_user`) and the bulk path of imports (Core ``executemany``,
    :mod:`server.domain.bulk`)."""

    user: dict[str, Any]  # every column of ``users``
    roles: list[dict[str, Any]]
    grades: list[dict[str, Any]]
    credential: dict[str, Any]


def write_new_users(session: Session, made: Sequence[NewUserRows], *, roles: bool = True) -> None:
    """Insert the rows of new users, one ``executemany`` per table (:mod:`server.db.bulk_insert`:
    an ORM object per user and its flush were most of a first import and a fifth of a SCIM
    create, issue 15), after what the session holds (the orgs the rows name). ``roles=False``:
    the caller adds the roles through the ORM."""
    session.flush()
    for model, table_rows in (
        (User, [rows.user for rows in made]),
        (UserRole, [row for rows in made for row in rows.roles] if roles else []),
        (UserGrade, [row for rows in made for row in rows.grades]),
        (Credential, [rows.credential for rows in made]),
    ):
        insert_dicts(session, model.__table__, table_rows)


def new_user_rows(
    actor: Actor, owner: Connection, values: Mapping[str, Any], username: str
) -> NewUserRows:
    """The rows of a new user from normalised, checked ``values``: owned by ``owner``, its
    sourcedId its id when none is given, its credential ``sso`` when the owner is an SSO
    connection and ``pending`` otherwise (SPEC §4)."""
    made = values.get("id") or new_id()
    now = utcnow()
    columns = {k: v for k, v in values.items() if k not in NOT_COLUMNS}
    given = {
        **columns,
        "id": made,
        "tenant_id": actor.tenant_id,
        "connection_id": owner.id,
        "sourced_id": values.get("sourced_id") or made,
        "username": username,
        "username_folded": fold(username),
        "created_at": now,
        "updated_at": now,
    }
    user = {**_defaults(User.__table__, given), **given}
    user["given_name"] = user["given_name"] or ""
    user["family_name"] = user["family_name"] or ""
    user.update(folded_columns(user))
    state = CredentialState.SSO if guard.is_sso_linked(owner) else CredentialState.PENDING
    credential: dict[str, Any] = {"user_id": made, "state": state, "updated_at": now}
    credential = {**_defaults(Credential.__table__, credential), **credential}
    return NewUserRows(
        user=user,
        roles=role_rows(made, values.get("roles") or []),
        grades=grade_rows(made, values.get("grades") or []),
        credential=credential,
    )


NOT_COLUMNS = frozenset(("roles", "grades", "username", "id", "sourced_id"))


def _column_defaults(table: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every column of ``table`` with its Python-side default: (constants, including None
    for a column without one; factories, called per row so no two rows share a dict). A Core
    ``executemany`` needs the same keys in every row."""
    constants: dict[str, Any] = {}
    factories: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if default is None or default.is_scalar:
            constants[column.key] = default.arg if default is not None else None
        else:
            factories[column.key] = default.arg  # SQLAlchemy wrapped it to take a context
    return constants, factories


def _defaults(table: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    constants, factories = _DEFAULTS[table.name]
    fresh = {key: make(None) for key, make in factories.items() if key not in given}
    return {**constants, **fresh}


_DEFAULTS = {model.__tablename__: _column_defaults(model.__table__) for model in (User, Credential)}


def new_user(actor: Actor, owner: Connection, values: Mapping[str, Any], username: str) -> User:
    """The :class:`User` that :func:`create_user` adds for normalised, checked ``values``."""
    rows = new_user_rows(actor, owner, values, username)
    user = User(**rows.user)
    user.roles = [UserRole(**row) for row in rows.roles]
    user.grade_rows = [UserGrade(**row) for row in rows.grades]
    user.credential = Credential(**rows.credential)
    return user


def creation_event(user_id: str, username: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``user.create`` audit event's details for a user created from ``values``."""
    return {
        "target_kind": "user",
        "target_id": user_id,
        "target_label": username,
        "changes": creation_changes(username, dict(values)),
    }


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


def delete_due_leavers(session: Session, actor: Actor, *, now: datetime | None = None) -> int:
    """Delete the deactivated students whose keep-until date (``purge_after``, set when they
    were deactivated: see :func:`server.domain.leavers.leaver_keep_until`) has passed."""
    due = session.scalars(
        select(User).where(
            User.tenant_id == actor.tenant_id,
            User.status == RecordStatus.INACTIVE,
            User.purge_after <= (now or utcnow()),
        )
    ).all()
    for user in due:
        delete_user(
            session,
            actor,
            user,
            override=True,
            reason="Deactivated student kept until the end of the school year and grace period.",
            now=now,
        )
    return len(due)


def purge_deleted_users(
    session: Session, actor: Actor, *, secret_key: str | Sequence[str], now: datetime | None = None
) -> int:
    """Erase the deleted users whose retention period is over (:mod:`server.domain.erasure`):
    nothing of them stays but a pseudonym in the audit log. Returns how many."""
    due = session.scalars(
        select(User).where(
            User.tenant_id == actor.tenant_id,
            User.status == RecordStatus.DELETED,
            User.purge_after <= (now or utcnow()),
        )
    ).all()
    key = pseudonyms.tenant_key(session, actor.tenant_id, secret_key) if due else b""
    for user in due:
        keys = [
            account_key(user.tenant_id, user.username, key),
            staff_account_key(user.tenant_id, user.username, key),
        ]
        alias = erasure.purge_user(session, user, pseudonym_key=key, throttle_keys=keys)
        audit.record(session, actor, "user.purge", target_kind="user", target_id=alias)
    session.flush()
    return len(due)


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


def referenced_user(actor: Actor, user: Referenced | None, key: str, field: str) -> Referenced:
    """The user a source's row names by sourcedId ``key`` (found by the caller as a ``User``
    or a :class:`~server.domain.record_refs.UserRef`, or None), checked: it exists and
    belongs to the acting connection (SPEC §4 ownership).

    :raises NotFound: (R108) no such user, or a deleted one.
    :raises OwnedByAnotherConnection: (R109) another connection's user.
    """
    if user is None or user.status == RecordStatus.DELETED:
        raise NotFound(f"No user with sourcedId {key!r}.", field=field)
    if not may_reference(actor, user.status, user.connection_id):
        owner = user.connection_name if isinstance(user, UserRef) else user.connection.name
        raise OwnedByAnotherConnection(owner, "This user")
    return user


def may_reference(actor: Actor, status: str, connection_id: str) -> bool:
    """Whether a source's row may name a user in this state (see :func:`referenced_user`)."""
    return status != RecordStatus.DELETED and connection_id == actor.connection_id


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
