"""The Starlette application: one app that mounts every protocol surface.

``create_app()`` builds it from the environment; tests pass their own settings and database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from scim.schemas import never_returned
from server import metrics as prometheus
from server.config import Settings, load_settings
from server.context import AppContext
from server.db.replay import database_file, sweep
from server.db.session import Database
from server.errors import DomainError
from server.failures import FailureRecorder
from server.imports.background import ImportRunner
from server.logs import accept_request_id, configure_logging, request_id
from server.redaction import redact_path
from server.security_headers import SecurityHeadersMiddleware
from server.shutdown import Shutdown
from server.unavailable import UnavailableHandler
from server.web.problems import domain_error
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
    # copies an import left when its process was killed hold student data (server.db.replay)
    sweep(database_file(context.database.engine))
    routes: list[BaseRoute] = protocol_routes(context)
    routes += [
        Route("/healthz", health, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    routes += admin_routes()

    shutdown = Shutdown(settings.shutdown_grace_seconds)
    imports = ImportRunner(context, shutdown)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # as many request threads as pooled connections: a thread never waits for one, and a
        # process of N shares no more threads than its share of connections (issue 15)
        threads = anyio.to_thread.current_default_thread_limiter()
        threads.total_tokens = settings.process_connections
        background = Worker(context, shutdown=shutdown) if worker else None
        if background:
            background.start()
        shutdown.watch_signals()
        yield
        shutdown.begin()  # the worker stops taking jobs; work in hand has the grace period
        await run_in_threadpool(imports.shutdown)
        if background:
            await run_in_threadpool(background.stop)

    handlers = {DomainError: domain_error}  # the admin surfaces' one mapping (server.web.problems)
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.state.context = context
    app.state.imports = imports
    app.add_middleware(FailureRecorder, database=context.database, secrets=never_returned())
    # outside the recorder: a request refused for a busy database has nowhere to be recorded
    app.add_middleware(UnavailableHandler)
    app.add_middleware(RequestLogMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, https=settings.issuer.startswith("https://"))
    if settings.trusted_proxies:  # outermost: every layer sees the client behind the proxy
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    return app


def protocol_routes(context: AppContext) -> list[BaseRoute]:
    """The mounts of the protocol packages (SCIM, OneRoster, OIDC) and the admin surfaces."""
    from oidc import routes as oidc_routes
    from oneroster.routes import OneRosterAPI
    from scim import ScimEndpoint
    from scim.openapi import openapi as scim_openapi
    from server.web.imports_api import import_routes

    # SCIM 2.0 at /scim/v2: scim2-server appends "/v2" to its mount point itself.
    # (scim2-server declares its own ASGI types; Starlette's are the same mappings)
    # First: the router tries routes in order, and SCIM lookups are the most frequent requests
    # (matching the hundred OneRoster and OIDC routes before it was a tenth of a lookup's CPU).
    routes: list[BaseRoute] = [
        Route("/scim/v2/openapi.json", scim_openapi, methods=["GET"]),
        Mount("/scim", app=cast(ASGIApp, ScimEndpoint(context))),
    ]
    routes += oidc_routes()
    routes += OneRosterAPI(context).routes()
    routes += import_routes(context)
    return routes


async def health(request: Request) -> Response:
    """200 when the process is up and the database answers, 503 otherwise."""
    context: AppContext = request.app.state.context
    reachable = await run_in_threadpool(context.database.is_reachable)
    body = {
        "status": "ok" if reachable else "unavailable",
        "database": "ok" if reachable else "unreachable",
    }
    if reachable:
        return JSONResponse(body)
    return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})


async def metrics(request: Request) -> Response:
    """Prometheus metrics (``server/metrics.py``): loopback or the metrics token, else 404."""
    context: AppContext = request.app.state.context
    client = request.client.host if request.client else None
    if not prometheus.allowed(client, request.headers, context.settings.metrics_token):
        return PlainTextResponse("Not Found", status_code=404)
    body = await run_in_threadpool(prometheus.render, context.database)
    return Response(body, media_type=prometheus.CONTENT_TYPE_LATEST)


class RequestLogMiddleware:
    """One structured log line per request: method, path (never the query), status, duration;
    the request id (the client's ``X-Request-Id``, else a new one) is echoed back and stamped
    on every log line the request causes. Secret path segments (an activation token) are
    redacted by :mod:`server.redaction`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        path = scope["path"]  # read now: mounts below rewrite the scope as they route
        rid = accept_request_id(_header(scope, b"x-request-id"))
        token = request_id.set(rid)
        echoed = (b"x-request-id", rid.encode("latin-1"))

        async def send_and_capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *(pair for pair in message.get("headers", ()) if pair[0] != b"x-request-id"),
                    echoed,
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_and_capture)
        finally:
            request_id.reset(token)
            elapsed = time.perf_counter() - started
            prometheus.observe_request(scope["path"], status, elapsed)
            log.info(
                "request",
                extra={
                    "request_id": rid,
                    "method": scope["method"],
                    "path": redact_path(path, scope.get("path_params")),
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of request header ``name`` (lower case), as Starlette's ``Headers``."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def create_serving_app() -> Starlette:
    """The factory ``rollcall serve --workers N`` gives uvicorn: every process runs jobs too.

    uvicorn calls it in each worker process it spawns, so logging is configured here: the
    parent's configuration does not reach the children.
    """
    configure_logging()
    return create_app(worker=True)


def create_web_app() -> Starlette:
    """The factory for ``rollcall serve --workers N --no-worker``: serving only."""
    configure_logging()
    return create_app(worker=False)
