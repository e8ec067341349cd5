"""The audit log page, filtered by day, action and person. Every action is authorised by the
domain, not only hidden in the page."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response

from server.domain import (
    audit,
)
from server.domain.actors import Actor
from server.domain.vocabulary import parse_date
from server.web.presenters import (
    purge_view,
)
from server.web.render import page
from server.web.staffauth import StaffRequest, staff_page


@staff_page
async def audit_log(staff: StaffRequest) -> Response:
    params = staff.request.query_params

    def load(session: Session, actor: Actor) -> dict[str, Any]:
        events = audit.search_events(
            session,
            actor,
            target_id=params.get("target") or None,
            actor_name=params.get("who") or None,
            action=params.get("action") or None,
            since=_day(params.get("from"), "from"),
            until=_day(params.get("to"), "to", end_of_day=True),
        )
        rows = [
            {
                "at": e.at.isoformat(timespec="seconds"),
                "who": f"{e.actor_name} ({e.actor_kind}" + (f" via {e.via})" if e.via else ")"),
                "action": e.action,
                "target": e.target_label or e.target_id,
                "target_id": e.target_id,
                "changes": e.changes,
                "detail": e.detail,
                "override": e.override,
            }
            for e in events
        ]
        return {"rows": rows, "purge": purge_view(session, actor)}

    data = await staff.work(load)
    return page(staff.request, "audit.html", nav="audit", params=params, **data)


def _day(value: str | None, field: str, *, end_of_day: bool = False) -> datetime | None:
    day = parse_date(value, field)
    if day is None:
        return None
    start = datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
    return start
