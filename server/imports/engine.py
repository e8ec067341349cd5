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
  its SPEC §10 code; the other rows go on.
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
  in scope, unless ``allow_shrink``. Delta imports change only what they list.

Example::

    report = run_import(database, box, tenant_id, "Clever", Path("clever.zip"),
                        ImportOptions(dry_run=True))
    report.status            # "valid" / "invalid" for a trial run
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import IO, Any, NoReturn

from sqlalchemy import func, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from server.db import Connection, utcnow
from server.db.long_writes import long_write
from server.db.session import Database
from server.domain import package_runs, sync_hashes
from server.domain.actors import Actor, connection_actor, on_behalf_of
from server.domain.connections import get_connection
from server.domain.import_records import (
    FileProblem,
    ImportRecord,
    Outcome,
    RowProblem,
    RowResult,
    Sighted,
)
from server.domain.import_runs import Report, RunStatus, record_applied, store_report
from server.domain.roster_state import roster_state
from server.domain.schools import resolve_school_ids
from server.domain.secrets import SecretBox
from server.domain.tenants import tenant_setting
from server.errors import DomainError, Interrupted
from server.imports import prepared
from server.imports.contract import (
    MODES,
    SEEN,
    Deactivation,
    ImportContext,
    ImportOptions,
    ImportRefused,
    ImportSource,
    Progress,
    Step,
)
from server.imports.formats import open_source
from server.imports.snapshot import fingerprint, read_ahead

__all__ = [
    "ImportOptions",
    "ImportRefused",
    "import_source",
    "open_source",
    "run_import",
]

log = logging.getLogger("rollcall.imports")

BATCH_SIZE = 500
# Caches handlers add to while writing (sourcedId -> id of what they created); restored when a
# batch savepoint is rolled back. Others (the 1.2 roles gathered per user) are only read then.
# Outcomes that change a record, which rows of later files naming it must look at again
CHANGES = frozenset((Outcome.CREATED, Outcome.UPDATED, Outcome.REACTIVATED, Outcome.DEACTIVATED))
SMALL_CACHES = ("orgs", "academic_sessions", "courses", "classes", "profile_holders")


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
    committed = False
    try:
        committed = prepared.write(database, job.write, brief=same_as is not None, rows=left)
    except (_Rollback, _FileFailed):
        pass
    except Interrupted as stop:
        if job.report is None:
            raise
        _interrupted(job.report, stop.reason)
    report = job.report
    assert report is not None
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
            package_runs.remember(session, tenant_id, report.id, printed_now, start)


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
    done = 0
    try:
        for step in source.steps(ctx):
            for batch in _batches(step.records, BATCH_SIZE):
                _handle_batch(ctx, step, batch)
                done += len(batch)
                if progress is not None:
                    progress(done)
        if ctx.mode == "full":
            _deactivate_missing(ctx, source)
    except FileProblem as error:
        _file_failed(ctx, error)


def _run_identical(ctx: ImportContext, source: Any, progress: Progress | None) -> None:
    """The run of a package identical to one proven at the roster state of now
    (:mod:`server.domain.package_runs`): each row as it would be reported, unchanged (one
    report row per file row, SPEC §5), without translating, looking up or hashing it. A full
    import deactivates nothing: the proven run left nothing to deactivate."""
    done = 0
    try:
        for file, number, key in source.listed_rows():
            ctx.report.add_unchanged(file, number, key)
            done += 1
            if progress is not None and done % BATCH_SIZE == 0:
                progress(done)
    except FileProblem as error:
        _file_failed(ctx, error)
    if progress is not None:
        progress(done)
    if ctx.mode == "full":
        for plan in source.deactivations(ctx):
            if plan.counts_for_shrink and plan.count_active is not None:
                _shrink(ctx, 0, plan.count_active(ctx))


