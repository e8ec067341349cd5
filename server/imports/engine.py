"""The import engine (SPEC §5): trial run and apply on one code path, atomic, streaming.

An import is owned by a connection and scoped to its tenant and optionally to schools. It
runs every row through the domain services as the connection, so the SSO guard, ownership
(R109), the password policy and the audit log apply exactly as on every other surface.

- **One transaction.** The whole import is written in one database transaction. A trial run
  rolls it back at the end and keeps only the report; an apply commits it together with the
  report, or rolls it back when the file has errors (unless ``skip_invalid``) or the shrink
  guard trips. A killed process leaves the database as it was.
- **Short write lock on SQLite.** There the write phase is prepared on a private copy of the
  database and only its recorded writes are replayed in the write transaction, after checking
  nothing it read has changed since (else it is prepared again): other writers wait seconds,
  not minutes, and a trial run never takes the lock but to store its report
  (:mod:`server.imports.prepared`); a short write phase (sized by the read snapshot) runs
  directly. PostgreSQL locks only rows: the write phase runs there.
- **Savepoints per row.** A row that fails is rolled back to its savepoint and reported with
  its SPEC §10 code; the other rows go on (:mod:`server.imports.batches`).
- **Read first, then write.** Every file is read, checked and translated into a spool
  (:mod:`server.imports.read_ahead`) before the write phase begins: no write lock is held
  while the file is parsed.
- **Streaming.** Rows are read one by one and handled in batches: existing records are looked
  up in bulk per batch, the session is emptied after each batch, keys already seen go to a
  temporary table (for duplicate detection, R103, and for what a full import deactivates,
  W201), and row outcomes go to a spool file. Memory does not grow with the file.
- **Full vs delta.** A full import deactivates the connection's records in scope that the
  file does not list (W201); the shrink guard stops it when that would deactivate more than a
  threshold (tenant setting ``shrink_threshold``, default 20%) of the connection's active users
  in scope, unless ``allow_shrink`` (:mod:`server.imports.deactivations`). Delta imports
  change only what they list.

Example::

    report = run_import(database, box, tenant_id, "Clever", Path("clever.zip"),
                        ImportOptions(dry_run=True))
    report.status            # "valid" / "invalid" for a trial run
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

from sqlalchemy.orm import Session

from server.db import Connection, utcnow
from server.db.long_writes import long_write
from server.db.session import Database
from server.domain import package_runs
from server.domain.actors import Actor, connection_actor, on_behalf_of
from server.domain.connections import get_connection
from server.domain.import_records import FileProblem, Outcome
from server.domain.import_runs import (
    Report,
    RunStatus,
    copied_rows,
    record_applied,
    store_report,
)
from server.domain.roster_state import roster_state
from server.domain.schools import resolve_school_ids
from server.domain.secrets import SecretBox
from server.errors import Interrupted
from server.imports import batches, file_skips, prepared
from server.imports.contract import (
    MODES,
    SEEN,
    ImportContext,
    ImportOptions,
    ImportRefused,
    ImportSource,
    Progress,
)
from server.imports.deactivations import deactivate_missing, shrink
from server.imports.formats import open_source
from server.imports.snapshot import file_prints, fingerprint, read_ahead

__all__ = [
    "ImportOptions",
    "ImportRefused",
    "import_source",
    "open_source",
    "run_import",
]

log = logging.getLogger("rollcall.imports")


def run_import(
    database: Database,
    box: SecretBox,
    tenant_id: str,
    connection_name: str,
    path: str | Path | IO[bytes],
    options: ImportOptions,
    *,
    filename: str | None = None,
    actor_name: str | None = None,
    progress: Progress | None = None,
) -> Report:
    """Read a file and import it as ``connection_name``; returns the stored report."""
    with database.session(read_only=True) as session:
        connection = get_connection(session, tenant_id, connection_name)
        connection_id = connection.id
    source = open_source(path, filename=filename, lenient=options.lenient, limits=options.limits)
    try:
        return import_source(
            database,
            box,
            tenant_id,
            connection_id,
            source,
            options,
            actor_name=actor_name,
            progress=progress,
        )
    finally:
        source.close()


class _Rollback(Exception):
    pass


def _moved(database: Database, tenant_id: str, state: tuple[Any, ...] | None) -> bool:
    """Whether a write committed since the read-ahead saw the roster at ``state``: then the
    files (or the package) it left unread as proven are read in the write phase after all, so
    its size is not known from the rows read ahead, and a SQLite write phase is prepared on a
    copy rather than holding the write lock while it reads them."""
    with database.session(read_only=True) as session:
        return roster_state(session, tenant_id) != state


def import_source(
    database: Database,
    box: SecretBox,
    tenant_id: str,
    connection_id: str,
    source: ImportSource | Any,
    options: ImportOptions,
    *,
    actor_name: str | None = None,
    progress: Progress | None = None,
    person: Actor | None = None,
    run_id: str | None = None,
) -> Report:
    """Run one import of an opened source (see the module docstring for the guarantees).

    ``person``: the staff member who uploaded the file; the audit log names them.
    ``run_id`` names the run (a ``running`` row recorded by the caller is then completed).
    A ``progress`` callback that raises :class:`~server.errors.Interrupted` (a shutdown's
    :meth:`~server.shutdown.Shutdown.check`) rolls the run back; the report says
    ``interrupted``.
    """
    if options.mode is not None and options.mode not in MODES:
        raise ImportRefused(f"Unknown mode {options.mode!r}; expected full or delta.")
    # reading and translating the rows happens before the write transaction (issue 11 item 6)
    state, printed, same_as, left = read_ahead(
        database, box, tenant_id, connection_id, source, options, progress
    )
    job = _Job(box, tenant_id, connection_id, source, options, actor_name, progress, person, run_id)
    job.ahead = (state, printed, same_as)
    brief = same_as is not None
    if (brief or getattr(source, "proven", None)) and _moved(database, tenant_id, state):
        brief, left = False, None  # rows left unread are read in the write phase: not sized
    committed = False
    try:
        committed = prepared.write(database, job.write, brief=brief, rows=left)
    except (_Rollback, _FileFailed):
        pass
    except Interrupted as stop:
        if job.report is None:
            raise
        _interrupted(job.report, stop.reason)
    report = job.report
    assert report is not None
    report.reader = copied_rows(database)
    if not committed:
        with database.session() as store:
            store_report(
                store,
                report,
                tenant_id=tenant_id,
                connection_id=connection_id,
                actor_name=actor_name or report.connection_name,
            )
    log.info(
        "import",
        extra={
            "run_id": report.id,
            "status": report.status,
            "format": report.format,
            "rows": report.row_count,
        },
    )
    return report


@dataclass
class _Job:
    """What one run writes with: its inputs, what the read-ahead found, and its report."""

    box: SecretBox
    tenant_id: str
    connection_id: str
    source: Any
    options: ImportOptions
    actor_name: str | None
    progress: Progress | None
    person: Actor | None
    run_id: str | None
    ahead: tuple[tuple[Any, ...] | None, dict[str, Any] | None, str | None] = (None, None, None)
    report: Report | None = None

    def write(self, session: Session) -> None:
        """The write phase, in ``session``'s open transaction: returns when the run is to be
        committed; raises (:class:`_Rollback`, :class:`_FileFailed`,
        :class:`~server.errors.Interrupted`) when it is to be rolled back. It may run more
        than once (:mod:`server.imports.prepared`): each time with a new report."""
        if self.report is not None:
            self.report.close()
            self.report = None
        state, printed, same_as = self.ahead
        options, tenant_id = self.options, self.tenant_id
        connection = session.get(Connection, self.connection_id)
        if connection is None or connection.tenant_id != tenant_id:
            raise ImportRefused("No such connection.")
        actor = on_behalf_of(connection_actor(connection), self.person)
        school_ids = list(options.school_ids) or resolve_school_ids(
            session, tenant_id, list(options.school_sourced_ids)
        )
        source = self.source
        mode = options.mode or source.default_mode()
        report = self.report = Report(
            format=source.format,
            mode=mode,
            dry_run=options.dry_run,
            connection_name=connection.name,
            source_name=source.source_name,
        )
        if self.run_id is not None:
            report.id = self.run_id
        ctx = ImportContext(
            session=session,
            actor=actor,
            connection=connection,
            box=self.box,
            options=options,
            report=report,
            mode=mode,
            school_ids=school_ids or list(connection.school_ids or []),
            snapshot_state=state,
        )
        start = roster_state(session, tenant_id)
        # nothing was written since the read snapshot: what it found unchanged still is
        ctx.snapshot_holds = state is not None and start == state
        printed_now = fingerprint(connection, printed, options)
        if same_as is not None:  # still so, looked at again under the write lock?
            same_as = printed_now and package_runs.proven(
                session, tenant_id, self.connection_id, printed_now, start
            )
        if same_as is not None:
            _run_identical(ctx, source, self.progress)
        else:
            with long_write(session):  # the same cost per row at any size (issue 15)
                _run(ctx, source, self.progress)
            SEEN.drop(session.connection())
        for file, message in source.warnings:
            report.warn(file, message)
        _decide(report, options)
        if same_as is not None:
            report.summary = (
                f"{report.summary[:-1]}: the package is identical to that of run {same_as} "
                "and nothing has changed since."
            )
        report.finished_at = utcnow()
        if report.status != RunStatus.APPLIED:
            raise _Rollback
        record_applied(
            session, actor, report, self.connection_id, self.actor_name or connection.name
        )
        if printed_now is not None and package_runs.clean(report) and not ctx.passwords:
            files = file_prints(connection, printed, options)
            rows = report.plain_files()
            package_runs.remember(session, tenant_id, report.id, printed_now, start, files, rows)


class _FileFailed(Exception):
    pass


def _interrupted(report: Report, reason: str) -> None:
    report.status = RunStatus.INTERRUPTED
    report.summary = (
        f"Interrupted after {report.row_count} rows by {reason}: nothing was written. "
        "Run the import again."
    )
    report.finished_at = utcnow()


def _run(ctx: ImportContext, source: Any, progress: Progress | None) -> None:
    SEEN.drop(ctx.session.connection(), checkfirst=True)
    SEEN.create(ctx.session.connection())
    try:
        with file_skips.tracking(ctx):
            _steps(ctx, source, progress)
    except FileProblem as error:
        _file_failed(ctx, error)


def _steps(ctx: ImportContext, source: Any, progress: Progress | None) -> None:
    """Every file's rows, a batch at a time, and a full import's deactivations."""
    done = 0
    for step in source.steps(ctx):
        if step.listed is not None:  # left unread: server/imports/file_skips.py
            done = file_skips.listed(ctx, step, progress, done)
            continue
        for batch in batches.work_batches(ctx, step.records):
            batches.handle_batch(ctx, step, batch)
            done += len(batch)
            if progress is not None:
                progress(done)
    if ctx.mode == "full":
        deactivate_missing(ctx, source)


def _run_identical(ctx: ImportContext, source: Any, progress: Progress | None) -> None:
    """The run of a package identical to one proven at the roster state of now
    (:mod:`server.domain.package_runs`): each row as it would be reported, unchanged (one
    report row per file row, SPEC §5), without translating, looking up or hashing it; a file
    whose rows the proven run stored as reading them gives is copied from them
    (:func:`server.imports.file_skips.unchanged`). A full import deactivates nothing: the
    proven run left nothing to deactivate."""
    done = 0
    copied = getattr(source, "copied", {})
    try:
        for file, keys in source.listed_files():
            done = file_skips.unchanged(ctx, file, keys, copied.get(file), progress, done)
    except FileProblem as error:
        _file_failed(ctx, error)
    if progress is not None:
        progress(done)
    if ctx.mode == "full":
        for plan in source.deactivations(ctx):
            if plan.counts_for_shrink and plan.count_active is not None:
                shrink(ctx, 0, plan.count_active(ctx))


def _file_failed(ctx: ImportContext, error: FileProblem) -> NoReturn:
    ctx.report.fail(error.code, error.message, error.file)
    ctx.report.status = RunStatus.FAILED
    ctx.report.summary = error.message
    ctx.report.finished_at = utcnow()
    raise _FileFailed from None


def _decide(report: Report, options: ImportOptions) -> None:
    """Set the run's status and summary from its outcomes and the options."""
    shrink_blocks = bool(report.shrink.get("tripped")) and not options.allow_shrink
    errors_block = report.errors > 0 and not options.skip_invalid
    parts = [f"{report.outcomes[name]} {name}" for name in Outcome.ALL if report.outcomes[name]]
    summary = ", ".join(parts) or "no rows"
    reasons = []
    if errors_block:
        reasons.append(f"{report.errors} row(s) have errors: fix them or skip the rows with errors")
    if shrink_blocks:
        shrink = report.shrink
        reasons.append(
            f"the shrink guard stopped it: it would deactivate {shrink['would_deactivate']} of "
            f"{shrink['active_in_scope']} active users in scope (more than "
            f"{shrink['threshold']:.0%}); allow deactivating that many to go ahead"
        )
    if options.dry_run:
        report.status = RunStatus.INVALID if reasons else RunStatus.VALID
        prefix = "Trial run, nothing written: "
    else:
        report.status = RunStatus.REFUSED if reasons else RunStatus.APPLIED
        prefix = "Refused, nothing written: " if reasons else "Applied: "
    report.summary = prefix + summary + ("." if not reasons else "; " + "; ".join(reasons) + ".")
