"""The student sign-in pages: username and password, and the forced password change.

``/login`` signs a browser in and returns it to the authorization request it came from
(``next``). A temporary password opens a session that can only reach ``/login/change``; the
code is issued after the new password is accepted. Messages never reveal whether a username
exists or what kind of account it is: the page names the district's SSO providers to everyone
("Sign in with Clever"), and only the right password tells a deactivated student to ask their
teacher. SSO-linked users whose connection has an upstream provider get a "Sign in with
<provider>" button, and a typed SSO username is routed there after the password step
(:mod:`oidc.upstream_login`).
Rules live in :mod:`server.domain.signin`; this module only renders.
"""

from __future__ import annotations

from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from oidc.server import HttpRequest
from oidc.web import (
    SESSION_COOKIE,
    Outcome,
    Page,
    Redirect,
    csrf_ok,
    form_page,
    next_client_id,
    read_request,
    respond,
    safe_next,
)
from server.context import AppContext
from server.db import OAuthClient
from server.domain import authorization, signin, tenants, upstream_signin
from server.errors import DomainError, NotFound

DONE = "/login/done"


def client_and_tenant(session: Session, next_path: str) -> tuple[OAuthClient | None, str | None]:
    """The client we sign in for and its tenant; without one, the first (only) tenant."""
    client = authorization.find_client(session, next_client_id(next_path))
    if client is not None:
        return client, client.tenant_id
    try:
        return None, tenants.get_tenant(session).id
    except NotFound:
        return None, None


def refused(title: str, message: str, status: int, next_path: str = "") -> Page:
    return Page(
        "message.html",
        {"title": title, "message": message, "retry": "/login?" + urlencode({"next": next_path})},
        status=status,
    )


def start_path(connection_id: str, next_path: str, login_hint: str = "") -> str:
    """The sign-in page's link to an upstream (its "Sign in with Clever" button, served by
    :mod:`oidc.upstream_login`)."""
    query = {"next": next_path, **({"login_hint": login_hint} if login_hint else {})}
    return f"/login/upstream/{connection_id}?" + urlencode(query)


def upstream_buttons(
    session: Session, tenant_id: str | None, next_path: str, hint: str = ""
) -> list[dict[str, str]]:
    """One "Sign in with <provider>" button per upstream of the tenant (issue 17); the same
    for every visitor, carrying the ``login_hint`` on to the provider when there is one."""
    if tenant_id is None:
        return []
    return [
        {"name": name, "url": start_path(connection_id, next_path, hint)}
        for connection_id, name in upstream_signin.tenant_providers(session, tenant_id)
    ]


def login_form(
    context: AppContext,
    http: HttpRequest,
    *,
    next_path: str,
    client_name: str | None,
    providers: list[str],
    upstreams: list[dict[str, str]] | None = None,
    username: str = "",
    error: str | None = None,
    status: int = 200,
) -> Page:
    values = {
        "next": next_path,
        "client_name": client_name,
        "providers": providers,
        "upstreams": upstreams or [],
        "username": username,
        "error": error,
        "badge_url": "/login/badge?" + urlencode({"next": next_path}),
    }
    return form_page(context, http, Page("login.html", values, status=status))


def show_login(context: AppContext, http: HttpRequest) -> Outcome:
    params = dict(http.query)
    next_path = safe_next(params.get("next"))
    with context.database.session() as session:
        client, tenant_id = client_and_tenant(session, next_path)
        return login_form(
            context,
            http,
            next_path=next_path,
            client_name=client.name if client else None,
            providers=signin.sso_providers(session, tenant_id) if tenant_id else [],
            upstreams=upstream_buttons(session, tenant_id, next_path, params.get("login_hint", "")),
            username=params.get("login_hint", ""),
        )


