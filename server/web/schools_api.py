"""``/admin/api/schools``: schools without a SIS file, for district admins' scripts.

Same domain calls as ``rollcall school`` and the Schools page (``server/domain/orgs.py``);
errors are the admin API's JSON errors.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response

from server.domain import orgs
from server.domain.actors import Actor
from server.errors import InvalidValue
from server.web.api import _body, _call
from server.web.presenters import school_view
from server.web.staffauth import StaffRequest, staff_api


@staff_api
async def list_schools(staff: StaffRequest) -> Response:
    include_inactive = staff.request.query_params.get("include_inactive") in ("1", "true")

    def load(session: Session, actor: Actor) -> dict[str, Any]:
        found = orgs.list_orgs(session, actor, include_inactive=include_inactive)
        return {"schools": [school_view(session, org) for org in found]}

    return await _call(staff, load)


@staff_api
async def get_school(staff: StaffRequest) -> Response:
    sourced_id = staff.request.path_params["sourced_id"]

    def load(session: Session, actor: Actor) -> dict[str, Any]:
        return school_view(session, orgs.get_org(session, actor, sourced_id))

    return await _call(staff, load)


@staff_api
async def add_school(staff: StaffRequest) -> Response:
    body = await _body(staff.request, "NewSchool")
    sourced_id = _text(body.pop("sourced_id", None), "sourced_id")

    def add(session: Session, actor: Actor) -> dict[str, Any]:
        return school_view(session, orgs.add_school(session, actor, sourced_id, body))

    return await _call(staff, add, status=201)


@staff_api
async def change_school(staff: StaffRequest) -> Response:
    sourced_id = staff.request.path_params["sourced_id"]
    body = await _body(staff.request, "SchoolChange")
    override = _flag(body.pop("override", False), "override")

    def save(session: Session, actor: Actor) -> dict[str, Any]:
        changes = orgs.change_school(session, actor, sourced_id, body, override=override)
        return {
            "school": school_view(session, orgs.get_org(session, actor, sourced_id)),
            "changes": changes,
        }

    return await _call(staff, save)


@staff_api
async def deactivate_school(staff: StaffRequest) -> Response:
    return await _set_active(staff, active=False)


@staff_api
async def reactivate_school(staff: StaffRequest) -> Response:
    return await _set_active(staff, active=True)


async def _set_active(staff: StaffRequest, *, active: bool) -> Response:
    sourced_id = staff.request.path_params["sourced_id"]
    body = await _body(staff.request, "Override")
    override = _flag(body.get("override", False), "override")

    def save(session: Session, actor: Actor) -> dict[str, Any]:
        changed = orgs.set_school_active(session, actor, sourced_id, active, override=override)
        return {
            "school": school_view(session, orgs.get_org(session, actor, sourced_id)),
            "changed": changed,
        }

    return await _call(staff, save)


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(f"{field} is required and must be text.", code="R101", field=field)
    return value


def _flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue(f"{field} must be true or false.", field=field)
    return value
