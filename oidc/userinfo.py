"""The UserInfo endpoint, OpenID Connect Core §5.3: GET or POST, token in the
``Authorization`` header (RFC 6750 §2.1) or in a form body (§2.2), not both.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from oidc.web import read_request
from server.context import AppContext
from server.domain import authorization


def _bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def _error(status: int, error: str, description: str) -> Response:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"WWW-Authenticate": f'Bearer error="{error}"', "Cache-Control": "no-store"},
    )


async def userinfo(request: Request) -> Response:
    context: AppContext = request.app.state.context
    http = await read_request(request, context)
    header_token = _bearer(http.headers.get("authorization"))
    body_token = dict(http.form).get("access_token")
    if header_token and body_token:
        return _error(400, "invalid_request", "Send the access token once.")
    access_token = header_token or body_token
    if not access_token:
        return JSONResponse(
            {"error": "invalid_token", "error_description": "An access token is required."},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="userinfo"'},
        )

    def claims() -> dict[str, object] | None:
        with context.database.session() as session:
            return authorization.userinfo(session, access_token)

    body = await run_in_threadpool(claims)
    if body is None:
        return _error(401, "invalid_token", "The access token is invalid, expired or revoked.")
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
