"""HTTP surfaces of imports and exports (thin: parse the request, call the engine, render).

- ``POST /oneroster/csv`` — a connection pushes a OneRoster CSV zip (raw body, or multipart
  field ``file``) with its bearer token, e.g. from an SFTP-to-HTTP hook or a rostering hub.
  Query: ``dry_run``, ``mode``, ``skip_invalid``, ``allow_shrink`` (``true``/``false``) and
  ``school`` (repeatable). Answers the report: 200 when applied (or a valid trial run), 422
  when refused, 400 for a bad request, 413 (F010) for a body over the upload limit; a run
  still going after ``ROLLCALL_IMPORT_WAIT_SECONDS`` answers 202 with its URL,
  ``GET /oneroster/csv/{id}`` (same token), to poll.
- ``GET /admin/import/template.csv`` — the school CSV template; ``GET /admin/import/codes.json``
  — the import status codes.
- ``POST /admin/api/imports`` (multipart ``file``, fields ``dry_run``, ``mode``,
  ``connection`` (default: the manual connection), ``school``…), ``GET /admin/api/imports``
  and ``GET /admin/api/imports/{id}`` — staff bearer tokens; district and school admins. A run
  still going after the wait answers 202 with ``/admin/api/imports/{id}`` to poll.
- ``GET /admin/api/imports/status-codes`` — the same codes, for staff tokens.
- ``GET /admin/api/exports?format=…&school=…`` — the same exports as ``rollcall export``.

The ``/admin/api`` endpoints raise domain errors and the app's handler answers them in the
admin API's one ``Error`` body (:mod:`server.web.problems`); the pushes answer
``{"error": message, "code"}`` as they always have.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from typing import IO, Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, request_response
from starlette.types import Message

from server.auth import ConnectionAuthMiddleware, actor_of
from server.context import AppContext
from server.domain.access import import_scope, own_import_scope
from server.domain.actors import Actor
from server.domain.connections import get_connection
from server.domain.import_limits import ImportLimits, LimitExceeded, upload_too_large
from server.domain.import_runs import Report, RunStatus, recent_runs, run_as_dict, visible_run
from server.domain.schools import resolve_school_ids
from server.domain.tenants import MANUAL_CONNECTION_NAME
from server.errors import DomainError, InvalidValue, NotFound, TooLarge
from server.imports import exports
from server.imports.background import ImportJob, ImportRunner
from server.imports.codes import STATUS_CODES
from server.imports.engine import ImportOptions
from server.imports.school_csv import template
from server.web.problems import unauthorized
from server.web.staffauth import staff_api_actor

ROW_LIMIT = 10_000
SPOOL_MEMORY = 8 * 1024 * 1024
MEDIA_TYPES = {
    "oneroster-1.1": ("application/zip", "oneroster-1.1.zip"),
    "oneroster-1.2": ("application/zip", "oneroster-1.2.zip"),
    "school-csv": ("text/csv; charset=utf-8", "students.csv"),
    "xlsx": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "students.xlsx",
    ),
}


def import_routes(context: AppContext) -> list[BaseRoute]:
    push = ConnectionAuthMiddleware(request_response(push_csv), context.database, _error)
    pushed = ConnectionAuthMiddleware(request_response(push_run), context.database, _error)
    return [
        Route("/oneroster/csv", push, methods=["POST"]),
        Route("/oneroster/csv/{run_id}", pushed, methods=["GET"]),
        Route("/admin/import/template.csv", template_csv, methods=["GET"]),
        Route("/admin/import/codes.json", status_codes, methods=["GET"]),
        Route("/admin/api/imports", admin_imports, methods=["GET", "POST"]),
        Route("/admin/api/imports/status-codes", admin_status_codes, methods=["GET"]),
        Route("/admin/api/imports/{run_id}", admin_import_run, methods=["GET"]),
        Route("/admin/api/exports", admin_export, methods=["GET"]),
    ]


def _error(status: int, message: str, code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "code": code}, status_code=status)


def _flag(value: str | None, name: str) -> bool:
    if value is None or value == "":
        return False
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise InvalidValue(f"{name} must be true or false.", code="R102")


def _options(values: Any, schools: list[str], limits: ImportLimits) -> ImportOptions:
    mode = values.get("mode") or None
    if mode not in (None, "full", "delta"):
        raise InvalidValue("mode must be full or delta.", code="R102")
    return ImportOptions(
        mode=mode,
        school_sourced_ids=tuple(schools),
        dry_run=_flag(values.get("dry_run"), "dry_run"),
        skip_invalid=_flag(values.get("skip_invalid"), "skip_invalid"),
        allow_shrink=_flag(values.get("allow_shrink"), "allow_shrink"),
        limits=limits,
    )


def _report_response(report: Report) -> JSONResponse:
    try:
        body = report.as_dict(row_limit=ROW_LIMIT)
    finally:
        report.close()
    return JSONResponse(body, status_code=200 if report.ok else 422)


async def _answer(request: Request, job: ImportJob, poll_path: str) -> Response:
    """Run ``job`` in the background; its report if it ends within the configured wait,
    else 202 with the URL to poll (issue 13: imports run as jobs, not inside the request).

    :raises DomainError: the import was refused at start (answered within the wait).
    """
    runner: ImportRunner = request.app.state.imports
    wait = request.app.state.context.settings.import_wait_seconds
    started = await run_in_threadpool(runner.submit, job)
    if await runner.wait(started, wait):
        return _report_response(started.future.result())
    runner.release(started)
    url = poll_path.format(run_id=started.run_id)
    return JSONResponse(
        {"id": started.run_id, "status": RunStatus.RUNNING, "url": url},
        status_code=202,
        headers={"Location": url, "Retry-After": "5"},
    )


def limited(request: Request, limits: ImportLimits) -> Request:
    """The request, its body read through the upload limit (F010 as soon as it is passed).

    :raises LimitExceeded: F010, from the ``Content-Length`` header or while streaming.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.upload_bytes:
        raise upload_too_large(limits)
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limits.upload_bytes:
            raise upload_too_large(limits)
        return message

    return Request(request.scope, receive)


