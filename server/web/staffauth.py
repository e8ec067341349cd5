"""Who the staff caller is: a signed session cookie (pages) or a staff bearer token (JSON API).

:func:`staff_page` and :func:`staff_api` wrap route handlers: the handler gets a
:class:`StaffRequest` with the actor and runs domain work through :meth:`StaffRequest.work`,
one unit of work in a worker thread (Authlib-free, SQLAlchemy is synchronous).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server.auth import bearer_token
from server.context import AppContext
from server.db import StaffAccount
from server.domain import account_requests, submissions
from server.domain.actors import Actor
from server.domain.staff import authenticate_staff_token
from server.errors import InvalidValue
from server.web import cookies
from server.web.problems import unauthorized

T = TypeVar("T")


@dataclass(frozen=True)
class StaffView:
    """What pages show of the signed-in staff member."""

    id: str
    username: str
    display_name: str | None
    role: str
    tenant_id: str
    school_ids: tuple[str, ...]
    user_id: str | None


@dataclass
class StaffRequest:
    request: Request
    context: AppContext
    actor: Actor
    staff: StaffView
    csrf: str
    kept: str | None = None

    def keep(self, secret: str | None) -> None:
        """Show ``secret`` (a new password or token) on the page this post redirects to."""
        self.kept = secret

    async def kept_secret(self) -> str | None:
        """The secret kept by the post whose result this page shows (``?result=``), if any."""
        token = self.request.query_params.get("result")
        if not token:
            return None

        def load(session: Session, actor: Actor) -> str | None:
            return submissions.kept_secret(session, staff_id(actor), token, self.context.box)

        return await self.work(load)

    async def work(self, fn: Callable[[Session, Actor], T]) -> T:
        """Run ``fn(session, actor)`` in one unit of work, off the event loop."""

        def run() -> T:
            try:
                with self.context.database.session() as session:
                    return fn(session, self.actor)
            except DataError as error:
                # A value the database refuses (a NUL character, an over-long text) that no
                # domain check caught: the caller's input is wrong, never a server error.
                raise InvalidValue("The request holds a value that cannot be stored.") from error

        return await run_in_threadpool(run)

    async def form(self) -> dict[str, Any]:
        form = await self.request.form()
        return {key: form.getlist(key) if len(form.getlist(key)) > 1 else form[key] for key in form}


Handler = Callable[[StaffRequest], Awaitable[Response]]


def context_of(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


def staff_id(actor: Actor) -> str:
    """The id of the staff member acting (every actor a staff page has is one)."""
    assert actor.id is not None, "a staff page acts for a signed-in staff member"
    return actor.id


def staff_page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Pages: redirect to the sign-in page without a session; check CSRF on every POST."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        context = context_of(request)
        signed = cookies.decode(
            request.cookies.get(cookies.COOKIE_NAME), context.settings.secret_keys
        )
        staff = await _load(context, signed.staff_id) if signed else None
        if signed is None or staff is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/admin/login?next={target}", status_code=303)
        if request.method == "POST":
            form = await request.form()
            if not cookies.csrf_matches(signed, str(form.get("csrf_token") or "")):
                return Response(
                    "The form expired or came from another site. Go back, reload "
                    "the page and try again.",
                    status_code=403,
                )
        request.state.staff, request.state.csrf = staff, signed.csrf
        staff_request = _staff_request(request, context, staff, signed.csrf)
        if request.method != "POST":
            request.state.waiting_requests = await staff_request.work(
                account_requests.count_waiting
            )
            response = await handler(staff_request)
        else:
            response = await _once(staff_request, handler)
        if signed.stale and cookies.COOKIE_NAME not in response.headers.get("set-cookie", ""):
            secure = context.settings.issuer.startswith("https")
            cookies.set_cookie(response, signed, context.settings.secret_key, secure)
        return response

    return endpoint


REPEAT_WAIT_SECONDS = 10


async def _once(staff: StaffRequest, handler: Handler) -> Response:
    """Run a form post once per ``form_token`` (see :mod:`server.domain.submissions`): a
    repeat is sent to the first post's result; a post that did not redirect changed nothing
    and frees its token."""
    form = await staff.request.form()
    token = str(form.get("form_token") or "")
    if token:
        earlier = await staff.work(lambda s, a: _location(submissions.claim(s, staff_id(a), token)))
        if earlier is not None:
            return await _repeat(staff, token, earlier)
    try:
        response = await handler(staff)
    except BaseException:
        if token:
            await staff.work(lambda s, a: submissions.release(s, token))
        raise
    return await _settle(staff, token, response)


def _claim(token: str) -> Callable[[Session, Actor], str | None]:
    """Claim the form token: the location of the first post's result, or None if this is it."""
    return lambda s, a: _location(submissions.claim(s, staff_id(a), token))