def _file_failed(ctx: ImportContext, error: FileProblem) -> NoReturn:
    ctx.report.fail(error.code, error.message, error.file)
    ctx.report.status = RunStatus.FAILED
    ctx.report.summary = error.message
    ctx.report.finished_at = utcnow()
    raise _FileFailed from None


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _handle_batch(
    ctx: ImportContext, step: Step, batch: list[ImportRecord | RowResult | Sighted]
) -> None:
    """Handle a batch: first all its rows in one savepoint; if any row fails, roll the batch
    back and handle it again row by row, each in its own savepoint (same outcomes, fewer
    round trips in the usual case of a clean file)."""
    batch = _confirm_sighted(ctx, step, batch)
    if all(type(item) is Sighted for item in batch):
        _walk_sighted(ctx, step, batch)
        return
    records = [item for item in batch if isinstance(item, ImportRecord)]
    if not ctx.passwords:
        ctx.passwords = any(record.password for record in records)
    duplicates = _duplicates(ctx, step, [i for i in batch if not isinstance(i, RowResult)])
    if step.seen_kind is not None:
        # a row that could not be read is still listed: a full import must not deactivate it
        unreadable = {i.record_key for i in batch if isinstance(i, RowResult) and i.record_key}
        ctx.mark_seen(step.seen_kind, unreadable - ctx.seen_keys(step.seen_kind, [*unreadable]))
    ctx.batch = {}
    pending = [r for r in records if r.number not in duplicates]
    if step.prefetch is not None:
        step.prefetch(ctx, pending)
    # rows whose stored hash matches are reported unchanged without a handler or a savepoint
    skipped = ctx.batch.get("unchanged", set())
    applied = [r for r in pending if r.number not in skipped] if skipped else pending
    outcomes = _all_at_once(ctx, step, applied) if step.writes else None
    if outcomes is None:
        outcomes = {record.number: _one_by_one(ctx, step, record) for record in applied}
    for record in applied:
        if any(result.outcome in CHANGES for result in outcomes[record.number]):
            ctx.touched.setdefault(record.kind, set()).add(record.key)
    for item in batch:
        if isinstance(item, RowResult):
            ctx.report.add(item)
        elif item.number in duplicates:
            ctx.report.add(_duplicate(item))
        elif isinstance(item, Sighted) or item.number in skipped:
            if item.repairs:
                unchanged = RowResult(item.file, item.number, item.key, Outcome.UNCHANGED)
                ctx.report.add(_with_repairs(unchanged, item.repairs))
            else:
                ctx.report.add_unchanged(item.file, item.number, item.key)
        else:
            results = outcomes[item.number] or _repairs_only(item)
            for result in results:
                ctx.report.add(_with_repairs(result, item.repairs))
    ctx.session.flush()
    _remember_hashes(ctx)
    _empty_session(ctx)
    ctx.batch = {}


def _walk_sighted(ctx: ImportContext, step: Step, batch: list[Any]) -> None:
    """A batch of rows all confirmed unchanged (most of a nightly full package): their keys
    claimed in one statement, each reported unchanged; no prefetch, handler or savepoint."""
    duplicates = _duplicates(ctx, step, batch)
    report = ctx.report
    for item in batch:
        if item.number in duplicates:
            report.add(_duplicate(item))
        elif item.repairs:
            unchanged = RowResult(item.file, item.number, item.key, Outcome.UNCHANGED)
            report.add(_with_repairs(unchanged, item.repairs))
        else:
            report.add_unchanged(item.file, item.number, item.key)


def _duplicate(item: ImportRecord | Sighted) -> RowResult:
    return RowResult(
        item.file,
        item.number,
        item.key,
        Outcome.ERROR,
        "R103",
        f"{item.key!r} appears more than once in {item.file}.",
    )


def _confirm_sighted(
    ctx: ImportContext, step: Step, batch: list[Any]
) -> list[ImportRecord | RowResult | Sighted]:
    """Confirm, in the write transaction, the rows the read snapshot found unchanged (issue
    15). If the roster state at the start of the write transaction is what the snapshot saw,
    nothing was written in between (on SQLite no one else writes until this run ends; on
    PostgreSQL a write committed while the run writes is read as after it, as for any row
    already read at READ COMMITTED), so only rows naming a record this run changed are looked
    at again; otherwise every one. Those are compared with the stored hashes now
    (``step.recheck``), and those that differ are translated (``step.revive``) and applied."""
    sighted = [item for item in batch if type(item) is Sighted]
    if not sighted:
        return batch
    if ctx.snapshot_holds:
        touched = _touched_keys(ctx)
        doubtful = [s for s in sighted if touched and s.refs and _names_any(s, touched)]
    else:
        doubtful = sighted
    if not doubtful:
        return batch
    assert step.revive is not None
    still = step.recheck(ctx, doubtful) if step.recheck is not None else set()
    redo = {item.number for item in doubtful if item.number not in still}
    if not redo:
        return batch
    return [
        step.revive(ctx, item) if type(item) is Sighted and item.number in redo else item
        for item in batch
    ]