async def _spool(request: Request) -> tuple[IO[bytes], str | None]:
    """The uploaded file: a multipart ``file`` field or the raw body, spooled to disk."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise DomainError("Send the file in the multipart field 'file'.", code="F001")
        return upload.file, upload.filename
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
    async for chunk in request.stream():
        await run_in_threadpool(spool.write, chunk)
    spool.seek(0)
    return spool, None


async def push_csv(request: Request) -> Response:
    actor = actor_of(request)
    context: AppContext = request.app.state.context
    limits = context.settings.import_limits
    try:
        options = _options(request.query_params, request.query_params.getlist("school"), limits)
        stream, filename = await _spool(limited(request, limits))
        assert actor.connection_id is not None
        job = ImportJob(
            actor.tenant_id,
            actor.connection_id,
            stream,
            filename or "push.zip",
            options,
            actor.name,
        )
        return await _answer(request, job, "/oneroster/csv/{run_id}")
    except DomainError as error:
        return _error(400, error.message, error.code)
    except LimitExceeded as error:
        return _error(413, error.message, error.code)


async def push_run(request: Request) -> Response:
    """``GET /oneroster/csv/{run_id}``: a pushed run, for the connection that pushed it."""
    actor = actor_of(request)
    context: AppContext = request.app.state.context
    body = await run_in_threadpool(_stored_run, context, actor, request.path_params["run_id"])
    if body is None:
        return _error(404, "No such import run.")
    return JSONResponse(body)


def _stored_run(
    context: AppContext, actor: Actor, run_id: str, row_limit: int = ROW_LIMIT
) -> dict[str, Any] | None:
    with context.database.session() as session:
        run = visible_run(session, actor, run_id)
        return None if run is None else run_as_dict(session, run, row_limit=row_limit)


async def template_csv(request: Request) -> Response:
    return Response(
        template(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="rollcall-school-template.csv"'},
    )


async def status_codes(request: Request) -> Response:
    """The import status codes and their meanings (SPEC §10); public, like the template."""
    return JSONResponse(STATUS_CODES)


async def _authenticated(request: Request) -> tuple[AppContext, Actor] | Response:
    context: AppContext = request.app.state.context
    actor = await staff_api_actor(request)
    if actor is None:
        return unauthorized("A staff bearer token (or a signed-in staff session) is required.")
    return context, actor


async def admin_imports(request: Request) -> Response:
    found = await _authenticated(request)
    if isinstance(found, Response):
        return found
    context, actor = found
    if request.method == "GET":
        return JSONResponse(await run_in_threadpool(_list_runs, context, actor))
    try:
        return await _upload(request, context, actor)
    except LimitExceeded as error:
        raise TooLarge(error.message, code=error.code) from None


async def _upload(request: Request, context: AppContext, actor: Actor) -> Response:
    """``POST /admin/api/imports``. :raises LimitExceeded: the upload is over a limit."""
    limits = context.settings.import_limits
    form = await limited(request, limits).form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidValue("Send the file in the multipart field 'file'.", code="F001")
    schools_sourced = [str(s) for s in form.getlist("school")]
    options = _options(form, schools_sourced, limits)
    name = str(form.get("connection") or MANUAL_CONNECTION_NAME)

    def resolve() -> tuple[str, list[str]]:
        with context.database.session() as session:
            ids = resolve_school_ids(session, actor.tenant_id, schools_sourced)
            ids = import_scope(actor, ids)
            return get_connection(session, actor.tenant_id, name).id, ids

    connection_id, school_ids = await run_in_threadpool(resolve)
    options = replace(options, school_sourced_ids=(), school_ids=tuple(school_ids))
    stream = await run_in_threadpool(_copy, upload.file)
    job = ImportJob(
        actor.tenant_id, connection_id, stream, upload.filename, options, actor.name, actor
    )
    return await _answer(request, job, "/admin/api/imports/{run_id}")


def _copy(upload: IO[bytes]) -> IO[bytes]:
    """The upload in a spool the background run owns (the form's file closes with the
    request)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
    shutil.copyfileobj(upload, spool, 1024 * 1024)
    spool.seek(0)
    return spool


