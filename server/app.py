"""The Starlette application: one app that mounts every protocol surface.

``create_app()`` builds it from the environment; tests pass their own settings and database.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.config import Settings, load_settings
from server.context import AppContext
from server.db.session import Database
from server.failures import FailureRecorder
from server.imports.background import ImportRunner
from server.web.routes import admin_routes
from server.worker import Worker

log = logging.getLogger("rollcall.http")


def create_app(
    settings: Settings | None = None, *, database: Database | None = None, worker: bool = False
) -> Starlette:
    """Assemble Rollcall: health check, protocol surfaces and request logging.

    With ``worker``, the process also runs queued background jobs (email, pulls) while it serves.
    """
    settings = settings or load_settings()
    context = AppContext.from_settings(settings, database)
    routes: list[BaseRoute] = [Route("/healthz", health, methods=["GET", "HEAD"])]
    routes += protocol_routes(context)
    routes += admin_routes()

    imports = ImportRunner(context)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        background = Worker(context) if worker else None
        if background:
            background.start()
        imports.watch_signals()
        yield
        await run_in_threadpool(imports.shutdown)
        if background:
            background.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.context = context
    app.state.imports = imports
    app.add_middleware(FailureRecorder, database=context.database)
    app.add_middleware(RequestLogMiddleware)
    return app


def protocol_routes(context: AppContext) -> list[BaseRoute]:
    """The mounts of the protocol packages (SCIM, OneRoster, OIDC) and the admin surfaces."""
    from oidc import routes as oidc_routes
    from oneroster.routes import OneRosterAPI
    from scim import ScimEndpoint
    from scim.openapi import openapi as scim_openapi
    from server.imports.http import import_routes

    routes: list[BaseRoute] = []
    routes += oidc_routes()
    routes += OneRosterAPI(context).routes()
    routes += import_routes(context)
    routes.append(Route("/scim/v2/openapi.json", scim_openapi, methods=["GET"]))
    # SCIM 2.0 at /scim/v2: scim2-server appends "/v2" to its mount point itself.
    routes.append(Mount("/scim", app=ScimEndpoint(context)))
    return routes


async def health(request: Request) -> Response:
    """200 when the process is up and the database answers, 503 otherwise."""
    context: AppContext = request.app.state.context
    reachable = await run_in_threadpool(context.database.is_reachable)
    body = {
        "status": "ok" if reachable else "unavailable",
        "database": "ok" if reachable else "unreachable",
    }
    return JSONResponse(body, status_code=200 if reachable else 503)


class RequestLogMiddleware:
    """One structured log line per request: method, path (never the query), status, duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_capture)
        finally:
            log.info(
                "request",
                extra={
                    "request_id": uuid.uuid4().hex[:12],
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )


def create_serving_app() -> Starlette:
    """The factory ``rollcall serve --workers N`` gives uvicorn: every process runs jobs too."""
    return create_app(worker=True)
