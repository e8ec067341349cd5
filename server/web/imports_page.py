"""The admin import pages: upload, see the trial run, apply; past imports; exports.

The trial run and the apply run the same engine (:mod:`server.imports.engine`). Between them
the uploaded file travels in the apply form itself, base64-encoded and HMAC-signed with the
options it was checked with, so no process needs to keep it and nobody can apply a file other
than the one whose trial run they saw. Uploads here are limited to :data:`MAX_UPLOAD` bytes;
district-sized OneRoster packages go through ``rollcall import`` or ``POST /oneroster/csv``.
"""

from __future__ import annotations

import base64
import hmac
import io
import json
import tempfile
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, UploadFile
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import request_response
from starlette.types import Message, Receive, Scope, Send

from server import wirejson
from server.domain import connections
from server.domain.access import import_scope, own_import_scope
from server.domain.actors import Actor
from server.domain.import_runs import recent_runs, run_as_dict, visible_run
from server.domain.schools import schools_for
from server.domain.secrets import sign
from server.errors import DomainError, InvalidValue, NotFound
from server.imports import exports
from server.imports.background import ImportJob, ImportRunner
from server.imports.engine import ImportOptions
from server.web.render import page
from server.web.staffauth import StaffRequest, staff_page
from server.web.status_codes import STATUS_CODES

MAX_UPLOAD = 5 * 1024 * 1024
# the upload form's body (the file and a few fields); the apply form carries it base64-encoded
MAX_FORM_BODY = MAX_UPLOAD + 1024 * 1024
MAX_APPLY_BODY = MAX_UPLOAD * 4 // 3 + 1024 * 1024
TOO_LARGE = "F010: the file is larger than 5 MB: split it, or ask IT to import it for you."
ROW_LIMIT = 2000
_PURPOSE = "import-upload"
DAMAGED = "The apply form is damaged or was changed: upload the file again."


@staff_page
async def import_form(staff: StaffRequest) -> Response:
    return await _render_form(staff)


async def _render_form(staff: StaffRequest, status: int = 200, **extra: Any) -> Response:
    def load(session: Session, actor: Actor) -> dict[str, Any]:
        own_import_scope(actor)
        runs = recent_runs(session, actor, limit=20)
        return {
            "schools": [(school.id, school.name) for school in schools_for(session, actor)],
            "connections": [c.name for c in connections.file_import_connections(session, actor)],
            "runs": [
                {
                    "id": r.id,
                    "status": r.status,
                    "format": r.format,
                    "mode": r.mode,
                    "dry_run": r.dry_run,
                    "summary": r.summary,
                    "by": r.actor_name,
                    "at": r.started_at.isoformat(timespec="seconds"),
                }
                for r in runs
            ],
        }

    data = await staff.work(load)
    return page(staff.request, "import.html", status_code=status, nav="import", **data, **extra)


@staff_page
async def trial_run(staff: StaffRequest) -> Response:
    form = await staff.request.form()
    upload = form.get("file")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InvalidValue("Choose a file to import.", code="F001")
        content = await upload.read(MAX_UPLOAD + 1)
        if len(content) > MAX_UPLOAD:
            raise InvalidValue(
                "The file is larger than 5 MB: split it, or ask IT to import it for you.",
                code="F001",
            )
        choice = _choice(form, upload.filename)
    except DomainError as error:
        return await _render_form(staff, status=400, error=error.message)
    return await _run_and_show(staff, content, choice, dry_run=True)


@staff_page
async def apply_import(staff: StaffRequest) -> Response:
    form = await staff.request.form()
    try:
        choice = wirejson.loads(str(form.get("choice") or "{}"))
        content = base64.b64decode(str(form.get("content") or ""), validate=True)
    except ValueError:
        return await _render_form(staff, status=400, error=DAMAGED)
    expected = _signature(staff, content, choice)
    if not hmac.compare_digest(expected, str(form.get("signature") or "")):
        return await _render_form(staff, status=400, error=DAMAGED)
    choice["skip_invalid"] = form.get("skip_invalid") == "1"
    choice["allow_shrink"] = form.get("allow_shrink") == "1"
    return await _run_and_show(staff, content, choice, dry_run=False)


@staff_page
async def status_code_legend(staff: StaffRequest) -> Response:
    """What each status code of an import report means (SPEC §10, issue 14 item 11)."""
    return page(staff.request, "import_codes.html", nav="import", codes=STATUS_CODES)


@staff_page
async def import_run(staff: StaffRequest) -> Response:
    run_id = staff.request.path_params["run_id"]

    def load(session: Session, actor: Actor) -> dict[str, Any]:
        own_import_scope(actor)
        run = visible_run(session, actor, run_id)
        if run is None:
            raise NotFound("No such import.")
        return run_as_dict(session, run, row_limit=ROW_LIMIT)

    report = await staff.work(load)
    return page(
        staff.request,
        "import_report.html",
        nav="import",
        report=report,
        code_filter=staff.request.query_params.get("code"),
    )