def _list_runs(context: AppContext, actor: Actor) -> list[dict[str, Any]]:
    """Recent runs of the tenant (district admins) or the caller's own runs (school admins)."""
    own_import_scope(actor)
    with context.database.session() as session:
        runs = recent_runs(session, actor)
        return [
            {
                "id": run.id,
                "status": run.status,
                "format": run.format,
                "mode": run.mode,
                "dry_run": run.dry_run,
                "summary": run.summary,
                "started_at": run.started_at.isoformat(),
            }
            for run in runs
        ]


async def admin_status_codes(request: Request) -> Response:
    """The SPEC §10 status codes a report's rows carry, with their meaning."""
    found = await _authenticated(request)
    if isinstance(found, Response):
        return found
    return JSONResponse({"codes": [{"code": c, "meaning": m} for c, m in STATUS_CODES.items()]})


async def admin_import_run(request: Request) -> Response:
    found = await _authenticated(request)
    if isinstance(found, Response):
        return found
    context, actor = found
    limit = request.query_params.get("limit")

    if limit is not None and not limit.isdigit():
        raise InvalidValue("limit must be a number.", field="limit")
    body = await run_in_threadpool(
        _stored_run,
        context,
        actor,
        request.path_params["run_id"],
        int(limit) if limit else ROW_LIMIT,
    )
    if body is None:
        raise NotFound("No such import run.")
    return JSONResponse(body)


async def admin_export(request: Request) -> Response:
    found = await _authenticated(request)
    if isinstance(found, Response):
        return found
    context, actor = found
    fmt = request.query_params.get("format", "")
    if fmt not in MEDIA_TYPES:
        raise InvalidValue(f"format must be one of {', '.join(MEDIA_TYPES)}.", field="format")

    def run() -> bytes:
        with context.database.session() as session:
            ids = resolve_school_ids(
                session, actor.tenant_id, request.query_params.getlist("school")
            )
            with tempfile.TemporaryFile() as out:  # export checks the actor's schools
                exports.export(session, actor, context.box, fmt, out, school_ids=ids)
                out.seek(0)
                return out.read()

    data = await run_in_threadpool(run)
    media_type, filename = MEDIA_TYPES[fmt]
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
