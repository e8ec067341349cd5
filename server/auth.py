"""Bearer-token authentication of connections for the protocol surfaces.

:class:`ConnectionAuthMiddleware` wraps a mounted protocol app: it resolves the
``Authorization: Bearer`` token to its connection (and so its tenant) and puts the acting
:class:`~server.domain.actors.Actor` in the ASGI scope; a missing or wrong token gets 401 with
``WWW-Authenticate: Bearer`` in the protocol's own error format.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from server.db.session import Database
from server.domain.actors import Actor, connection_actor
from server.domain.connections import authenticate_token

ACTOR_KEY = "rollcall.actor"
ErrorRenderer = Callable[[int, str], Response]


def bearer_token(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class ConnectionAuthMiddleware:
    """Admit only requests bearing a live connection token."""

    def __init__(self, app: ASGIApp, database: Database, render_error: ErrorRenderer) -> None:
        self.app = app
        self.database = database
        self.render_error = render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = bearer_token(HTTPConnection(scope))
        actor = await run_in_threadpool(self._resolve, token) if token else None
        if actor is None:
            detail = (
                "A bearer token is required." if not token else "The bearer token is not valid."
            )
            response = self.render_error(401, detail)
            response.headers["WWW-Authenticate"] = 'Bearer realm="rollcall"' + (
                ', error="invalid_token"' if token else ""
            )
            await response(scope, receive, send)
            return
        scope[ACTOR_KEY] = actor
        await self.app(scope, receive, send)

    def _resolve(self, token: str) -> Actor | None:
        with self.database.session() as session:
            connection = authenticate_token(session, token)
            return connection_actor(connection) if connection is not None else None


def actor_of(connection: HTTPConnection) -> Actor:
    """The actor the auth middleware admitted (a programming error if there is none)."""
    actor = connection.scope.get(ACTOR_KEY)
    if not isinstance(actor, Actor):
        raise RuntimeError("route is not behind ConnectionAuthMiddleware")
    return actor
