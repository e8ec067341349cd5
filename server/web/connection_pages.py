"""The connections page: add, defaults, source settings, token rotation; and the job queue. Every
action is authorised by the domain, not only hidden in the page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from server.domain import (
    completeness,
    connections,
    jobs,
    roster_views,
)
from server.domain.actors import Actor
from server.domain.vocabulary import ROLES
from server.errors import DomainError
from server.web.presenters import (
    connection_defaults_view,
    connection_view,
)
from server.web.render import page
from server.web.source_form import apply_source_form, source_view
from server.web.staffauth import StaffRequest, staff_page


@staff_page
async def connection_list(staff: StaffRequest) -> Response:
    params = staff.request.query_params
    token = await staff.kept_secret()
    return await _render_connections(
        staff, flash=params.get("done"), token=token, token_for=params.get("for") if token else None
    )


async def _render_connections(staff: StaffRequest, status: int = 200, **extra: Any) -> Response:
    def load(session: Session, actor: Actor) -> list[dict[str, Any]]:
        incomplete = completeness.incomplete_counts(session, actor.tenant_id)
        return [
            {
                **connection_view(c, connections.recent_failures(session, actor, c)),
                **connection_defaults_view(session, c, incomplete),
                "source": source_view(c),
            }
            for c in connections.list_connections(session, actor)
        ]

    def schools(session: Session, actor: Actor) -> list[tuple[str, str]]:
        return [(o.sourced_id, o.name) for o in roster_views.list_schools(session, actor.tenant_id)]

    rows = await staff.work(load)
    school_options = await staff.work(schools)
    return page(
        staff.request,
        "connections.html",
        status_code=status,
        nav="connections",
        rows=rows,
        roles=ROLES,
        schools=school_options,
        **extra,
    )


@staff_page
async def job_queue(staff: StaffRequest) -> Response:
    """The background job queue of the district: waiting, running and failed jobs (district
    admins only)."""
    report = await staff.work(jobs.queue_report)
    return page(staff.request, "jobs.html", nav="jobs", report=report)


@staff_page
async def connection_add(staff: StaffRequest) -> Response:
    form = await staff.form()

    def add(session: Session, actor: Actor) -> tuple[str, str]:
        issued = connections.create_connection(
            session,
            actor,
            str(form.get("name", "")),
            str(form.get("kind", "scim")),
            sso_provider=str(form.get("sso_provider") or "") or None,
            profile=str(form.get("profile") or "") or None,
        )
        apply_source_form(session, actor, issued.connection, form, staff.context)
        return issued.connection.name, issued.token

    try:
        name, token = await staff.work(add)
    except DomainError as error:
        return await _render_connections(staff, status=error.status, error=error.message)
    staff.keep(token)
    return _back_to_connections(f"Connection {name} added.", name)


@staff_page
async def connection_defaults(staff: StaffRequest) -> Response:
    """The default role and school of users a connection pushes without one."""
    name = staff.request.path_params["name"]
    form = await staff.form()

    def save(session: Session, actor: Actor) -> str:
        connection = connections.get_connection(session, actor.tenant_id, name)
        completeness.set_defaults(
            session,
            actor,
            connection,
            role=str(form.get("default_role") or ""),
            school_sourced_id=str(form.get("default_school") or ""),
        )
        return connection.name

    try:
        saved = await staff.work(save)
    except DomainError as error:
        return await _render_connections(staff, status=error.status, error=error.message)
    return _back_to_connections(f"Defaults of {saved} saved.")


@staff_page
async def connection_source(staff: StaffRequest) -> Response:
    """Change a connection's upstream, schedules or drop folder (the pull form)."""
    name = staff.request.path_params["name"]
    form = await staff.form()

    def change(session: Session, actor: Actor) -> None:
        connection = connections.get_connection(session, actor.tenant_id, name)
        apply_source_form(session, actor, connection, form, staff.context)

    try:
        await staff.work(change)
    except DomainError as error:
        return await _render_connections(staff, status=error.status, error=error.message)
    return await _render_connections(staff, flash=f"Connection {name} updated.")


@staff_page
async def connection_rotate(staff: StaffRequest) -> Response:
    name = staff.request.path_params["name"]

    def rotate(session: Session, actor: Actor) -> str:
        return connections.rotate_token(session, actor, name).token

    try:
        token = await staff.work(rotate)
    except DomainError as error:
        return await _render_connections(staff, status=error.status, error=error.message)
    staff.keep(token)
    return _back_to_connections(f"New token for {name}; the old one no longer works.", name)


def _back_to_connections(message: str, name: str | None = None) -> Response:
    query = {"done": message, **({"for": name} if name else {})}
    return RedirectResponse("/admin/connections?" + urlencode(query), status_code=303)