def _touched_keys(ctx: ImportContext) -> set[str]:
    """The keys of every record this run applied so far (rows of earlier files), any kind."""
    return set().union(*ctx.touched.values()) if ctx.touched else set()


def _names_any(row: Sighted, keys: set[str]) -> bool:
    """Whether the row names one of ``keys`` (a record this run applied)."""
    return not keys.isdisjoint(row.refs.split("\x1f"))


def _empty_session(ctx: ImportContext) -> None:
    """Forget the batch's objects (memory stays flat) but keep the importing connection: the
    session's identity map holds objects weakly, so without a strong reference every
    ``session.get`` of the owner would query it again (twice per created user)."""
    ctx.session.expunge_all()
    ctx.connection = ctx.session.merge(ctx.connection, load=False)


def _remember_hashes(ctx: ImportContext) -> None:
    """Store the hashes of the batch's written rows (one ``executemany`` per kind)."""
    by_model: dict[Any, list[tuple[str, str, int]]] = {}
    for model, written, row_digest in ctx.batch.get("synced", {}).values():
        by_model.setdefault(model, []).append((written.id, row_digest, written.version))
    for model, rows in by_model.items():
        sync_hashes.remember(ctx.session, model, rows)


def _repairs_only(record: ImportRecord) -> list[RowResult]:
    """A row applied through another (a 1.2 role) still reports its repairs."""
    if not record.repairs:
        return []
    return [RowResult(record.file, record.number, record.key, Outcome.UNCHANGED)]


def _with_repairs(result: RowResult, repairs: list[str]) -> RowResult:
    """Report what lenient reading repaired on the row: W203, unless it has a code already."""
    if not repairs or result.outcome == Outcome.ERROR:
        return result
    text = "; ".join(repairs)
    if result.code is None:
        return replace(result, code="W203", message=text)
    return replace(result, message=f"{result.message} {text}." if result.message else text)


def _all_at_once(
    ctx: ImportContext, step: Step, records: list[ImportRecord]
) -> dict[int, list[RowResult]] | None:
    """Every row in one savepoint, or None (rolled back, caches restored) if one fails."""
    if len(records) < 2:
        return None
    saved = {key: dict(value) for key, value in ctx.cache.items() if key in SMALL_CACHES}
    outcomes: dict[int, list[RowResult]] = {}
    try:
        with ctx.session.begin_nested():
            if step.handle_batch is not None:
                outcomes = step.handle_batch(ctx, records)
            else:
                for record in records:
                    results = step.handle(ctx, record)
                    outcomes[record.number] = results if isinstance(results, list) else [results]
    except (DomainError, RowProblem, DataError, IntegrityError):
        ctx.cache.update(saved)
        ctx.batch.pop("synced", None)
        return None
    return outcomes


def _one_by_one(ctx: ImportContext, step: Step, record: ImportRecord) -> list[RowResult]:
    results = _one(ctx, step, record)
    if any(result.outcome == Outcome.ERROR for result in results):
        ctx.batch.get("synced", {}).pop(record.number, None)
    return results


