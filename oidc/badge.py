"""QR badge sign-in, ``/login/badge``: the badge's QR code holds a link with the token
(``/login/badge?badge=…``); a badge with a PIN asks for it. Rules live in
:mod:`server.domain.badges`.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from oidc.login import client_and_tenant
from oidc.server import HttpRequest
from oidc.web import (
    SESSION_COOKIE,
    Outcome,
    Page,
    Redirect,
    csrf_ok,
    form_page,
    read_request,
    respond,
    safe_next,
)
from server.context import AppContext
from server.domain import badges, signin


def badge_form(
    context: AppContext,
    http: HttpRequest,
    *,
    next_path: str,
    token: str,
    needs_pin: bool,
    error: str | None = None,
    status: int = 200,
) -> Page:
    values = {
        "next": next_path,
        "token": token,
        "needs_pin": needs_pin,
        "error": error,
        "password_url": "/login?" + urlencode({"next": next_path}),
    }
    return form_page(context, http, Page("badge.html", values, status=status))


def show_badge(context: AppContext, http: HttpRequest) -> Outcome:
    params = dict(http.query)
    token = params.get("badge", "")
    with context.database.session() as session:
        needs_pin = badges.badge_needs_pin(session, token) if token else False
    return badge_form(
        context, http, next_path=safe_next(params.get("next")), token=token, needs_pin=needs_pin
    )


def submit_badge(context: AppContext, http: HttpRequest) -> Outcome:
    form = dict(http.form)
    next_path = safe_next(form.get("next"))
    token = form.get("badge", "").strip()
    with context.database.session() as session:
        needs_pin = badges.badge_needs_pin(session, token)

        def again(error: str, status: int) -> Page:
            return badge_form(
                context,
                http,
                next_path=next_path,
                token=token,
                needs_pin=needs_pin,
                error=error,
                status=status,
            )

        if not csrf_ok(context, http):
            return again("The page was open too long. Please try again.", 400)
        if needs_pin and not form.get("pin"):
            return again("Type your PIN.", 400)
        result = badges.sign_in_with_badge(session, token, form.get("pin"), address=http.address)
        client, _tenant = client_and_tenant(session, next_path)
        if (
            result.status == "ok"
            and client
            and result.user
            and result.user.tenant_id != client.tenant_id
        ):
            result = signin.SignInResult("invalid")
        if result.status == "throttled":
            return again(f"Too many tries. Wait {result.wait_seconds} seconds.", 429)
        if result.status == "inactive":
            return Page(
                "message.html",
                {
                    "title": "Your account is switched off",
                    "message": "Ask your teacher to turn your account back on.",
                },
                status=403,
            )
        if result.status == "wrong_pin":
            return again("Wrong PIN. Try again.", 401)
        if result.status != "ok" or result.user is None:
            return again("This badge does not work. Ask your teacher for a new one.", 401)
        _row, cookie = signin.start_session(session, result.user, method="badge")
        return Redirect(next_path or "/login/done", cookies={SESSION_COOKIE: cookie})


async def badge_login(request: Request) -> Response:
    context: AppContext = request.app.state.context
    http = await read_request(request, context)
    handler = submit_badge if request.method == "POST" else show_badge
    return respond(context, await run_in_threadpool(handler, context, http))
