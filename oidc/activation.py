"""The activation page, ``/activate/{token}``: a one-time link from an email lands here and
the student chooses a password (rules in :mod:`server.domain.activation`)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from oidc.server import HttpRequest
from oidc.web import Outcome, Page, csrf_ok, form_page, read_request, respond
from server.context import AppContext
from server.domain import activation
from server.errors import DomainError

EXPIRED = Page(
    "message.html",
    {
        "title": "This link has expired",
        "message": "The activation link was already used or is too old. "
        "Ask your teacher to send a new one.",
    },
    status=410,
)


def activation_form(
    context: AppContext, http: HttpRequest, username: str, error: str | None, status: int = 200
) -> Page:
    values = {"username": username, "error": error}
    return form_page(context, http, Page("activate.html", values, status=status))


def handle(context: AppContext, http: HttpRequest, secret: str) -> Outcome:
    form = dict(http.form)
    with context.database.session() as session:
        found = activation.find_activation(session, secret)
        if found is None:
            return EXPIRED
        _row, user = found
        if http.method != "POST":
            return activation_form(context, http, user.username, None)
        if not csrf_ok(context, http):
            return activation_form(context, http, user.username, "Please try again.", 400)
        if form.get("password", "") != form.get("confirm", ""):
            return activation_form(
                context, http, user.username, "The two passwords are different.", 400
            )
        try:
            with session.begin_nested():
                activation.activate(session, secret, form.get("password", ""), box=context.box)
        except DomainError as error:
            return activation_form(context, http, user.username, error.message, 400)
        return Page(
            "message.html",
            {
                "title": "Your account is ready",
                "message": f"Sign in with the username {user.username} and your new password.",
            },
        )


async def activate(request: Request) -> Response:
    context: AppContext = request.app.state.context
    http = await read_request(request, context)
    secret = request.path_params["token"]
    return respond(context, await run_in_threadpool(handle, context, http, secret))
