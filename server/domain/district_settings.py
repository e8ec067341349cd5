"""District settings: what a district admin may change for the whole tenant (issue 14, item 7).

- ``badge_grades``: the grades (CEDS codes) whose students may have QR badges;
- ``username_pattern``: how generated usernames are made (:data:`usernames.PATTERNS`);
- ``password_policy``: ``default`` (NIST SP 800-63B style) or ``classic`` (SPEC §6);
- ``shrink_threshold``: the share of a connection's users a full import may deactivate before
  it needs ``allow shrink`` (0 < x ≤ 1);
- ``retention_days``: how long deleted records keep their data before the purge (SPEC §5);
- ``keep_provider_attributes``: provider attributes kept beyond those Rollcall uses
  (:mod:`server.domain.provider_attributes`).

Every surface (the Settings page, ``GET/PATCH /admin/api/settings``, ``rollcall tenant set``)
calls :func:`read_settings` and :func:`change_settings`; only district admins (and the CLI's
system actor) may, and every change is audited with its before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from server.db import Tenant
from server.domain import audit
from server.domain.actors import Actor
from server.domain.passwords import PRESETS
from server.domain.provider_attributes import check_paths
from server.domain.tenants import DEFAULT_SETTINGS
from server.domain.usernames import PATTERNS
from server.domain.vocabulary import check_grade
from server.errors import DomainError, InvalidValue, NotAllowed, NotFound

EDITABLE = (
    "badge_grades",
    "username_pattern",
    "password_policy",
    "shrink_threshold",
    "retention_days",
    "keep_provider_attributes",
)


def read_settings(session: Session, actor: Actor) -> dict[str, Any]:
    """The district's editable settings, defaults filled in."""
    tenant = _tenant(session, actor)
    return {key: tenant.settings.get(key, DEFAULT_SETTINGS[key]) for key in EDITABLE}


def change_settings(
    session: Session, actor: Actor, changes: dict[str, Any]
) -> dict[str, list[Any]]:
    """Validate and save ``changes``; return what changed as ``{key: [before, after]}``.

    :raises InvalidValue: an unknown setting or a bad value (nothing is saved).
    :raises NotAllowed: the caller is not a district admin.
    """
    tenant = _tenant(session, actor)
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidValue(f"Unknown setting: {', '.join(unknown)}.", field=unknown[0])
    current = read_settings(session, actor)
    wanted = {key: _CHECKS[key](value) for key, value in changes.items()}
    changed = {k: [current[k], v] for k, v in wanted.items() if current[k] != v}
    if changed:
        tenant.settings = {**tenant.settings, **{k: v for k, (_, v) in changed.items()}}
        audit.record(
            session,
            actor,
            "settings.change",
            target_kind="tenant",
            target_id=tenant.id,
            target_label=tenant.name,
            changes=changed,
        )
    return changed


def _tenant(session: Session, actor: Actor) -> Tenant:
    if not (actor.kind == "system" or actor.is_district_admin):
        raise NotAllowed("Only district admins see and change the district settings.")
    tenant = session.get(Tenant, actor.tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.")
    return tenant


def _grades(value: Any) -> list[str]:
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    if not isinstance(items, list):
        raise InvalidValue("Badge grades are a list of grades.", field="badge_grades")
    try:
        return sorted({check_grade(str(item)) for item in items}, key=_grade_order)
    except DomainError as error:
        raise InvalidValue(error.message, field="badge_grades") from None


def _grade_order(grade: str) -> tuple[int, str]:
    return ({"PK": -2, "KG": -1}.get(grade, int(grade) if grade.isdigit() else 99), grade)


def _choice(key: str, allowed: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in allowed:
            raise InvalidValue(f"{key} must be one of: {', '.join(allowed)}.", field=key)
        return str(value)

    return check


def _share(value: Any) -> float:
    try:
        share = float(value)
    except (TypeError, ValueError):
        share = -1.0
    if not 0 < share <= 1:
        raise InvalidValue(
            "The shrink threshold is a share between 0 and 1, such as 0.2 for 20%.",
            field="shrink_threshold",
        )
    return share


def _days(value: Any) -> int:
    try:
        days = int(value)
    except (TypeError, ValueError):
        days = 0
    if not 1 <= days <= 3650 or isinstance(value, bool):
        raise InvalidValue("Retention is a number of days from 1 to 3650.", field="retention_days")
    return days


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "badge_grades": _grades,
    "username_pattern": _choice("username_pattern", PATTERNS),
    "password_policy": _choice("password_policy", PRESETS),
    "shrink_threshold": _share,
    "retention_days": _days,
    "keep_provider_attributes": check_paths,
}
