"""Remember the requests a connection sent that Rollcall refused, for its admins to read.

:class:`FailureRecorder` wraps the whole app. When a request made with a connection's token
(any protocol: SCIM, OneRoster pushes, CSV pushes) ends in an error other than 401, it stores
the method, path, status, the reason from the error body and the start of the request body
(secrets scrubbed) in its own unit of work: the failed request's transaction rolled back.
"""

from __future__ import annotations

import json
import logging

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.auth import ACTOR_KEY
from server.db.session import Database
from server.domain.actors import Actor
from server.domain.connections import record_failure

EXCERPT = 1000
log = logging.getLogger("rollcall.failures")


class FailureRecorder:
    def __init__(self, app: ASGIApp, database: Database) -> None:
        self.app = app
        self.database = database

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
                path,
                status,
                bytes(request_start),
                bytes(response_start),
            )

    def _record(
        self,
        connection_id: str,
        method: str,
        path: str,
        status: int,
        request: bytes,
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
                    request_excerpt=request.decode("utf-8", "replace") or None,
                )
        except Exception:
            log.exception("could not record a provider failure")


def reason(body: bytes) -> str:
    """The human reason in an error body: SCIM ``detail``, OneRoster ``imsx_description``…"""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:2000]
    if isinstance(data, dict):
        for key in ("detail", "imsx_description", "error_description", "summary", "error"):
            if isinstance(data.get(key), str) and data[key]:
                scim_type = data.get("scimType")
                return f"{data[key]}" + (f" (scimType {scim_type})" if scim_type else "")
    return json.dumps(data)[:2000]
