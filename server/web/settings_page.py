"""The district settings page (``/admin/settings``) and ``GET/PATCH /admin/api/settings``:
both translate to :mod:`server.domain.district_settings` (issue 14, item 7)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, RedirectResponse, Response

from server.domain import district_settings
from server.domain.actors import Actor
from server.domain.passwords import PRESETS
from server.domain.usernames import PATTERNS
from server.errors import DomainError, InvalidValue
from server.web.api import _body
from server.web.render import page
from server.web.staffauth import StaffRequest, staff_api, staff_page

PRESET_LABELS = {
    "default": "Default: at least 8 characters, not a common password (NIST SP 800-63B)",
    "classic": "Classic: also an upper-case letter, a lower-case letter and a digit",
}


@staff_page
async def settings_form(staff: StaffRequest) -> Response:
    return await _render(staff, flash=staff.request.query_params.get("done"))


@staff_page
async def settings_save(staff: StaffRequest) -> Response:
    form = await staff.form()
    changes = {
        "badge_grades": form.get("badge_grades", ""),
        "username_pattern": form.get("username_pattern"),
        "password_policy": form.get("password_policy"),
        "shrink_threshold": _percent(form.get("shrink_percent")),
        "retention_days": form.get("retention_days"),
        "keep_provider_attributes": form.get("keep_provider_attributes", ""),
    }
    if isinstance(changes["badge_grades"], str):
        changes["badge_grades"] = [changes["badge_grades"]] if changes["badge_grades"] else []

    def save(session: Session, actor: Actor) -> dict[str, list[Any]]:
        return district_settings.change_settings(session, actor, changes)

    try:
        changed = await staff.work(save)
    except DomainError as error:
        return await _render(staff, status=error.status, error=error.message)
    message = f"Saved: {', '.join(_LABELS[k] for k in changed)}." if changed else "Nothing changed."
    return RedirectResponse("/admin/settings?" + urlencode({"done": message}), status_code=303)


def _percent(value: Any) -> float | None:
    try:
        return float(value) / 100
    except (TypeError, ValueError):
        raise InvalidValue(
            "The shrink threshold is a percentage, such as 20.", field="shrink_threshold"
        ) from None


async def _render(staff: StaffRequest, status: int = 200, **extra: Any) -> Response:
    current = await staff.work(district_settings.read_settings)
    return page(
        staff.request,
        "settings.html",
        status_code=status,
        nav="settings",
        settings=current,
        shrink_percent=round(current["shrink_threshold"] * 100, 1),
        grades=["PK", "KG"] + [f"{n:02d}" for n in range(1, 14)],
        patterns=PATTERNS,
        presets=[(p, PRESET_LABELS.get(p, p)) for p in PRESETS],
        **extra,
    )


_LABELS = {
    "badge_grades": "badge grades",
    "username_pattern": "username pattern",
    "password_policy": "password policy",
    "shrink_threshold": "shrink threshold",
    "retention_days": "retention",
    "keep_provider_attributes": "kept provider attributes",
}


@staff_api
async def read_settings(staff: StaffRequest) -> Response:
    return JSONResponse(await staff.work(district_settings.read_settings))


@staff_api
async def change_settings(staff: StaffRequest) -> Response:
    body = await _body(staff.request, "SettingsChange")
    changed = await staff.work(
        lambda session, actor: district_settings.change_settings(session, actor, body)
    )
    current = await staff.work(district_settings.read_settings)
    return JSONResponse({**current, "changed": changed})
