"""A user's fields as every surface writes them: which fields there are, their checks and
normal forms, defaults, roles at orgs, and the change sets that updates and audit events carry.

:mod:`server.domain.users` applies them (guard, version, audit); this module decides nothing
about who may write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import (
    Org,
    User,
    UserGrade,
    UserRole,
    fold,
)
from server.domain import (
    provider_attributes,
)
from server.domain.actors import Actor
from server.domain.connection_defaults import fill_for
from server.domain.usernames import validate_username
from server.domain.vocabulary import check_grade, check_role, check_texts, parse_date
from server.errors import (
    InvalidValue,
    NotFound,
)

TEXT_FIELDS = (
    "given_name",
    "family_name",
    "middle_name",
    "preferred_given_name",
    "preferred_family_name",
    "email",
    "identifier",
    "gender",
    "ethnicity",
    "external_id",
    "sourced_id",
)
USER_FIELDS = frozenset(
    (
        *TEXT_FIELDS,
        "username",
        "birth_date",
        "demographic_flags",
        "primary_role",
        "primary_org_id",
        "roles",
        "grades",
        "extra",
    )
)


@dataclass(frozen=True, order=True)
class RoleAssignment:
    """A role of a user at an org (org given by our internal id)."""

    org_id: str
    role: str
    role_type: str = "primary"
    # OneRoster 1.2 roles.csv details; None where a source has none
    begin_date: date | None = None
    end_date: date | None = None
    sourced_id: str | None = None
    user_profile_sourced_id: str | None = None


Changes = dict[str, list[Any]]


def normalise(
    session: Session,
    tenant_id: str,
    fields: Mapping[str, Any],
    *,
    org_ids: set[str] | None = None,
) -> dict[str, Any]:
    """Validate and normalise caller-supplied fields (unknown names are a bug in the caller)."""
    check_texts({k: v for k, v in fields.items() if not isinstance(v, date)})
    unknown = set(fields) - USER_FIELDS - {"id"}
    if unknown:
        raise InvalidValue(f"Unknown user fields: {', '.join(sorted(unknown))}.")
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if name in TEXT_FIELDS or name == "id":
            text = value.strip() if isinstance(value, str) else value
            values[name] = text or (None if name not in ("given_name", "family_name") else "")
        elif name == "username":
            values[name] = validate_username(value) if value else None
        elif name == "birth_date":
            values[name] = parse_date(value, "birth_date")
        elif name == "primary_role":
            values[name] = check_role(value, field="primary_role")
        elif name == "grades":
            values[name] = sorted({check_grade(g) for g in value or []})
        elif name == "roles":
            values[name] = _check_roles(session, tenant_id, value or [], org_ids)
        elif name == "primary_org_id":
            values[name] = (
                _check_org(session, tenant_id, value, "primaryOrg", org_ids) if value else None
            )
        elif name == "demographic_flags":
            values[name] = dict(value or {})
        elif name == "extra":
            values[name] = provider_attributes.minimise_extra(
                session, tenant_id, dict(value or {}), "User"
            )
    if values.get("email") and "@" not in values["email"]:
        raise InvalidValue(f"Invalid email address {values['email']!r}.", field="email")
    if "roles" in values and values["roles"] and "primary_role" not in values:
        primary = [r for r in values["roles"] if r.role_type == "primary"] or values["roles"]
        values["primary_role"] = primary[0].role
    return values


def with_defaults(
    session: Session, actor: Actor, values: dict[str, Any], user: User | None
) -> dict[str, Any]:
    """A pushed user left without roles gets its connection's default role and school."""
    has_roles = bool(values.get("roles", user.roles if user else []))
    filled = fill_for(session, actor, has_roles, values.get("primary_role"))
    if filled is None:
        return values
    role, school_id = filled
    values = {**values, "primary_role": role}
    if school_id is not None:
        values["roles"] = [RoleAssignment(school_id, role)]
    return values


def with_primary_org(values: dict[str, Any], user: User | None) -> dict[str, Any]:
    """OneRoster 1.2 ``primaryOrg``: the org a source names (``primary_org_id``, from 1.2
    ``primaryOrgSourcedId`` or a pushed ``primaryOrg``); when it names none (``None``) or sends
    only roles (1.1, SCIM, staff), the org of a primary role, keeping the current one while it
    still is one. Without either, the stored value stays.
    """
    if values.get("primary_org_id") is not None:
        return values
    if "primary_org_id" not in values and "roles" not in values:
        return values
    roles = values["roles"] if "roles" in values else role_assignments(user) if user else []
    primary = [r.org_id for r in roles if r.role_type == "primary"] or [r.org_id for r in roles]
    current = user.primary_org_id if user is not None else None
    chosen = current if current in primary else (primary[0] if primary else None)
    return {**values, "primary_org_id": chosen}


def _check_org(
    session: Session, tenant_id: str, org_id: str, field: str, known: set[str] | None = None
) -> str:
    """``org_id`` when it is an org of the tenant (``known``: orgs already read, no query).
    :raises NotFound:"""
    if known is not None and org_id in known:
        return org_id
    if session.scalar(select(Org.id).where(Org.tenant_id == tenant_id, Org.id == org_id)) is None:
        raise NotFound(f"No org with id {org_id!r}.", field=field)
    return org_id


