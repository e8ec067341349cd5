"""The staff page of an SSO connection's sign-in provider (issue 17).

``/admin/connections/{name}/sign-in`` shows and sets the upstream OpenID Connect provider
that the connection's SSO-linked users sign in at, the same as ``rollcall connection
set-upstream``: the issuer is discovered before anything is stored, the secret is sealed and
never shown again, and the page names the one redirect URI to register at the provider.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from server.domain import connections, upstream_signin
from server.domain.access import ensure_can_manage_connections
from server.domain.actors import Actor
from server.errors import DomainError
from server.web.render import page
from server.web.staffauth import StaffRequest, staff_page


async def _current(staff: StaffRequest, name: str) -> dict[str, Any]:
    def load(session: Session, actor: Actor) -> dict[str, Any]:
        ensure_can_manage_connections(actor)
        connection = connections.get_connection(session, actor.tenant_id, name)
        stored = (connection.settings or {}).get(upstream_signin.SETTINGS_KEY) or {}
        return {
            "name": connection.name,
            "provider": connection.provider_name,
            "sso": connection.sso,
            "issuer": stored.get("issuer", ""),
            "client_id": stored.get("client_id", ""),
            "scopes": stored.get("scopes", upstream_signin.DEFAULT_SCOPES),
            "link_claim": stored.get("link_claim", "sub"),
            "configured": bool(stored),
        }

    return await staff.work(load)


async def _render(staff: StaffRequest, status: int = 200, **extra: Any) -> Response:
    name = staff.request.path_params["name"]
    current = await _current(staff, name)
    return page(
        staff.request,
        "connection_sign_in.html",
        status_code=status,
        nav="connections",
        c={**current, **extra.pop("values", {})},
        link_claims=upstream_signin.LINK_CLAIMS,
        redirect_uri=upstream_signin.callback_url(staff.context.settings.issuer),
        **extra,
    )


@staff_page
async def sign_in_provider(staff: StaffRequest) -> Response:
    return await _render(staff)


@staff_page
async def set_sign_in_provider(staff: StaffRequest) -> Response:
    from oidc import upstream

    name = staff.request.path_params["name"]
    form = await staff.form()
    values = {k: str(form.get(k) or "").strip() for k in ("issuer", "client_id", "scopes")}
    values["link_claim"] = str(form.get("link_claim") or "sub")
    try:
        await run_in_threadpool(upstream.discover, values["issuer"])
    except upstream.UpstreamUnavailable as error:
        message = f"The issuer cannot be discovered: {error}"
        return await _render(staff, status=400, error=message, values=values)

    def save(session: Session, actor: Actor) -> None:
        connection = connections.get_connection(session, actor.tenant_id, name)
        upstream_signin.set_upstream_provider(
            session,
            actor,
            connection,
            box=upstream_signin.box_for(staff.context.settings.secret_keys),
            issuer=values["issuer"],
            client_id=values["client_id"],
            client_secret=str(form.get("client_secret") or ""),
            scopes=values["scopes"] or upstream_signin.DEFAULT_SCOPES,
            link_claim=values["link_claim"],
        )

    try:
        await staff.work(save)
    except DomainError as error:
        return await _render(staff, status=error.status, error=error.message, values=values)
    return await _render(staff, flash="Saved. Users of this connection now sign in there.")