def submit_login(context: AppContext, http: HttpRequest) -> Outcome:
    form = dict(http.form)
    next_path = safe_next(form.get("next"))
    username = form.get("username", "").strip()
    with context.database.session() as session:
        client, tenant_id = client_and_tenant(session, next_path)
        client_name = client.name if client else None
        providers = signin.sso_providers(session, tenant_id) if tenant_id else []

        def again(error: str, status: int) -> Page:
            return login_form(
                context,
                http,
                next_path=next_path,
                client_name=client_name,
                providers=providers,
                upstreams=upstream_buttons(session, tenant_id, next_path),
                username=username,
                error=error,
                status=status,
            )

        if not csrf_ok(context, http):
            return again("The page was open too long. Please try again.", 400)
        if tenant_id is None or not username:
            return again("Enter your username and password.", 400)
        routed = upstream_signin.route_for_username(session, tenant_id, username)
        if routed is not None:
            # After the password step offered to everyone: SSO-linked users go upstream.
            return Redirect(start_path(routed, next_path, username))
        result = signin.sign_in_with_password(
            session,
            tenant_id,
            username,
            form.get("password", ""),
            address=http.address,
            secret_key=context.settings.secret_keys,
        )
        if result.status == "throttled":
            return again(
                f"Too many tries. Wait {result.wait_seconds} seconds, then try again.", 429
            )
        if result.status == "invalid":
            return again("That username and password do not match. Check them and try again.", 401)
        if result.status == "inactive":
            return refused(
                "Your account is switched off",
                "You cannot sign in right now. Ask your teacher to turn your account back on.",
                403,
                next_path,
            )
        assert result.user is not None
        must_change = result.status == "must_change"
        _row, cookie = signin.start_session(
            session, result.user, method="password", must_change=must_change
        )
        if must_change:
            target = "/login/change?" + urlencode({"next": next_path})
        else:
            target = next_path or DONE
        return Redirect(target, cookies={SESSION_COOKIE: cookie})


def change_form(
    context: AppContext, http: HttpRequest, next_path: str, error: str | None, status: int = 200
) -> Page:
    values = {"next": next_path, "error": error}
    return form_page(context, http, Page("change_password.html", values, status=status))


def show_change(context: AppContext, http: HttpRequest) -> Outcome:
    next_path = safe_next(dict(http.query).get("next"))
    with context.database.session() as session:
        browser = signin.find_session(session, http.cookies.get(SESSION_COOKIE))
        if browser is None or not browser.must_change:
            return Redirect("/login?" + urlencode({"next": next_path}))
        return change_form(context, http, next_path, None)


def submit_change(context: AppContext, http: HttpRequest) -> Outcome:
    form = dict(http.form)
    next_path = safe_next(form.get("next"))
    with context.database.session() as session:
        browser = signin.find_session(session, http.cookies.get(SESSION_COOKIE))
        if browser is None or not browser.must_change:
            return Redirect("/login?" + urlencode({"next": next_path}))
        if not csrf_ok(context, http):
            return change_form(context, http, next_path, "Please try again.", 400)
        new, confirm = form.get("password", ""), form.get("confirm", "")
        if new != confirm:
            return change_form(context, http, next_path, "The two passwords are different.", 400)
        try:
            with session.begin_nested():
                signin.change_temporary_password(session, browser, new, box=context.box)
        except DomainError as error:
            return change_form(context, http, next_path, error.message, 400)
        return Redirect(next_path or DONE)


def show_done(context: AppContext, http: HttpRequest) -> Outcome:
    with context.database.session() as session:
        browser = signin.find_session(session, http.cookies.get(SESSION_COOKIE))
        if browser is None or browser.must_change:
            return Redirect("/login")
        user = signin.session_user(session, browser)
        return Page(
            "message.html",
            {"title": "You are signed in", "message": f"Signed in as {user.username}."},
        )


async def login(request: Request) -> Response:
    context: AppContext = request.app.state.context
    http = await read_request(request, context)
    handler = submit_login if request.method == "POST" else show_login
    return respond(context, await run_in_threadpool(handler, context, http))


async def change_password(request: Request) -> Response:
    context: AppContext = request.app.state.context
    http = await read_request(request, context)
    handler = submit_change if request.method == "POST" else show_change
    return respond(context, await run_in_threadpool(handler, context, http))


async def done(request: Request) -> Response:
    context: AppContext = request.app.state.context
    http = await read_request(request, context)
    return respond(context, await run_in_threadpool(show_done, context, http))
