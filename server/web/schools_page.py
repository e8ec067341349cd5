"""The Schools page (``/admin/schools``): district admins add, rename, re-parent and deactivate
schools that no SIS file brings. Same domain calls as ``rollcall school`` (``server/domain/orgs``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from server.domain import orgs
from server.domain.actors import Actor
from server.domain.vocabulary import ORG_TYPES
from server.errors import DomainError
from server.web.presenters import school_view
from server.web.render import page
from server.web.staffauth import StaffRequest, staff_page

FIELDS = ("name", "type", "parent", "identifier")


@staff_page
async def school_list(staff: StaffRequest) -> Response:
    return await _render(staff, flash=staff.request.query_params.get("done"))


@staff_page
async def school_add(staff: StaffRequest) -> Response:
    form = await staff.form()
    sourced_id = str(form.get("sourced_id") or "")

    def add(session: Session, actor: Actor) -> str:
        return orgs.add_school(session, actor, sourced_id, _fields(form)).name

    return await _act(staff, add, "Added {}.")


@staff_page
async def school_change(staff: StaffRequest) -> Response:
    sourced_id = staff.request.path_params["sourced_id"]
    form = await staff.form()

    def save(session: Session, actor: Actor) -> str:
        changes = orgs.change_school(
            session, actor, sourced_id, _fields(form), override=bool(form.get("override"))
        )
        name = orgs.get_org(session, actor, sourced_id).name
        return f"Changed {name}." if changes else f"Nothing changed on {name}."

    return await _act(staff, save, "{}")


@staff_page
async def school_status(staff: StaffRequest) -> Response:
    sourced_id = staff.request.path_params["sourced_id"]
    form = await staff.form()
    active = form.get("active") == "true"

    def save(session: Session, actor: Actor) -> str:
        orgs.set_school_active(
            session, actor, sourced_id, active, override=bool(form.get("override"))
        )
        return orgs.get_org(session, actor, sourced_id).name

    return await _act(staff, save, "{} reactivated." if active else "{} deactivated.")


async def _act(staff: StaffRequest, work: Any, flash: str) -> Response:
    try:
        done = await staff.work(work)
    except DomainError as error:
        return await _render(staff, status=error.status, error=error.message)
    query = urlencode({"done": flash.format(done)})
    return RedirectResponse(f"/admin/schools?{query}", status_code=303)


async def _render(staff: StaffRequest, status: int = 200, **extra: Any) -> Response:
    def load(session: Session, actor: Actor) -> list[dict[str, Any]]:
        found = orgs.list_orgs(session, actor, include_inactive=True)
        return [school_view(session, org) for org in found]

    rows = await staff.work(load)
    return page(
        staff.request,
        "schools.html",
        status_code=status,
        nav="schools",
        rows=rows,
        org_types=ORG_TYPES,
        **extra,
    )


def _fields(form: Any) -> dict[str, str]:
    return {name: str(form.get(name)) for name in FIELDS if form.get(name) is not None}
