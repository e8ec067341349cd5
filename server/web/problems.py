"""Domain errors as the admin surfaces answer them: one Starlette exception handler, one body.

Handlers below ``server/web`` raise :class:`~server.errors.DomainError` and never catch it to
answer; :func:`domain_error` (registered on the app for ``DomainError``) answers by surface:

- the admin JSON API (``/admin/api/…``): the :func:`problem` body, at the error's own status
  (documented as the ``Error`` schema of ``/admin/api/openapi.json``)::

      {"error": "NotFound", "detail": "No such user.", "code": "R108", "field": null}

- the admin HTML pages (``/admin/…``): the error page with the message, at the error's status.
  A page that must show its form again with the error keeps a small explicit path.

SCIM, OneRoster and OIDC map domain errors to their own wire errors themselves; one escaping
them is a bug and stays one. A busy database is answered by :mod:`server.unavailable`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.errors import DomainError, PossibleDuplicate
from server.web.render import page

ADMIN_API = "/admin/api/"
ADMIN_PAGES = "/admin"


def problem(error: DomainError) -> JSONResponse:
    """The admin API's error body for ``error``, at its status."""
    body: dict[str, Any] = {
        "error": type(error).__name__,
        "detail": error.message,
        "code": error.code,
        "field": error.field,
    }
    if isinstance(error, PossibleDuplicate):
        body["error"], body["matches"] = "possible_duplicate", error.matches
    return JSONResponse(body, status_code=error.status)


def unauthorized(detail: str, realm: str = "rollcall-admin") -> JSONResponse:
    """401 in the same shape, with the challenge (RFC 6750 §3)."""
    body = {"error": "unauthorized", "detail": detail, "code": None, "field": None}
    headers = {"WWW-Authenticate": f'Bearer realm="{realm}"'}
    return JSONResponse(body, status_code=401, headers=headers)


async def domain_error(request: Request, error: Exception) -> Response:
    """The exception handler for :class:`DomainError`, by surface (see the module docstring)."""
    assert isinstance(error, DomainError)
    path = request.url.path
    if path.startswith(ADMIN_API):
        return problem(error)
    if path == ADMIN_PAGES or path.startswith(ADMIN_PAGES + "/"):
        return page(request, "error.html", status_code=error.status, error=error.message)
    raise error
