"""Deleting a student in the staff app: a confirmation that says what happens, then the delete.

District admins only (the domain refuses anyone else: :func:`server.domain.users.delete_user`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from server.domain import users
from server.domain.actors import Actor
from server.domain.tenants import tenant_setting
from server.web.presenters import user_view
from server.web.render import page
from server.web.staffauth import StaffRequest, staff_page


@staff_page
async def delete_user(staff: StaffRequest) -> Response:
    """``POST /admin/users/{id}/delete``: without ``confirm=1`` the confirmation page, with it
    the deletion (audited as ``user.delete``), then back to the user list."""
    form = await staff.form()
    user_id = staff.request.path_params["user_id"]
    override = form.get("override") == "1"

    def confirm(session: Session, actor: Actor) -> dict[str, Any]:
        users.ensure_can_delete(actor)
        user = users.get_user(session, actor, user_id)
        days = int(tenant_setting(session, actor.tenant_id, "retention_days"))
        return {"user": user_view(user), "retention_days": days}

    def delete(session: Session, actor: Actor) -> str:
        user = users.get_user(session, actor, user_id)
        users.delete_user(session, actor, user, override=override, reason="Deleted by staff.")
        return f"{user.display_name} was deleted."

    if form.get("confirm") != "1":
        data = await staff.work(confirm)
        return page(staff.request, "delete_user.html", nav="users", **data)
    message = await staff.work(delete)
    return RedirectResponse("/admin/users?" + urlencode({"done": message}), status_code=303)
