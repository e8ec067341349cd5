"""A file identical to one a proven run applied is not read row by row (issue 15: in the 1%
delta only ``users.csv`` changed; ``enrollments.csv``, 90% of the rows, is as it was).

**What a file's rows depend on.** A row of a file whose rows have stored hashes (orgs,
sessions, courses, classes, users, enrollments) is reported unchanged when its cells, the
record it writes (its ``version`` seals the hash) and the ids of the records it names
(:func:`server.imports.oneroster_csv.lookups.sighted_unchanged`: a user not deleted that the
connection owns, a class not deleted, any org, session or course) are as they were; the
options and the connection's and tenant's settings are in the file's fingerprint
(:mod:`server.domain.package_runs`). A full import's file also decides what is deactivated:
the connection's active records of its kind in scope that it does not list.

**When a file is left unread.** The read-ahead found a run proven at the roster state of its
snapshot whose file has the same fingerprint (:func:`server.imports.snapshot.read_ahead`):
then, at that state, every row of the file matched its stored hash, and every active record of
its kind in scope was listed (a clean run deactivated nothing). When the file's turn comes in
the write transaction (:func:`holds`):

- the state the transaction started at is that of the snapshot (nothing written in between);
- this run wrote none of the file's own tables so far (:func:`tracking`): its records are as
  proven;
- every record this run applied so far (``ctx.touched``, the same keys after which reading row
  by row looks at a row again) may still be named with the id it had: a user is not deleted
  and is the connection's, a class is not deleted, an org, session or course still exists (a
  sourcedId names one record of a kind per tenant, and an update keeps its id; a record
  created now was not named by a proven row).

Then reading the file row by row would report each row unchanged, which is what is reported
(:func:`listed`): the proven run's stored rows of the file, stored as one row that stands for
them (:meth:`~server.domain.import_runs.Report.add_copied`) when they are what reading it
gives, else its keys listed. Otherwise the file is read in the write phase: its rows compared
with the stored hashes there, batch by batch, those that differ translated and applied
(``Step.sighted_now``).
A full import's deactivation of a file left unread finds nothing missing while this run has
written none of the file's own tables; else the file's keys are claimed then, as reading it
would have, and the records it does not list are deactivated as usual (:func:`missing`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event, false, func, or_, select

from server.db import (
    AcademicSession,
    Course,
    ImportRun,
    Org,
    RecordStatus,
    SchoolClass,
    User,
)
from server.db.replay import WRITE_STATEMENT
from server.imports.batches import BATCH_SIZE
from server.imports.contract import ImportContext, Progress, Step

# The files whose rows have stored hashes, with the tables that hold their records (and what
# a full import's scope reads of them)
OWN_TABLES: dict[str, frozenset[str]] = {
    "orgs.csv": frozenset({"orgs"}),
    "academicSessions.csv": frozenset({"academic_sessions"}),
    "courses.csv": frozenset({"courses"}),
    "classes.csv": frozenset({"classes", "class_terms"}),
    "users.csv": frozenset({"users", "user_roles", "user_grades"}),
    "enrollments.csv": frozenset({"enrollments"}),
}
SKIPPABLE = frozenset(OWN_TABLES)
_WRITTEN = "rollcall_import_written"  # the tables the run's transaction wrote so far
_KEYS_PER_CLAIM = 5000


@event.listens_for(Engine, "after_cursor_execute")
def _note_write(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
) -> None:
    """While :func:`tracking`, note the table each writing statement names."""
    written = conn.info.get(_WRITTEN)
    if written is None:
        return
    found = WRITE_STATEMENT.match(statement)
    if found is not None:
        written.add(found.group(1).lower())


@contextmanager
def tracking(ctx: ImportContext) -> Iterator[None]:
    """Note the tables the write phase writes (a savepoint rolled back still counts)."""
    info = ctx.session.connection().info
    info[_WRITTEN] = set()
    try:
        yield
    finally:
        info.pop(_WRITTEN, None)


def wrote_any(ctx: ImportContext, tables: frozenset[str]) -> bool:
    """Whether this run wrote one of ``tables`` so far (True when not tracking)."""
    written = ctx.session.connection().info.get(_WRITTEN)
    return written is None or not written.isdisjoint(tables)


def holds(ctx: ImportContext, name: str, proven: frozenset[str]) -> bool:
    """Whether file ``name``, applied as it is by a proven run, may be reported unchanged
    without reading its rows, now that its turn has come (see the module docstring)."""
    if name not in proven or not ctx.snapshot_holds:
        return False
    return not wrote_any(ctx, OWN_TABLES[name]) and _names_hold(ctx)


def _names_hold(ctx: ImportContext) -> bool:
    """Whether every record this run applied so far may still be named by its sourcedId with
    the id it had (see the module docstring)."""
    if not ctx.touched:
        return True
    keys = sorted(set().union(*ctx.touched.values()))
    for start in range(0, len(keys), 900):
        chunk = keys[start : start + 900]
        owner = User.connection_id.is_distinct_from(ctx.connection.id)
        if _any(ctx, User, chunk, or_(User.status == RecordStatus.DELETED, owner)):
            return False
        if _any(ctx, SchoolClass, chunk, SchoolClass.status == RecordStatus.DELETED):
            return False
    for kind, model in (("org", Org), ("academic_session", AcademicSession), ("course", Course)):
        named = sorted(ctx.touched.get(kind, ()))
        for start in range(0, len(named), 900):
            chunk = named[start : start + 900]
            if _count(ctx, model, chunk) != len(chunk):
                return False
    return True


def _any(ctx: ImportContext, model: Any, keys: list[str], condition: Any) -> bool:
    query = select(model.id).where(
        model.tenant_id == ctx.tenant_id, model.sourced_id.in_(keys), condition
    )
    return ctx.session.scalar(query.limit(1)) is not None


def _count(ctx: ImportContext, model: Any, keys: list[str]) -> int:
    query = select(func.count()).where(model.tenant_id == ctx.tenant_id, model.sourced_id.in_(keys))
    return ctx.session.scalar(query) or 0


def listed(ctx: ImportContext, step: Step, progress: Progress | None, done: int) -> int:
    """Report each row of the file of ``step`` unchanged (as reading it row by row would: one
    row per file row, SPEC §5); returns the rows done so far."""
    assert step.listed is not None
    done = unchanged(ctx, step.file, step.listed, step.copied, progress, done)
    ctx.unread.add(step.file)
    return done


def unchanged(
    ctx: ImportContext,
    name: str,
    keys: Callable[[], Iterator[tuple[int, str]]],
    copied: tuple[str, int] | None,
    progress: Progress | None,
    done: int,
) -> int:
    """Report each row of file ``name`` unchanged; returns the rows done so far. Rows a run
    stored as reading them gives (``copied``: the run and how many) are reported as its rows
    (one stored row stands for them), not listed from the file one by one (issue 15)."""
    report = ctx.report
    if copied is not None and _kept(ctx, copied[0]):
        report.add_copied(name, *copied)
        done += copied[1]
        if progress is not None:
            progress(done)
        return done
    for number, key in keys():
        report.add_unchanged(name, number, key)
        done += 1
        if progress is not None and done % BATCH_SIZE == 0:
            progress(done)
    return done


def _kept(ctx: ImportContext, run_id: str) -> bool:
    """Whether run ``run_id`` is still stored (retention may have deleted it since the
    read-ahead); looked at once per run."""
    kept = ctx.cache.setdefault("kept_runs", {})
    if run_id not in kept:
        found = select(ImportRun.id).where(ImportRun.id == run_id)
        kept[run_id] = ctx.session.scalar(found) is not None
    return bool(kept[run_id])


def missing(
    name: str,
    model: Any,
    kind: str,
    query: Callable[[ImportContext], Any],
    keys: Callable[[], Iterator[tuple[int, str]]],
) -> Callable[[ImportContext], Any]:
    """``query`` (the records of file ``name`` a full import deactivates) for a file left
    unread: nothing while this run wrote none of its own tables, else ``query`` after the
    file's keys are claimed as reading it would have (see the module docstring)."""

    def select_missing(ctx: ImportContext) -> Any:
        if name not in ctx.unread:
            return query(ctx)
        if not wrote_any(ctx, OWN_TABLES[name]):
            return select(model).where(false())
        if name not in ctx.claimed_unread:
            _claim(ctx, kind, keys())
            ctx.claimed_unread.add(name)
        return query(ctx)

    return select_missing


def _claim(ctx: ImportContext, kind: str, keys: Iterator[tuple[int, str]]) -> None:
    batch: list[str] = []
    for _, key in keys:
        if key:
            batch.append(key)
        if len(batch) >= _KEYS_PER_CLAIM:
            ctx.claim(kind, batch)
            batch = []
    ctx.claim(kind, batch)