async def _run_and_show(
    staff: StaffRequest, content: bytes, choice: dict[str, Any], *, dry_run: bool
) -> Response:
    def prepare(session: Session, actor: Actor) -> tuple[str, list[str]]:
        chosen = [choice["school"]] if choice.get("school") else []
        school_ids = import_scope(actor, chosen) if chosen else own_import_scope(actor)
        connection = connections.file_import_connection(session, actor, choice["connection"])
        return connection.id, school_ids

    try:
        connection_id, school_ids = await staff.work(prepare)
        options = ImportOptions(
            mode=choice.get("mode") or None,
            school_ids=tuple(school_ids),
            dry_run=dry_run,
            skip_invalid=bool(choice.get("skip_invalid")),
            allow_shrink=bool(choice.get("allow_shrink")),
            limits=staff.context.settings.import_limits,
        )
        runner: ImportRunner = staff.request.app.state.imports
        job = ImportJob(
            staff.actor.tenant_id,
            connection_id,
            io.BytesIO(content),
            choice["filename"],
            options,
            staff.actor.name,
            staff.actor,
        )
        started = await run_in_threadpool(runner.submit, job)
        if not await runner.wait(started, staff.context.settings.import_wait_seconds):
            # still running (or the server is stopping): the stored run's page shows it
            runner.release(started)
            return RedirectResponse(f"/admin/import/{started.run_id}", status_code=303)
        report = started.future.result()
    except DomainError as error:
        return await _render_form(staff, status=error.status, error=error.message)
    if not dry_run and (report.ok or options.skip_invalid):
        report.close()  # written: show the stored run (POST/redirect/GET, issue 14 item 2)
        return RedirectResponse(f"/admin/import/{report.id}", status_code=303)
    try:
        shown = report.as_dict(row_limit=ROW_LIMIT)
    finally:
        report.close()
    carried = {}
    if dry_run:
        carried = {
            "content": base64.b64encode(content).decode(),
            "choice": json.dumps(choice),
            "signature": _signature(staff, content, choice),
        }
    return page(
        staff.request,
        "import_report.html",
        nav="import",
        report=shown,
        status_code=200 if report.ok else 422,
        carried=carried,
        code_filter=None,
    )


def _choice(form: Any, filename: str) -> dict[str, Any]:
    mode = str(form.get("mode") or "") or None
    if mode not in (None, "full", "delta"):
        raise InvalidValue("Choose full or delta.")
    return {
        "filename": filename,
        "mode": mode,
        "connection": str(form.get("connection") or "Manual"),
        "school": str(form.get("school") or "") or None,
    }


def _signature(staff: StaffRequest, content: bytes, choice: dict[str, Any]) -> str:
    fixed = {k: choice.get(k) for k in ("filename", "mode", "connection", "school")}
    message = content + json.dumps([staff.actor.tenant_id, staff.actor.id, fixed]).encode()
    return sign(staff.context.settings.secret_key, _PURPOSE, message)


EXPORTS = {
    "school-csv": ("text/csv; charset=utf-8", "students.csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "students.xlsx"),
    "oneroster-1.1": ("application/zip", "oneroster-1.1.zip"),
    "oneroster-1.2": ("application/zip", "oneroster-1.2.zip"),
}


@staff_page
async def export_download(staff: StaffRequest) -> Response:
    """Export for upload (school CSV, XLSX) or OneRoster CSV; passwords of ``issued``
    accounts are included and each reveal is audited by the export itself."""
    form = await staff.form()
    fmt = str(form.get("format") or "")
    if fmt not in EXPORTS:
        return await _render_form(staff, status=400, error="Choose an export format.")
    school = str(form.get("school") or "")

    def run(session: Session, actor: Actor) -> bytes:
        school_ids = [school] if school else own_import_scope(actor)  # export checks them
        with tempfile.TemporaryFile() as out:
            exports.export(session, actor, staff.context.box, fmt, out, school_ids=school_ids)
            out.seek(0)
            return out.read()

    try:
        data = await staff.work(run)
    except DomainError as error:
        return await _render_form(staff, status=error.status, error=error.message)
    media_type, filename = EXPORTS[fmt]
    return Response(
        data,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


class _TooLarge(Exception):
    pass


class UploadLimit:
    """The page's request body stops at ``maximum`` bytes while it streams in (F010, 413), so
    an upload larger than the page takes is never spooled whole (issue 11).

    Example: ``Route("/admin/import", UploadLimit(trial_run, MAX_FORM_BODY), methods=["POST"])``
    """

    def __init__(self, endpoint: Any, maximum: int) -> None:
        self.app = request_response(endpoint)
        self.maximum = maximum

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.maximum:
            await PlainTextResponse(TOO_LARGE, status_code=413)(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.maximum:
                raise _TooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except _TooLarge:
            if started:
                raise
            await PlainTextResponse(TOO_LARGE, status_code=413)(scope, receive, send)
