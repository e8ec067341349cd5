"""When a student who left is deleted: the end of the school year they left in, plus a grace
period, both tenant settings (issue 12, point 1; enforced by :mod:`server.domain.retention`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from server.db import Tenant
from server.domain.tenants import parse_month_day, setting
from server.errors import NotFound


def leaver_keep_until(session: Session, tenant_id: str, deactivated_at: datetime) -> datetime:
    """When a student deactivated at ``deactivated_at`` is deleted: the next end of the school
    year (tenant setting ``school_year_end``, ``MM-DD``, default 31 July) on or after that day,
    plus ``leaver_grace_days`` (default 30).

    >>> # deactivated 2026-12-01 → school year ends 2027-07-31 → deleted from 2027-08-30
    """
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.")
    return keep_until(tenant.settings, deactivated_at)


def keep_until(settings: Mapping[str, Any], deactivated_at: datetime) -> datetime:
    """:func:`leaver_keep_until` with the tenant's ``settings`` already read."""
    month, day = parse_month_day(str(setting(settings, "school_year_end")))
    grace = int(setting(settings, "leaver_grace_days"))
    end = date(deactivated_at.year, month, day)
    if end < deactivated_at.date():
        end = date(deactivated_at.year + 1, month, day)
    start_of_day = datetime.combine(end, datetime.min.time(), tzinfo=deactivated_at.tzinfo)
    return start_of_day + timedelta(days=1 + grace)
