"""Jinja2 templates for the admin UI, with autoescaping and the helpers every page needs."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from server.web.address import address_warning
from server.web.change_words import change_lines

TEMPLATES = Path(__file__).parent / "templates"

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
# A fresh one-time token for each form a page renders (server/domain/submissions.py).
environment.globals["once"] = lambda: secrets.token_urlsafe(24)
# Credential states in the words a school secretary uses (issue 14, item 13).
CREDENTIAL_WORDS = {
    "pending": "No password yet",
    "issued": "Temporary password, not used yet",
    "active": "Student chose own password",
    "sso": "Signs in with the school's sign-in provider",
}
environment.filters["credential_words"] = lambda state: CREDENTIAL_WORDS.get(state, state or "")
# An import row's changes as "Pupil Premium: No → Yes" lines (issue 14, item 11).
environment.filters["change_lines"] = change_lines


def page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """Render a page; ``staff`` and ``csrf`` come from the request state when signed in,
    ``address_warning`` when the configured issuer is not the address in use."""
    state = request.state
    context = {
        "request": request,
        "staff": getattr(state, "staff", None),
        "csrf": getattr(state, "csrf", ""),
        "waiting_requests": getattr(state, "waiting_requests", 0),
        "address_warning": address_warning(issuer_of(request), str(request.base_url)),
        "mail_ready": bool(request.app.state.context.settings.smtp_url),
        **values,
    }
    html = environment.get_template(template).render(context)
    return HTMLResponse(html, status_code=status_code, headers=_security_headers())


def issuer_of(request: Request) -> str:
    """The configured sign-in address of the app serving ``request``."""
    issuer: str = request.app.state.context.settings.issuer
    return issuer


def _security_headers() -> dict[str, str]:
    # CSP, framing, sniffing and referrer headers: server.security_headers, for every page.
    return {"Cache-Control": "no-store"}
