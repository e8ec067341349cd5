"""The browser edge of the provider: Starlette requests in, plain values out, and back.

- :func:`read_request` awaits the body on the event loop and returns an
  :class:`~oidc.server.HttpRequest`, so nothing below touches Starlette.
- :class:`Page` is a template to render; :func:`respond` turns pages, protocol responses and
  redirects into Starlette responses.
- CSRF: a random ``rollcall_csrf`` cookie and, in every form, its HMAC under the server secret
  (a signed double-submit token). Cookies are ``HttpOnly``, ``SameSite=Lax``, and ``Secure``
  when the issuer is https.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from oidc.server import HttpRequest, HttpResponse
from server.context import AppContext
from server.domain.secrets import sign

SESSION_COOKIE = "rollcall_session"
CSRF_COOKIE = "rollcall_csrf"
SESSION_MAX_AGE = 12 * 3600

templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


@dataclass
class Page:
    """A server-rendered page, with cookies to set (value None: delete)."""

    template: str
    values: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    cookies: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Redirect:
    location: str
    cookies: dict[str, str | None] = field(default_factory=dict)


Outcome = Page | Redirect | HttpResponse


async def read_request(request: Request, context: AppContext) -> HttpRequest:
    """The request as plain values; a malformed body reads as empty (never a 500)."""
    form: list[tuple[str, str]] = []
    if request.method == "POST":
        try:
            data = await request.form()
            form = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
        except Exception:
            form = []
    # NUL never belongs in a parameter, and PostgreSQL refuses it in text: drop it here.
    form = [(k.replace("\x00", ""), v.replace("\x00", "")) for k, v in form]
    params = [
        (k.replace("\x00", ""), v.replace("\x00", ""))
        for k, v in request.query_params.multi_items()
    ]
    query = request.url.query
    uri = context.settings.issuer + request.url.path + (f"?{query}" if query else "")
    return HttpRequest(
        method=request.method,
        uri=uri,
        headers=request.headers,
        query=params,
        form=form,
        cookies=dict(request.cookies),
        address=request.client.host if request.client else None,
    )


def csrf_token(context: AppContext, cookie_value: str) -> str:
    return sign(context.settings.secret_key, "csrf", cookie_value.encode())


def csrf_cookie(http: HttpRequest) -> tuple[str, bool]:
    """The browser's CSRF cookie value, or a new one (True when it must be set)."""
    value = http.cookies.get(CSRF_COOKIE)
    if value and len(value) >= 20:
        return value, False
    return secrets.token_urlsafe(24), True


def form_page(context: AppContext, http: HttpRequest, page: Page) -> Page:
    """Add the CSRF token to a page with a form (and its cookie when new)."""
    value, new = csrf_cookie(http)
    page.values["csrf"] = csrf_token(context, value)
    if new:
        page.cookies[CSRF_COOKIE] = value
    return page


def csrf_ok(context: AppContext, http: HttpRequest) -> bool:
    """The form's CSRF token matches the browser's cookie, signed with any key of the ring (a
    page opened before a key rotation still posts)."""
    cookie = http.cookies.get(CSRF_COOKIE)
    sent = dict(http.form).get("csrf", "")
    if not cookie:
        return False
    return any(
        hmac.compare_digest(sign(key, "csrf", cookie.encode()), sent)
        for key in context.settings.secret_keys
    )


def safe_next(value: str | None) -> str:
    """A same-site path to continue to after sign-in, or "" (no open redirects)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return ""
    return value


def next_client_id(next_path: str) -> str | None:
    """The ``client_id`` of an authorization request we are signing in for."""
    parts = urlsplit(next_path)
    if parts.path != "/oauth/authorize":
        return None
    return dict(parse_qsl(parts.query)).get("client_id")


def respond(context: AppContext, outcome: Outcome) -> Response:
    if isinstance(outcome, HttpResponse):
        headers = dict(outcome.headers)
        body = outcome.body if isinstance(outcome.body, str) else json.dumps(outcome.body)
        return Response(body, status_code=outcome.status, headers=headers)
    if isinstance(outcome, Redirect):
        response: Response = RedirectResponse(outcome.location, status_code=303)
    else:
        values = {"issuer": context.settings.issuer, **outcome.values}
        html = templates.get_template(outcome.template).render(**values)
        response = HTMLResponse(html, status_code=outcome.status)
        response.headers["Cache-Control"] = "no-store"  # CSP & co: server.security_headers
    secure = context.settings.issuer.startswith("https://")
    for name, value in outcome.cookies.items():
        if value is None:
            response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
        else:
            max_age = SESSION_MAX_AGE if name == SESSION_COOKIE else None
            response.set_cookie(
                name,
                value,
                max_age=max_age,
                path="/",
                secure=secure,
                httponly=True,
                samesite="lax",
            )
    return response
