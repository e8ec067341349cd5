"""A busy or unreachable database answered as 503 with ``Retry-After``, in each surface's format.

The unit of work raises :class:`~server.errors.DatabaseUnavailable` (``Database.session``);
:class:`UnavailableHandler` wraps the whole app and answers it once, by where the request went:

=========================  ===============================================================
``/scim/``                 SCIM error JSON (RFC 7644 §3.12), ``status: "503"``
``/ims/oneroster/``,       OneRoster ``imsx_StatusInfo``, code minor ``server_busy``
``/oneroster/``
``/oauth/…`` (JSON ones)   OAuth error JSON ``temporarily_unavailable`` (RFC 6749 §4.1.2.1)
``/admin/api/``            the admin API's ``{"error", "detail"}`` JSON
anything else              a short HTML page (sign-in, staff pages)
``/healthz``               its own JSON (``server/app.py``)
=========================  ===============================================================
"""

from __future__ import annotations

import json
import logging
from html import escape

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oneroster.errors import SERVER_BUSY, status_info
from server.db.session import unavailable_reason
from server.errors import DatabaseUnavailable

log = logging.getLogger("rollcall.unavailable")

MESSAGE = "The database is busy or unreachable; retry in a few seconds."
_OAUTH_PAGES = ("/oauth/authorize", "/oauth/logout")


def unavailable_body(path: str) -> tuple[str, bytes]:
    """The content type and body that the surface serving ``path`` uses for a 503."""
    if path.startswith("/scim/"):
        return "application/scim+json", json.dumps(scim_unavailable()).encode()
    if path.startswith(("/ims/oneroster/", "/oneroster/")):
        return "application/json", json.dumps(status_info(SERVER_BUSY, MESSAGE)).encode()
    if path.startswith("/oauth/") and not path.startswith(_OAUTH_PAGES):
        oauth = {"error": "temporarily_unavailable", "error_description": MESSAGE}
        return "application/json", json.dumps(oauth).encode()
    if path.startswith("/admin/api/"):
        admin = {"error": "DatabaseUnavailable", "detail": MESSAGE, "code": None, "field": None}
        return "application/json", json.dumps(admin).encode()
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Try again in a moment · Rollcall</title></head><body><main>"
        f"<h1>Try again in a moment</h1><p>{escape(MESSAGE)}</p></main></body></html>"
    )
    return "text/html; charset=utf-8", page.encode()


def busy_or_unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the database is busy or unreachable (caught before the unit of
    work turned it into :class:`DatabaseUnavailable`, e.g. inside one Bulk operation)."""
    if isinstance(error, DatabaseUnavailable):
        return True
    if isinstance(error, (OperationalError, InterfaceError, SATimeoutError)):
        return unavailable_reason(error) is not None
    return False


def scim_unavailable() -> dict[str, str | list[str]]:
    """The SCIM error object of a 503 (RFC 7644 §3.12)."""
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "503",
        "detail": MESSAGE,
    }


class UnavailableHandler:
    """Answer :class:`DatabaseUnavailable` from anywhere below with a 503 (if nothing was sent
    yet; a stream cut mid-way can only be closed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]  # read now: mounts below rewrite the scope as they route
        started = False

        async def send_and_note(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except DatabaseUnavailable as error:
            if started:
                raise
            log.warning("answered 503: database unavailable", extra={"reason": error.reason})
            await send_unavailable(send, path, error.retry_after)


async def send_unavailable(send: Send, path: str, retry_after: int) -> None:
    content_type, body = unavailable_body(path)
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
