"""Remember the requests a connection sent that Rollcall refused, for its admins to read.

:class:`FailureRecorder` wraps the whole app. When a request made with a connection's token
(any protocol: SCIM, OneRoster pushes, CSV pushes) ends in an error other than 401, it stores
the method, path, status, the reason from the error body and the start of the request body
in its own unit of work: the failed request's transaction rolled back. Secrets are redacted by
meaning (:mod:`server.redaction`): secret path segments, and the attributes the protocol
schemas never return (``secrets``: ``password``), also as the path of a PATCH operation.
Bodies that are not JSON (CSV and zip uploads) are not kept at all.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import wirejson
from server.auth import ACTOR_KEY
from server.db.session import Database
from server.domain.actors import Actor
from server.domain.connections import record_failure
from server.redaction import redact_body, redact_path

EXCERPT = 1000
log = logging.getLogger("rollcall.failures")


class FailureRecorder:
    def __init__(self, app: ASGIApp, database: Database, secrets: Collection[str] = ()) -> None:
        self.app = app
        self.database = database
        self.secrets = frozenset(secrets)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]  # read now: mounts below rewrite the scope as they route
        request_start = bytearray()
        response_start = bytearray()
        status = 0

        async def receive_and_keep() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(request_start) < EXCERPT:
                request_start.extend(message.get("body", b"")[: EXCERPT - len(request_start)])
            return message

        async def send_and_keep(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and len(response_start) < 4000:
                response_start.extend(message.get("body", b"")[: 4000 - len(response_start)])
            await send(message)

        await self.app(scope, receive_and_keep, send_and_keep)
        actor = scope.get(ACTOR_KEY)
        # 401s are not the connection's; a 503 means the database is busy: nowhere to record
        if (
            isinstance(actor, Actor)
            and actor.connection_id
            and status >= 400
            and status not in (401, 503)
        ):
            await anyio.to_thread.run_sync(
                self._record,
                actor.connection_id,
                scope["method"],
                redact_path(path, scope.get("path_params")),
                status,
                bytes(request_start) if _is_json(scope) else None,
                bytes(response_start),
            )

    def _record(
        self,
        connection_id: str,
        method: str,
        path: str,
        status: int,
        request: bytes | None,
        response: bytes,
    ) -> None:
        try:
            with self.database.session() as session:
                record_failure(
                    session,
                    connection_id,
                    method=method,
                    path=path,
                    status=status,
                    error=reason(response) or f"HTTP {status}",
                    request_excerpt=(
                        redact_body(request.decode("utf-8", "replace"), self.secrets)
                        if request is not None
                        else "(not JSON, e.g. a file: not kept, it may hold passwords)"
                    )
                    or None,
                )
        except Exception:
            log.exception("could not record a provider failure")


def _is_json(scope: Scope) -> bool:
    """Only JSON bodies are kept: their secrets can be found by meaning. A CSV or zip upload
    (a OneRoster push with a password column) is never stored, not even its first bytes."""
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return b"json" in value.lower()
    return False


def reason(body: bytes) -> str:
    """The human reason in an error body: SCIM ``detail``, OneRoster ``imsx_description``…"""
    try:
        data = wirejson.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:2000]
    if isinstance(data, dict):
        for key in ("detail", "imsx_description", "error_description", "summary", "error"):
            if isinstance(data.get(key), str) and data[key]:
                scim_type = data.get("scimType")
                return f"{data[key]}" + (f" (scimType {scim_type})" if scim_type else "")
    return json.dumps(data)[:2000]
