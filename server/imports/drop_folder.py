"""Drop folders: import each OneRoster zip a hub or SIS delivers by SFTP (SPEC §5, issue 10 #14).

A connection may watch a folder (``rollcall connection add|set NAME --drop-dir PATH``); the
SFTP server that fills it is the operating system's. The worker runs a ``drop_scan`` job per
watched connection (queued by :func:`enqueue_due_scans`, at most every ``SCAN_EVERY``), and the
scan imports each complete zip through the same engine as ``rollcall import``: trial run first,
refused when a row is invalid, the shrink guard, a stored report. Then it moves the zip to
``done/`` (applied) or ``failed/`` (anything else, with ``NAME.txt`` beside it saying why),
as SchoolMint Hero's daily SFTP sync does.

**Complete** means: a ``*.zip`` (not a dot-file, not ``.part``/``.tmp``, so an uploader that
writes under another name and renames is never read half-written) whose size and modification
time have not changed for ``settle`` seconds (``ROLLCALL_DROP_SETTLE_SECONDS``, default 60), so
a file still being written in place is left for a later scan.

Example::

    outcomes = scan_folder(context, tenant_id, "SIS drop", settle=60)
    # [("roster.zip", "done", "Applied: 3 created, ...")]
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.context import AppContext
from server.db import Job, utcnow
from server.domain import jobs
from server.domain.connections import get_connection
from server.domain.import_runs import RunStatus
from server.domain.sources import drop_dir_of, lock_for_scheduling, watched_connections
from server.errors import DomainError, Interrupted
from server.imports.engine import ImportOptions, run_import
from server.shutdown import Shutdown

log = logging.getLogger("rollcall.drop")

SCAN_JOB = "drop_scan"
SCAN_EVERY = timedelta(seconds=30)
DONE, FAILED = "done", "failed"


def complete_zips(folder: Path, settle: float, now: float | None = None) -> list[Path]:
    """The zips in ``folder`` that are whole: named ``*.zip`` and unchanged for ``settle`` s."""
    now = time.time() if now is None else now
    found = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.suffix.lower() != ".zip":
            continue
        if now - path.stat().st_mtime >= settle:
            found.append(path)
    return found


def scan_folder(
    context: AppContext,
    tenant_id: str,
    connection_name: str,
    *,
    settle: float,
    check: Callable[[int], None] | None = None,
) -> list[tuple[str, str, str]]:
    """Import every complete zip of the connection's drop folder; returns (file, where, summary).

    ``check`` is called between batches (a shutdown): an import it stops is rolled back and
    recorded as interrupted, and its file stays in the folder for the next scan.

    :raises NotFound: no such connection. :raises Interrupted: a shutdown stopped the scan.
    """
    with context.database.session() as session:
        folder = drop_dir_of(get_connection(session, tenant_id, connection_name))
    if folder is None or not folder.is_dir():
        return []
    outcomes = []
    for path in complete_zips(folder, settle):
        where, summary = _import_one(context, tenant_id, connection_name, path, check)
        outcomes.append((path.name, where, summary))
    return outcomes


def _import_one(
    context: AppContext,
    tenant_id: str,
    connection_name: str,
    path: Path,
    check: Callable[[int], None] | None,
) -> tuple[str, str]:
    try:
        report = run_import(
            context.database, context.box, tenant_id, connection_name, path,
            ImportOptions(limits=context.settings.import_limits),
            filename=path.name, actor_name="drop folder", progress=check,
        )  # fmt: skip
    except DomainError as error:  # the file could not even be opened as an import
        where, summary = FAILED, f"Refused, nothing written: {error.message}"
    else:
        try:
            if report.status == RunStatus.INTERRUPTED:  # stored; the file waits for next time
                raise Interrupted()
            applied = report.status == RunStatus.APPLIED
            where, summary = (DONE if applied else FAILED), report.summary
        finally:
            report.close()
    target = _move(path, where)
    if where == FAILED:
        target.with_suffix(".txt").write_text(summary + "\n", encoding="utf-8")
    log.info("drop folder import", extra={"file": path.name, "outcome": where})
    return where, summary


def _move(path: Path, where: str) -> Path:
    """Move ``path`` into ``where/`` beside it, stamped so a daily file never overwrites."""
    folder = path.parent / where
    folder.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"{stamp}-{path.name}"
    shutil.move(str(path), target)
    return target


# --- the worker -----------------------------------------------------------------------------


def scan_runner(context: AppContext, stop: Shutdown | None = None) -> jobs.Standalone:
    """The job runner for ``drop_scan``: scans the folder of the connection in the payload;
    ``stop`` interrupts it (a shutdown: the job is queued again)."""

    def run(payload: dict[str, Any]) -> None:
        scan_folder(
            context,
            payload["tenant_id"],
            payload["connection"],
            settle=context.settings.drop_settle_seconds,
            check=stop.check if stop else None,
        )

    return jobs.Standalone(run)


def enqueue_due_scans(session: Session, settle: float, now: datetime | None = None) -> int:
    """Queue a scan for every watched connection whose folder holds a complete zip, unless one
    is pending or ran in the last ``SCAN_EVERY``; returns how many were queued (the job table is
    the lock, and an idle folder adds no job rows)."""
    now = now or utcnow()
    queued = 0
    for connection in watched_connections(session):
        folder = drop_dir_of(connection)
        if folder is None or not folder.is_dir() or not complete_zips(folder, settle):
            continue
        if not lock_for_scheduling(session, connection.id):
            continue
        recent = session.scalars(
            select(Job.id).where(
                Job.kind == SCAN_JOB,
                Job.tenant_id == connection.tenant_id,
                Job.payload["connection_id"].as_string() == connection.id,
                (Job.status.in_(("queued", "running"))) | (Job.finished_at > now - SCAN_EVERY),
            )
        ).first()
        if recent is not None:
            continue
        jobs.enqueue_for_connection(session, SCAN_JOB, connection)
        queued += 1
    return queued
