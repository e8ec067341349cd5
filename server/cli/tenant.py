"""Which tenant a ``rollcall`` command acts in (``--tenant``, or the only one there is)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from server.db import Tenant
from server.domain import tenants
from server.errors import NotFound

DEFAULT_TENANT = "Default District"


def resolve_tenant(session: Session, name: str | None) -> Tenant:
    """The named tenant, or the first one (created on first run)."""
    try:
        return tenants.get_tenant(session, name)
    except NotFound:
        if name:
            raise
        return tenants.create_tenant(session, DEFAULT_TENANT)