def _one(ctx: ImportContext, step: Step, record: ImportRecord) -> list[RowResult]:
    try:
        if step.writes:
            with ctx.session.begin_nested():
                results = step.handle(ctx, record)
        else:
            results = step.handle(ctx, record)
    except (DomainError, RowProblem) as error:
        results = RowResult(
            record.file,
            record.number,
            record.key,
            Outcome.ERROR,
            error.code or "R102",
            error.message,
        )
    except DataError:
        # the database refused a value the rules let through (e.g. longer than its column)
        results = RowResult(
            record.file,
            record.number,
            record.key,
            Outcome.ERROR,
            "R102",
            "A value is too long or malformed for the database.",
        )
    except IntegrityError:
        results = RowResult(
            record.file,
            record.number,
            record.key,
            Outcome.ERROR,
            "R103",
            "The row conflicts with an existing record (a key that must be unique).",
        )
    return results if isinstance(results, list) else [results]


def _duplicates(ctx: ImportContext, step: Step, records: list[ImportRecord | Sighted]) -> set[int]:
    """Row numbers whose key an earlier row of the file already had (R103); marks the rest."""
    if step.seen_kind is None:
        return set()
    keyed = [r for r in records if r.key]
    fresh = ctx.claim(step.seen_kind, [r.key for r in keyed])
    if len(fresh) == len(keyed):
        return set()  # every key new and none twice in the batch
    duplicates: set[int] = set()
    for record in keyed:
        if record.key in fresh:
            fresh.discard(record.key)  # the first row with the key claims it
        else:
            duplicates.add(record.number)
    return duplicates


def _deactivate_missing(ctx: ImportContext, source: Any) -> None:
    plans = list(source.deactivations(ctx))
    for plan in plans:
        if not plan.counts_for_shrink or plan.count_active is None:
            continue
        missing = ctx.session.scalar(
            select(func.count()).select_from(plan.select_missing(ctx).subquery())
        )
        _shrink(ctx, missing or 0, plan.count_active(ctx))
        _empty_session(ctx)
    for plan in plans:
        query = plan.select_missing(ctx)
        model = query.column_descriptions[0]["entity"]
        ids = list(ctx.session.scalars(query.with_only_columns(model.id)))
        for start in range(0, len(ids), BATCH_SIZE):
            chunk = ids[start : start + BATCH_SIZE]
            records = list(ctx.session.scalars(select(model).where(model.id.in_(chunk))))
            if not _deactivate_all(ctx, plan, records):
                for record in records:
                    _deactivate_one(ctx, plan, record)
            ctx.session.flush()
            _empty_session(ctx)


def _shrink(ctx: ImportContext, missing: int, active: int) -> bool:
    """Report what the shrink guard found; whether it trips."""
    threshold = ctx.options.shrink_threshold
    if threshold is None:
        threshold = float(tenant_setting(ctx.session, ctx.tenant_id, "shrink_threshold"))
    tripped = active > 0 and missing > threshold * active
    ctx.report.shrink = {
        "would_deactivate": missing,
        "active_in_scope": active,
        "threshold": threshold,
        "tripped": tripped,
        "allowed": ctx.options.allow_shrink,
    }
    return tripped


def _deactivate_all(ctx: ImportContext, plan: Deactivation, records: list[Any]) -> bool:
    """Deactivate a chunk in one savepoint (``plan.deactivate_many``); False when the plan
    has no such operation or a record failed (rolled back: the caller goes one by one)."""
    if plan.deactivate_many is None or len(records) < 2:
        return False
    try:
        with ctx.session.begin_nested():
            changed = plan.deactivate_many(ctx, records)
    except DomainError:
        return False
    for record, done in zip(records, changed, strict=True):
        if done:
            _report_deactivated(ctx, plan, record)
    return True


def _deactivate_one(ctx: ImportContext, plan: Deactivation, record: Any) -> None:
    key = plan.key(record)
    try:
        with ctx.session.begin_nested():
            changed = plan.deactivate(ctx, record)
    except DomainError as error:
        ctx.report.add(RowResult(plan.file, None, key, Outcome.ERROR, error.code, error.message))
        return
    if changed:
        _report_deactivated(ctx, plan, record)


def _report_deactivated(ctx: ImportContext, plan: Deactivation, record: Any) -> None:
    ctx.report.add(
        RowResult(
            plan.file,
            None,
            plan.key(record),
            Outcome.DEACTIVATED,
            "W201",
            f"Not in this full import: the {plan.kind} is deactivated.",
            {"status": ["active", "inactive"]},
        )
    )


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
