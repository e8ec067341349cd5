"""Jinja2 templates for the admin UI, with autoescaping and the helpers every page needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).parent / "templates"

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """Render a page; ``staff`` and ``csrf`` come from the request state when signed in."""
    state = request.state
    context = {
        "request": request,
        "staff": getattr(state, "staff", None),
        "csrf": getattr(state, "csrf", ""),
        **values,
    }
    html = environment.get_template(template).render(context)
    return HTMLResponse(html, status_code=status_code, headers=_security_headers())


def _security_headers() -> dict[str, str]:
    # CSP, framing, sniffing and referrer headers: server.security_headers, for every page.
    return {"Cache-Control": "no-store"}