def _check_roles(
    session: Session,
    tenant_id: str,
    roles: list[RoleAssignment],
    known: set[str] | None = None,
) -> list[RoleAssignment]:
    # One role per org: a duplicate with another role_type keeps the primary one.
    unique: dict[tuple[str, str], RoleAssignment] = {}
    for r in roles:
        role = replace(
            r,
            role=check_role(r.role),
            begin_date=parse_date(r.begin_date, "beginDate"),
            end_date=parse_date(r.end_date, "endDate"),
        )
        key = (role.org_id, role.role)
        if key not in unique or role.role_type == "primary":
            unique[key] = role
    checked = sorted(unique.values())
    org_ids = {r.org_id for r in checked}
    if org_ids:
        found = (
            known
            if known is not None
            else set(
                session.scalars(
                    select(Org.id).where(Org.tenant_id == tenant_id, Org.id.in_(org_ids))
                )
            )
        )
        missing = org_ids - found
        if missing:
            raise NotFound(f"No org with id {sorted(missing)[0]!r}.", field="roles")
    return checked


def role_assignments(user: User) -> list[RoleAssignment]:
    """The user's roles as stored, with every detail (sorted)."""
    return sorted(
        RoleAssignment(
            r.org_id,
            r.role,
            r.role_type,
            r.begin_date,
            r.end_date,
            r.sourced_id,
            r.user_profile_sourced_id,
        )
        for r in user.roles
    )


def _current(user: User, name: str) -> Any:
    if name == "roles":
        return role_assignments(user)
    if name == "grades":
        return user.grades
    return getattr(user, name)


def diff(user: User, values: dict[str, Any]) -> Changes:
    changes: Changes = {}
    for name, new in values.items():
        if name == "id":
            continue
        old = _current(user, name)
        if name == "username" and new is None:
            continue
        if old != new:
            changes[name] = [_plain(old), _plain(new)]
    return changes


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, RoleAssignment):
        plain = {"org_id": value.org_id, "role": value.role, "role_type": value.role_type}
        details = {
            "begin_date": _plain(value.begin_date),
            "end_date": _plain(value.end_date),
            "sourced_id": value.sourced_id,
            "user_profile_sourced_id": value.user_profile_sourced_id,
        }
        return plain | {k: v for k, v in details.items() if v is not None}
    if isinstance(value, date):
        return value.isoformat()
    return value


def assign(
    user: User, values: dict[str, Any], new_roles: list[dict[str, Any]] | None = None
) -> None:
    """Set ``values`` on ``user`` (not flushed). ``new_roles``: collect the rows of roles the
    user gains there (the caller inserts a batch's with one ``executemany`` after the flush,
    issue 15) instead of adding a ``UserRole`` each, which the ORM inserts one by one."""
    for name, value in values.items():
        if name == "roles":
            # Keep the rows of roles that stay: a new row beside the old one would break the
            # (user, org, role) unique constraint, since inserts are flushed before deletes.
            kept = {(row.org_id, row.role): row for row in user.roles}
            rows = []
            for r in value:
                if new_roles is not None and (r.org_id, r.role) not in kept:
                    new_roles += role_rows(user.id, [r])
                    continue
                row = kept.get((r.org_id, r.role)) or UserRole(org_id=r.org_id, role=r.role)
                row.role_type = r.role_type
                row.begin_date, row.end_date = r.begin_date, r.end_date
                row.sourced_id, row.user_profile_sourced_id = (
                    r.sourced_id,
                    r.user_profile_sourced_id,
                )
                rows.append(row)
            user.roles = rows
        elif name == "grades":
            user.grade_rows = [UserGrade(**row) for row in grade_rows(None, value)]
        elif name == "username":
            user.username, user.username_folded = value, fold(value)
        else:
            setattr(user, name, value)
    named = {name: getattr(user, name) for name in FOLDED_FROM}
    for name, value in folded_columns(named).items():
        setattr(user, name, value)


FOLDED_FROM = ("given_name", "family_name", "email", "external_id")


def folded_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    """The case-folded search columns of a user with these ``given_name``, ``family_name``,
    ``email`` and ``external_id`` (what every search and uniqueness check compares)."""
    return {
        "given_folded": fold(values.get("given_name")) or "",
        "family_folded": fold(values.get("family_name")) or "",
        "email_folded": fold(values.get("email")),
        "external_id_folded": fold(values.get("external_id")),
    }


def grade_rows(user_id: str | None, grades: Iterable[str]) -> list[dict[str, Any]]:
    """The ``user_grades`` rows of a user's (checked) grades."""
    rows: list[dict[str, Any]] = [{"grade": grade} for grade in grades]
    if user_id is not None:
        for row in rows:
            row["user_id"] = user_id
    return rows


def role_rows(user_id: str, roles: Iterable[RoleAssignment]) -> list[dict[str, Any]]:
    """The ``user_roles`` rows of a new user's roles, for an ``executemany`` (as :func:`_assign`
    would add them one by one)."""
    return [
        {
            "user_id": user_id,
            "org_id": r.org_id,
            "role": r.role,
            "role_type": r.role_type,
            "begin_date": r.begin_date,
            "end_date": r.end_date,
            "sourced_id": r.sourced_id,
            "user_profile_sourced_id": r.user_profile_sourced_id,
        }
        for r in roles
    ]


def creation_changes(username: str, values: dict[str, Any]) -> Changes:
    shown = {k: v for k, v in values.items() if k not in ("extra", "id")}
    changes = {k: [None, _plain(v)] for k, v in shown.items() if v not in (None, "", [], {})}
    changes["username"] = [None, username]
    return changes
