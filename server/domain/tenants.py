"""Tenants (districts) and their settings."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import Connection, ConnectionKind, Tenant
from server.errors import Conflict, InvalidValue, NotFound

MANUAL_CONNECTION_NAME = "Manual"

# How long things are kept (server.domain.retention, docs/retention.md): days unless named.
RETENTION_DEFAULTS: dict[str, Any] = {
    "school_year_end": "07-31",
    "leaver_grace_days": 30,
    "audit_retention_days": 3 * 365,
    "import_retention_days": 90,
    "trial_run_retention_days": 7,
    "oauth_code_retention_days": 1,
    "token_retention_days": 30,
    "session_retention_days": 30,
    "job_retention_days": 30,
    "account_request_retention_days": 180,
    "declined_request_retention_days": 30,
    "provider_failure_retention_days": 30,
}

DEFAULT_SETTINGS: dict[str, Any] = {
    "username_pattern": "{first}{last}",
    "password_policy": "default",
    "young_student_grades": ["PK", "KG", "01", "02"],
    "badge_grades": ["PK", "KG", "01", "02"],
    "retention_days": 30,
    "shrink_threshold": 0.2,
    # provider attributes kept beyond those Rollcall uses (server/domain/provider_attributes.py)
    "keep_provider_attributes": [],
    **RETENTION_DEFAULTS,
}


def create_tenant(session: Session, name: str) -> Tenant:
    """A new district with its manual connection (the owner of what staff create by hand).

    :raises Conflict: the name is taken.
    """
    name = name.strip()
    if not name:
        raise InvalidValue("A tenant needs a name.", field="name")
    if session.scalars(select(Tenant).where(Tenant.name == name)).first():
        raise Conflict(f"A tenant named {name!r} already exists.")
    tenant = Tenant(name=name, settings=dict(DEFAULT_SETTINGS))
    session.add(tenant)
    session.flush()
    session.add(
        Connection(tenant_id=tenant.id, name=MANUAL_CONNECTION_NAME, kind=ConnectionKind.MANUAL)
    )
    session.flush()
    return tenant


def get_tenant(session: Session, name: str | None = None) -> Tenant:
    """The tenant called ``name``, or the first one created when no name is given.

    :raises NotFound:
    """
    query = select(Tenant).order_by(Tenant.created_at, Tenant.id)
    if name:
        query = query.where(Tenant.name == name)
    tenant = session.scalars(query.limit(1)).first()
    if tenant is None:
        raise NotFound(f"No tenant named {name!r}." if name else "No tenant exists yet.")
    return tenant


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.created_at, Tenant.id)))


def tenant_setting(session: Session, tenant_id: str, key: str) -> Any:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.")
    return setting(tenant.settings, key)


def setting(settings: Mapping[str, Any], key: str) -> Any:
    """A setting of a tenant's ``settings`` (as stored), else its default."""
    return settings.get(key, DEFAULT_SETTINGS.get(key))


def update_settings(session: Session, tenant: Tenant, changes: dict[str, Any]) -> None:
    unknown = set(changes) - set(DEFAULT_SETTINGS)
    if unknown:
        raise InvalidValue(f"Unknown settings: {', '.join(sorted(unknown))}.")
    _check_retention(changes)
    tenant.settings = {**tenant.settings, **changes}


def _check_retention(changes: dict[str, Any]) -> None:
    """:raises InvalidValue: a retention window that is not a whole number of days, or a
    school-year end that is not ``MM-DD``."""
    for key, value in changes.items():
        if key.endswith("_days") and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            raise InvalidValue(f"{key} must be a whole number of days, not {value!r}.", field=key)
        if key == "school_year_end":
            parse_month_day(str(value))


def manual_connection(session: Session, tenant_id: str) -> Connection:
    connection = session.scalars(
        select(Connection).where(
            Connection.tenant_id == tenant_id, Connection.kind == ConnectionKind.MANUAL
        )
    ).first()
    if connection is None:
        raise NotFound("The tenant has no manual connection.")
    return connection


def parse_month_day(text: str) -> tuple[int, int]:
    """``"07-31"`` → ``(7, 31)``. :raises InvalidValue: not a real month and day."""
    try:
        month, day = (int(part) for part in text.split("-"))
        date(2000, month, day)
    except ValueError:
        raise InvalidValue(
            f"school_year_end must be MM-DD (such as 07-31), not {text!r}.",
            field="school_year_end",
        ) from None
    return month, day
