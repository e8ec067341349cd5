"""Teachers' account requests and their decisions. Every action is authorised by the domain, not
only hidden in the page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from server.domain import (
    account_requests,
    roster_views,
)
from server.domain.actors import Actor
from server.errors import DomainError
from server.web.render import page
from server.web.staffauth import StaffRequest, staff_page
from server.web.user_pages import back_to_user


@staff_page
async def request_list(staff: StaffRequest) -> Response:
    return await _render_requests(staff, flash=staff.request.query_params.get("done"))


async def _render_requests(staff: StaffRequest, status: int = 200, **extra: Any) -> Response:
    def load(session: Session, actor: Actor) -> dict[str, Any]:
        # Decided requests stay listed with their outcome, after the waiting ones.
        rows = account_requests.list_requests(session, actor, status=None)
        rows.sort(key=lambda r: r.status != "pending")
        classes = {c.id: c.title for c in roster_views.list_classes(session, actor)}
        return {
            "rows": [
                {
                    "id": r.id,
                    "name": f"{r.given_name} {r.family_name}",
                    "status": r.status,
                    "birth_date": r.birth_date.isoformat() if r.birth_date else "",
                    "class": classes.get(r.class_id or "", ""),
                    "by": r.requester_name,
                    "note": r.note,
                    "reason": r.decline_reason,
                    "user_id": r.user_id,
                }
                for r in rows
            ],
            "classes": list(classes.items()),
        }

    data = await staff.work(load)
    extra.setdefault("values", {})
    return page(staff.request, "requests.html", status_code=status, nav="requests", **data, **extra)


@staff_page
async def request_submit(staff: StaffRequest) -> Response:
    form = await staff.form()

    def submit(session: Session, actor: Actor) -> None:
        account_requests.submit_request(
            session,
            actor,
            given_name=str(form.get("given_name", "")),
            family_name=str(form.get("family_name", "")),
            class_id=str(form.get("class_id", "")),
            birth_date=str(form.get("birth_date") or "") or None,
            note=str(form.get("note") or ""),
            allow_duplicate=form.get("allow_duplicate") == "1",
        )

    try:
        await staff.work(submit)
    except DomainError as error:
        return await _render_requests(
            staff,
            status=error.status,
            error=error.message,
            duplicates=getattr(error, "matches", None),
            values={k: str(v) for k, v in form.items()},
        )
    return _back_to_requests("Request sent to your school admin.")


@staff_page
async def request_decide(staff: StaffRequest) -> Response:
    request_id, decision = (
        staff.request.path_params["request_id"],
        staff.request.path_params["decision"],
    )
    form = await staff.form()

    def decide(session: Session, actor: Actor) -> dict[str, Any] | None:
        if decision == "approve":
            approval = account_requests.approve_request(
                session,
                actor,
                request_id,
                box=staff.context.box,
                allow_duplicate=form.get("allow_duplicate") == "1",
            )
            return {"user": approval.user.id, "password": approval.password}
        account_requests.decline_request(session, actor, request_id, str(form.get("reason") or ""))
        return None

    try:
        result = await staff.work(decide)
    except DomainError as error:
        matches = getattr(error, "matches", None)
        return await _render_requests(
            staff,
            status=error.status,
            error=error.message,
            duplicates=matches,
            anyway_request=request_id if matches else None,
        )
    if result:
        staff.keep(result["password"])
        return back_to_user(result["user"], "Request approved: the account was created.")
    return _back_to_requests("Request declined; the teacher sees your reason.")


def _back_to_requests(message: str) -> Response:
    return RedirectResponse("/admin/requests?" + urlencode({"done": message}), status_code=303)
