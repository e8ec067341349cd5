"""The write phase's rows, a batch at a time (SPEC §5, :mod:`server.imports.engine`).

A batch's rows are first handled all in one savepoint; if one fails, the batch is rolled back
and handled again row by row, each in its own savepoint, so a failing row is reported with
its SPEC §10 code and the others go on. Rows the read snapshot found unchanged (issue 15) are
confirmed here (:func:`handle_batch`); a batch of only such rows has its keys claimed in one
statement and is reported without a handler. Every row's key is claimed in the run's
temporary table (duplicates get R103; a full import deactivates what was not claimed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from itertools import islice
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError

from server.db import statistics
from server.domain import sync_hashes
from server.domain.import_records import ImportRecord, Outcome, RowProblem, RowResult, Sighted
from server.errors import DomainError
from server.imports.contract import ImportContext, Step

BATCH_SIZE = 500
# Rows a batch holds at most when most of them were found unchanged by the read snapshot
# (issue 15: a 1% delta at 100,000 users walked 200 batches of 5 changed rows each, paying each
# batch's reads, flush, savepoint and audit statement); still BATCH_SIZE rows to apply at most
WALKED_BATCH = 20 * BATCH_SIZE
# Caches handlers add to while writing (sourcedId -> id of what they created); restored when a
# batch savepoint is rolled back. Others (the 1.2 roles gathered per user) are only read then.
SMALL_CACHES = ("orgs", "academic_sessions", "courses", "classes", "profile_holders")
# Outcomes that change a record, which rows of later files naming it must look at again
CHANGES = frozenset((Outcome.CREATED, Outcome.UPDATED, Outcome.REACTIVATED, Outcome.DEACTIVATED))


def batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def work_batches(ctx: ImportContext, items: Iterable[Any]) -> Iterator[list[Any]]:
    """The write phase's batches of a file: :data:`BATCH_SIZE` rows each, or, while nothing
    was written since the read snapshot (``ctx.snapshot_holds``), up to :data:`WALKED_BATCH`
    rows of which at most :data:`BATCH_SIZE` are not rows it found unchanged (each batch's
    fixed cost is paid per rows to apply, not per rows walked)."""
    if not ctx.snapshot_holds:
        yield from batches(items, BATCH_SIZE)
        return
    batch: list[Any] = []
    applied = 0
    for item in items:
        batch.append(item)
        applied += type(item) is not Sighted
        if applied >= BATCH_SIZE or len(batch) >= WALKED_BATCH:
            yield batch
            batch, applied = [], 0
    if batch:
        yield batch


def _split(batch: list[Any]) -> list[list[Any]]:
    """``batch`` cut so that each part holds at most :data:`BATCH_SIZE` rows to apply."""
    parts: list[list[Any]] = [[]]
    applied = 0
    for item in batch:
        if type(item) is not Sighted:
            if applied == BATCH_SIZE:
                parts.append([])
                applied = 0
            applied += 1
        parts[-1].append(item)
    return parts


def handle_batch(
    ctx: ImportContext, step: Step, batch: list[ImportRecord | RowResult | Sighted]
) -> None:
    """Handle a batch: first all its rows in one savepoint; if any row fails, roll the batch
    back and handle it again row by row, each in its own savepoint (same outcomes, fewer
    round trips in the usual case of a clean file). Rows found unchanged by the read snapshot
    and found changed now make a batch of more than :data:`BATCH_SIZE` rows to apply: it is
    handled in parts of that many (:func:`work_batches`)."""
    batch = _confirm_sighted(ctx, step, batch)
    if sum(type(item) is not Sighted for item in batch) > BATCH_SIZE:
        for part in _split(batch):
            handle_batch(ctx, step, part)
        return
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
    if _created_any(outcomes):  # PostgreSQL plans the next batch's reads from the statistics
        statistics.refresh_stale(ctx.session)
    _remember_hashes(ctx)
    empty_session(ctx)
    ctx.batch = {}


def _created_any(outcomes: dict[int, list[RowResult]]) -> bool:
    """Whether a batch created records (only new rows grow a table past its statistics)."""
    return any(r.outcome is Outcome.CREATED for results in outcomes.values() for r in results)


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
    (``step.recheck``), and those that differ are translated (``step.revive``) and applied.
    Rows sighted in the write transaction itself (``step.sighted_now``) are confirmed."""
    sighted = [item for item in batch if type(item) is Sighted]
    if not sighted or step.sighted_now:
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


def empty_session(ctx: ImportContext) -> None:
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