def _location(earlier: Any) -> str | None:
    return None if earlier is None else (earlier.result_location or "")


async def _repeat(staff: StaffRequest, token: str, location: str | None) -> Response:
    """The answer to a repeated post: the first post's result, once it is known."""
    for _ in range(REPEAT_WAIT_SECONDS * 10):
        if location:
            return RedirectResponse(location, status_code=303)
        await asyncio.sleep(0.1)
        location = await staff.work(
            lambda s, a: _location(submissions.claim(s, staff_id(a), token))
        )
        if location is None:  # the first post changed nothing after all; this one is first
            await staff.work(lambda s, a: submissions.release(s, token))
            return Response("Send the form again.", status_code=409)
    return Response("This form was already sent and is still being processed.", status_code=409)


async def _settle(staff: StaffRequest, token: str, response: Response) -> Response:
    """Store a redirect as the form's result (with any kept secret), or free the token."""
    redirected = response.status_code in (302, 303) and "location" in response.headers
    if not redirected:
        if token:
            await staff.work(lambda s, a: submissions.release(s, token))
        return response
    if staff.kept and not token:
        token = secrets.token_urlsafe(24)
        await staff.work(lambda s, a: submissions.claim(s, staff_id(a), token))
    if not token:
        return response
    location = response.headers["location"]
    if staff.kept:
        location += ("&" if "?" in location else "?") + f"result={token}"
        response.headers["location"] = location
    box = staff.context.box
    await staff.work(lambda s, a: submissions.record_result(s, token, location, staff.kept, box))
    return response


def staff_api(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """JSON API: a staff bearer token, or the page session plus an X-CSRF-Token header."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        context = context_of(request)
        staff, csrf = await _api_caller(request, context)
        if staff is None:
            return unauthorized("A staff bearer token is required.")
        return await handler(_staff_request(request, context, staff, csrf))

    return endpoint


async def staff_api_actor(request: Request) -> Actor | None:
    """The staff actor of an API request: a staff bearer token, or the page session with an
    ``X-CSRF-Token`` header for unsafe methods; None when neither is valid."""
    staff, csrf = await _api_caller(request, context_of(request))
    if staff is None:
        return None
    return _staff_request(request, context_of(request), staff, csrf).actor


async def _api_caller(request: Request, context: AppContext) -> tuple[StaffView | None, str]:
    token = bearer_token(request)
    if token:
        return await run_in_threadpool(_by_token, context, token), ""
    signed = cookies.decode(request.cookies.get(cookies.COOKIE_NAME), context.settings.secret_keys)
    if signed is None:
        return None, ""
    unsafe = request.method not in ("GET", "HEAD", "OPTIONS")
    if unsafe and not cookies.csrf_matches(signed, request.headers.get("x-csrf-token")):
        return None, ""
    return await _load(context, signed.staff_id), signed.csrf


def _staff_request(
    request: Request, context: AppContext, staff: StaffView, csrf: str
) -> StaffRequest:
    actor = Actor(
        tenant_id=staff.tenant_id,
        kind="staff",
        name=staff.username,
        id=staff.id,
        role=staff.role,
        school_ids=staff.school_ids,
        user_id=staff.user_id,
    )
    return StaffRequest(request, context, actor, staff, csrf)


async def _load(context: AppContext, staff_id: str) -> StaffView | None:
    def load() -> StaffView | None:
        with context.database.session() as session:
            staff = session.get(StaffAccount, staff_id)
            return _view(staff) if staff is not None and staff.active else None

    return await run_in_threadpool(load)


def _by_token(context: AppContext, token: str) -> StaffView | None:
    with context.database.session() as session:
        staff = authenticate_staff_token(session, token)
        return _view(staff) if staff is not None else None


def _view(staff: StaffAccount) -> StaffView:
    return StaffView(
        staff.id,
        staff.username,
        staff.display_name,
        staff.role,
        staff.tenant_id,
        tuple(staff.school_ids or ()),
        staff.user_id,
    )
