"""Rows of roles.csv (1.2), users.csv, demographics.csv and userProfiles.csv: users created,
updated, adopted or deactivated through the domain (``server.domain.users``, ``bulk``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Text, cast, select

from server.db import (
    Org,
    RecordStatus,
    User,
    UserRole,
)
from server.domain import bulk, credentials, user_adoption, users
from server.domain.import_records import (
    ImportRecord,
    Outcome,
    RowProblem,
    RowResult,
)
from server.domain.users import RoleAssignment
from server.domain.vocabulary import check_choice, check_role, parse_date
from server.imports.contract import ImportContext
from server.imports.oneroster_csv.lookups import (
    _batch_user,
    _resolve,
    _result,
    gather_role_source,
    none_stored,
)

SEXES = ("male", "female", "unspecified", "other")
OTHER_FILES_EXTRA = ("demographics", "userProfiles")
ROLE_TYPES = ("primary", "secondary")


def handle_role(ctx: ImportContext, record: ImportRecord) -> list[RowResult]:
    """Gather a 1.2 role for its user (checked now, applied with the user row)."""
    org_id = _resolve(ctx, Org, record.refs["org_key"], "org", "orgSourcedId")
    role = check_role(record.fields["role"])
    role_type = check_choice(record.fields["role_type"], ROLE_TYPES, "roleType")
    assignment = RoleAssignment(
        org_id,
        role,
        role_type,
        parse_date(record.fields["begin_date"], "beginDate"),
        parse_date(record.fields["end_date"], "endDate"),
        record.key,
        record.fields["user_profile_key"],
    )
    user_key = record.refs["user_key"]
    ctx.cache.setdefault("role_rows", {}).setdefault(user_key, record.number)
    ctx.cache.setdefault("role_holders", {})[record.key] = user_key
    gather_role_source(ctx, record)
    if record.status == "tobedeleted":
        ctx.cache.setdefault("roles_removed", {}).setdefault(user_key, []).append(assignment)
        return []
    ctx.cache.setdefault("roles_by_user", {}).setdefault(user_key, []).append(
        (assignment, record.refs["org_key"])
    )
    return []


def _roles_for(ctx: ImportContext, key: str, current: list[RoleAssignment]) -> list[RoleAssignment]:
    """The user's roles after this package: a bulk roles.csv lists all of them; a delta one
    changes the roles it lists (matched by sourcedId, else by org and role) and removes
    those marked ``tobedeleted``."""
    gathered = [assignment for assignment, _ in ctx.cache.get("roles_by_user", {}).get(key, [])]
    if ctx.cache["roles_mode"]["value"] == "bulk":
        return gathered
    listed = gathered + ctx.cache.get("roles_removed", {}).get(key, [])
    holders = ctx.cache.get("role_holders", {})

    def replaced(r: RoleAssignment) -> bool:
        moved = r.sourced_id is not None and holders.get(r.sourced_id, key) != key
        return moved or any(
            (r.sourced_id is not None and r.sourced_id == x.sourced_id)
            or (r.org_id, r.role) == (x.org_id, x.role)
            for x in listed
        )

    return [r for r in current if not replaced(r)] + gathered


def _users_of_role_rows(ctx: ImportContext) -> Iterator[ImportRecord]:
    """Users that roles.csv names but users.csv does not list: their roles change alone."""
    named = set(ctx.cache.get("roles_by_user", {})) | set(ctx.cache.get("roles_removed", {}))
    named |= _previous_holders(ctx, sorted(ctx.cache.get("role_holders", {})))
    listed = ctx.seen_keys("user", sorted(named))
    rows = ctx.cache.get("role_rows", {})
    for key in sorted(named - listed, key=lambda k: rows.get(k, 0)):
        yield ImportRecord("roles.csv", rows.get(key, 0), "user_roles", key)


def _previous_holders(ctx: ImportContext, role_keys: list[str]) -> set[str]:
    """Users that hold a role sourcedId which roles.csv now gives to another user."""
    holders = ctx.cache.get("role_holders", {})
    found: set[str] = set()
    for start in range(0, len(role_keys), 900):
        chunk = role_keys[start : start + 900]
        rows = ctx.session.execute(
            select(User.sourced_id, UserRole.sourced_id)
            .join(UserRole, UserRole.user_id == User.id)
            .where(User.tenant_id == ctx.tenant_id, UserRole.sourced_id.in_(chunk))
        )
        found |= {user for user, role in rows if holders.get(role or "") != user}
    return found


def handle_user_roles(ctx: ImportContext, record: ImportRecord) -> RowResult:
    """Apply roles.csv rows to a user that users.csv does not list (reported on the user's
    first role row)."""
    user = _batch_user(ctx, record.key, "userSourcedId")
    roles = _roles_for(ctx, record.key, users.role_assignments(user))
    if not roles:
        raise RowProblem("R101", "The user would be left without a role.", "roles")
    changes = users.update_user(ctx.session, ctx.actor, user, {"roles": roles})
    return _result(record, Outcome.UPDATED if changes else Outcome.UNCHANGED, changes)


def handle_user(ctx: ImportContext, record: ImportRecord) -> RowResult:
    if ctx.unchanged(record):
        return _result(record, Outcome.UNCHANGED)
    result = _apply_user(ctx, record)
    if result.outcome in (Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED):
        written = ctx.batch["own"].get(record.key) or ctx.batch.get("created", {}).get(record.key)
        if written is not None:
            ctx.synced(record, User, written)
    return result


def _user_fields(ctx: ImportContext, record: ImportRecord) -> dict[str, Any]:
    """A users.csv row's fields in the domain's terms: roles resolved (1.1 ``orgSourcedIds``,
    1.2 roles.csv), primary role and primary org."""
    fields = dict(record.fields)
    version = ctx.cache["version"]["value"]
    if version == "1.1":
        fields["roles"] = [
            RoleAssignment(_resolve(ctx, Org, org, "org", "orgSourcedIds"), role, role_type)
            for org, role, role_type in record.refs["roles"]
        ]
    else:
        _ensure_roles(ctx, record, ctx.cache.get("roles_by_user", {}).get(record.key, []))
    if version == "1.2" and ctx.cache["roles_present"]["value"]:
        gathered = ctx.cache.get("roles_by_user", {}).get(record.key, [])
        known: User | None = ctx.batch["own"].get(record.key)
        fields["roles"] = _roles_for(
            ctx, record.key, users.role_assignments(known) if known is not None else []
        )
        primary_org = record.refs.get("primary_org_key")
        ranked = sorted(
            gathered,
            key=lambda g: (
                g[1] != primary_org,
                g[0].role_type != "primary",
                g[0].role,
                g[0].org_id,
            ),
        )
        if ranked:
            fields["primary_role"] = ranked[0][0].role
    if version == "1.2":
        fields["primary_org_id"] = _primary_org(ctx, record)
    return fields


def handle_users(ctx: ImportContext, records: list[ImportRecord]) -> dict[int, list[RowResult]]:
    """A batch of users.csv rows: new users without a password are created together
    (:func:`server.domain.bulk.create_users`), every other row one by one."""
    outcomes: dict[int, list[RowResult]] = {}
    new: list[tuple[ImportRecord, dict[str, Any]]] = []
    updates: list[tuple[ImportRecord, User, dict[str, Any]]] = []
    for record in records:
        existing = _updatable(ctx, record)
        if existing is not None:
            updates.append((record, existing, _kept_extra(_user_fields(ctx, record), existing)))
            continue
        fields = None if ctx.unchanged(record) else _creatable(ctx, record)
        if fields is None:
            outcomes[record.number] = [handle_user(ctx, record)]
        else:
            new.append((record, {**fields, "sourced_id": record.key}))
    digests = ctx.batch.get("digests", {})
    made = bulk.create_users(
        ctx.session,
        ctx.actor,
        [fields for _, fields in new],
        [digests.get(record.number) for record, _ in new],
        keys_free=none_stored(ctx, User),
    )
    for (record, _), user in zip(new, made, strict=True):
        outcomes[record.number] = [
            _result(record, Outcome.CREATED, {"username": [None, user.username]})
        ]
        if not isinstance(user, bulk.Created):  # a Created user was inserted with its hash
            ctx.synced(record, User, user)
    changed = users.update_users(
        ctx.session, ctx.actor, [(user, fields) for _, user, fields in updates]
    )
    for (record, user, _), changes in zip(updates, changed, strict=True):
        outcomes[record.number] = [
            _result(record, Outcome.UPDATED if changes else Outcome.UNCHANGED, changes)
        ]
        ctx.synced(record, User, user)
    return outcomes


def _updatable(ctx: ImportContext, record: ImportRecord) -> User | None:
    """The stored active user a row only updates (no password, not disabled, not deleted),
    changed together with its batch; None: the row goes through :func:`handle_user`."""
    if ctx.unchanged(record) or record.password or record.enabled is False:
        return None
    existing: User | None = ctx.batch["own"].get(record.key)
    if record.status == "tobedeleted" or existing is None:
        return None
    return existing if existing.status == RecordStatus.ACTIVE else None


def _kept_extra(fields: dict[str, Any], existing: User) -> dict[str, Any]:
    """users.csv owns the extra attributes it carries; demographics.csv and userProfiles.csv
    own theirs, so a users.csv row keeps them."""
    kept = {k: v for k, v in (existing.extra or {}).items() if k in OTHER_FILES_EXTRA}
    fields["extra"] = {**kept, **fields.get("extra", {})}
    return fields


def _creatable(ctx: ImportContext, record: ImportRecord) -> dict[str, Any] | None:
    """The fields of a row that only creates a user (no password, not disabled, not stored,
    not adopted), or None."""
    if record.password or record.enabled is False or record.status == "tobedeleted":
        return None
    if record.key in ctx.batch["own"]:
        return None
    fields = _user_fields(ctx, record)
    if users.find_adoptable(ctx.session, ctx.actor, fields) is not None:
        return None
    return fields


def _apply_user(ctx: ImportContext, record: ImportRecord) -> RowResult:
    fields = _user_fields(ctx, record)
    existing: User | None = ctx.batch["own"].get(record.key)
    if existing is None:
        existing = user_adoption.adopt_matching(ctx.session, ctx.actor, fields)
        if existing is not None:
            fields["sourced_id"] = record.key
    if existing is None:
        if record.status == "tobedeleted":
            return _result(record, Outcome.UNCHANGED, message="Not present: nothing to deactivate.")
        user = users.create_user(ctx.session, ctx.actor, {**fields, "sourced_id": record.key})
        ctx.batch.setdefault("created", {})[record.key] = user
        if record.enabled is False:
            users.deactivate_user(ctx.session, ctx.actor, user, reason="enabledUser is false.")
        credentials.sync_password(ctx.session, ctx.actor, user, record.password, box=ctx.box)
        return _result(record, Outcome.CREATED, {"username": [None, user.username]})
    fields = _kept_extra(fields, existing)
    if record.status == "tobedeleted" or record.enabled is False:
        changes = (
            {}
            if record.status == "tobedeleted"
            else users.update_user(ctx.session, ctx.actor, existing, fields)
        )
        changed = users.deactivate_user(
            ctx.session, ctx.actor, existing, reason=f"{record.file} row {record.number}."
        )
        if changed:
            changes["status"] = [RecordStatus.ACTIVE, RecordStatus.INACTIVE]
        outcome = (
            Outcome.DEACTIVATED if changed else Outcome.UPDATED if changes else Outcome.UNCHANGED
        )
        return _result(record, outcome, changes)
    before = existing.status
    changes = users.update_user(ctx.session, ctx.actor, existing, fields)
    if credentials.sync_password(ctx.session, ctx.actor, existing, record.password, box=ctx.box):
        changes["password"] = [None, "set"]
    if before != RecordStatus.ACTIVE:
        users.reactivate_user(ctx.session, ctx.actor, existing, reason="Listed again in an import.")
        return _result(
            record,
            Outcome.REACTIVATED,
            {**changes, "status": [before, RecordStatus.ACTIVE]},
            code="W202",
            message="Matches an inactive account, which is reactivated with its history.",
        )
    return _result(record, Outcome.UPDATED if changes else Outcome.UNCHANGED, changes)


def _ensure_roles(ctx: ImportContext, record: ImportRecord, gathered: list[Any]) -> None:
    """A 1.2 user of a bulk users.csv needs a row in roles.csv (OneRoster 1.2 users carry
    ``roles`` with at least one entry): R101 without one."""
    bulk = ctx.cache["users_mode"]["value"] == "bulk"
    if bulk and not gathered and record.status != "tobedeleted":
        raise RowProblem("R101", "The user has no row in roles.csv.", "roles")


def _primary_org(ctx: ImportContext, record: ImportRecord) -> str | None:
    """The org a 1.2 ``primaryOrgSourcedId`` names (R108 when none does); ``None`` when the
    cell is empty, which leaves the choice to the roles (``users.update_user``)."""
    key = record.refs.get("primary_org_key")
    if not key:
        return None
    return _resolve(ctx, Org, key, "org", "primaryOrgSourcedId")


def handle_demographics(ctx: ImportContext, record: ImportRecord) -> RowResult:
    user = _batch_user(ctx, record.key, "sourcedId")
    fields: dict[str, Any] = {
        "birth_date": record.fields["birth_date"],
        "gender": check_choice(record.fields["gender"], SEXES, "sex")
        if record.fields["gender"]
        else None,
    }
    demographics = record.fields["demographics"]
    extra = dict(user.extra or {})
    if demographics:
        extra["demographics"] = demographics
    else:
        extra.pop("demographics", None)
    fields["extra"] = extra
    changes = users.update_user(ctx.session, ctx.actor, user, fields)
    return _result(record, Outcome.UPDATED if changes else Outcome.UNCHANGED, changes)


def handle_user_profile(ctx: ImportContext, record: ImportRecord) -> RowResult:
    """Keep a 1.2 user profile in its user's ``extra``; a profile whose ``userSourcedId``
    changed moves to the new user, ``tobedeleted`` removes it."""
    user = _batch_user(ctx, record.refs["user_key"], "userSourcedId")
    holders = _profile_holders(ctx)
    changes: dict[str, list[Any]] = {}
    previous = holders.get(record.key)
    if previous is not None and previous != user.id:
        old = ctx.session.get(User, previous)
        if old is not None and _set_profile(ctx, old, record.key, None):
            changes["userSourcedId"] = [old.sourced_id, user.sourced_id]
    profile = None if record.status == "tobedeleted" else record.fields["profile"]
    if _set_profile(ctx, user, record.key, profile):
        changes["profile"] = [None, profile]
    holders[record.key] = user.id
    if profile is None:
        outcome = Outcome.DEACTIVATED if changes else Outcome.UNCHANGED
    else:
        outcome = Outcome.UPDATED if changes else Outcome.UNCHANGED
    return _result(record, outcome, changes)


def _set_profile(ctx: ImportContext, user: User, key: str, profile: dict[str, Any] | None) -> bool:
    """Put (or, with None, remove) one profile in the user's ``extra``; True if it changed."""
    extra = dict(user.extra or {})
    profiles = dict(extra.get("userProfiles") or {})
    if profile is None:
        profiles.pop(key, None)
    else:
        profiles[key] = profile
    extra["userProfiles"] = profiles
    if not profiles:
        del extra["userProfiles"]
    return bool(users.update_user(ctx.session, ctx.actor, user, {"extra": extra}))


def _profile_holders(ctx: ImportContext) -> dict[str, str]:
    """profile sourcedId -> id of the connection's user that holds it (read once per run)."""
    if "profile_holders" not in ctx.cache:
        rows = ctx.session.execute(
            select(User.id, User.extra).where(
                User.tenant_id == ctx.tenant_id,
                User.connection_id == ctx.connection.id,
                cast(User.extra, Text).contains("userProfiles"),
            )
        )
        ctx.cache["profile_holders"] = {
            key: user_id for user_id, extra in rows for key in (extra or {}).get("userProfiles", {})
        }
    return ctx.cache["profile_holders"]
