"""The report of an import or trial run: counts, warnings, the outcome of every row.

Rows are spooled to a temporary file as they come (memory stays flat however big the file),
then stored as :class:`~server.db.ImportRowResult` rows beside the :class:`~server.db.ImportRun`.

The rows of a file left unread because a proven run applied it as it is (issue 15,
:mod:`server.imports.file_skips`) are that run's rows of the file, each unchanged: the report
holds them as one item (:meth:`Report.add_copied`) and stores them as ONE row whose
``rows_of`` names the run whose stored rows of the file it stands for (:func:`plain_rows` says
when those are one row per file row, in order): at 100,000 users a million rows are not
written again. Such a row always names a run that stored the rows themselves (a chain of
identical packages is resolved when it is stored, :func:`_rows_run`).

Every reader of a run's rows goes through :func:`stored_rows`, which puts the rows a row
stands for in its place: the admin page, the admin and push APIs and the CLI
(:func:`run_as_dict`), the report a run hands back (:func:`copied_rows`) and subject access
(:func:`standing_for`). Erasure pseudonymises the rows where they are stored, so every run
that refers to them reads the alias, as a copy would have been. Retention deleting a run first
moves the rows other runs refer to into the newest of them (:func:`keep_referred_rows`).
"""

from __future__ import annotations

import json
import logging
import pickle
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum, nonmember
from itertools import islice
from typing import Any

from sqlalchemy import ColumnElement, func, insert, or_, select, update
from sqlalchemy.orm import Session

from server import metrics
from server.db import Connection, ImportRowResult, ImportRun, new_id, utcnow
from server.db.bulk_insert import insert_rows
from server.db.session import Database
from server.domain import audit, leases
from server.domain.actors import Actor
from server.domain.import_records import Outcome, RowResult

STORE_BATCH = 2000
READ_PAGE = 2000  # stored rows read per statement
SPOOL_CHUNK = 1000  # report rows pickled together
RUN_KEYS = 10_000  # SQLite: unchanged rows stored by one statement at most
# A spooled row outcome: the keys of RowResult.as_dict, in this order
ROW_FIELDS = ("file", "row", "key", "outcome", "code", "message", "changes")
_Row = tuple[str | None, int | None, str | None, str, str | None, str | None, dict[str, Any]]
# Rows found unchanged with consecutive numbers in one file, spooled as one item (a nightly
# full package is mostly such rows): (file, first row number, their keys in order)
_Run = tuple[str, int, list[str]]


@dataclass(frozen=True)
class _Copied:
    """The rows of ``file`` as run ``run_id`` stored them (``rows`` of them), each unchanged."""

    file: str
    run_id: str
    rows: int


_Item = _Row | _Run | _Copied
# Reads (row number, key) of run ``run_id``'s rows of ``file`` in order (set by the engine)
# (and how many there are)
RowReader = Callable[[str, str, int], Iterator[tuple[int | None, str | None]]]
# SQLite: the keys of a run of unchanged rows go in as one JSON parameter per statement
_UNCHANGED_SQLITE = (
    "INSERT INTO import_row_results "
    "(run_id, file, row_number, record_key, outcome, code, message, changes) "
    "SELECT ?, ?, ? + k.key, nullif(substr(k.value, 1, 255), ''), 'unchanged', NULL, NULL, '{}' "
    "FROM json_each(?) AS k ORDER BY k.key"
)
log = logging.getLogger("rollcall.imports")


class RunStatus(StrEnum):
    APPLIED = "applied"  # written
    VALID = "valid"  # trial run: would apply
    INVALID = "invalid"  # trial run: would be refused
    REFUSED = "refused"  # apply refused (row errors without skip-invalid, or the shrink guard)
    FAILED = "failed"  # the file itself cannot be read (F001-F003)
    RUNNING = "running"  # started over HTTP, not finished yet
    INTERRUPTED = "interrupted"  # stopped by a shutdown after its grace period: rolled back

    OK = nonmember((APPLIED, VALID))


@dataclass
class Report:
    """What an import did or, in a trial run, would do."""

    format: str
    mode: str
    dry_run: bool
    connection_name: str
    source_name: str | None = None
    id: str = field(default_factory=new_id)
    status: str = "running"
    outcomes: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    warnings: list[dict[str, str]] = field(default_factory=list)
    file_errors: list[dict[str, str | None]] = field(default_factory=list)
    shrink: dict[str, Any] = field(default_factory=dict)
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    summary: str = ""

    def __post_init__(self) -> None:
        self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._chunks = 0
        self._pending: list[_Item] = []
        self._held = 0  # rows in _pending
        self.row_count = 0
        # files with a row reported with a code or a message (server/domain/package_runs.py)
        self.noted_files: set[str | None] = set()
        self.reader: RowReader | None = None  # reads the rows of :meth:`add_copied`
        # per file: [rows, number of the last row (None: unknown), stored as reading gives]
        self._files: dict[str | None, list[Any]] = {}
        self._file: str | None = None  # the file of the last row

    def add(self, result: RowResult) -> None:
        """Count the row's outcome and spool it (memory stays flat however many rows)."""
        self.outcomes[result.outcome] += 1
        if result.code:
            self.codes[result.code] += 1
        if result.code or result.message:
            self.noted_files.add(result.file)
        plain = not (result.code or result.message)
        self._note(result.file, result.row_number, plain and result.row_number is not None)
        self.row_count += 1
        changes = result.changes
        if changes:  # what the JSON column stores: dates and the like as text
            changes = json.loads(json.dumps(changes, default=str))
        self._pending.append(
            (
                result.file,
                result.row_number,
                result.record_key,
                str(result.outcome),
                result.code,
                result.message,
                changes or {},
            )
        )
        self._held += 1
        if self._held >= SPOOL_CHUNK:
            self._dump()

    def add_unchanged(self, file: str, number: int, key: str) -> None:
        """:meth:`add` of a row found unchanged (no code, message or changes): a nightly sync
        reports thousands of them, so no :class:`RowResult` is built for each, and rows that
        follow each other in a file are held as one run of keys (stored in one statement)."""
        self.outcomes[Outcome.UNCHANGED] += 1
        self.row_count += 1
        self._note(file, number, number is not None)
        last = self._pending[-1] if self._pending else None
        if number is None or not key:
            self._pending.append((file, number, key, "unchanged", None, None, {}))
        elif isinstance(last, tuple) and len(last) == 3 and _follows(last, file, number):
            last[2].append(key)
        else:
            self._pending.append((file, number, [key]))
        self._held += 1
        if self._held >= SPOOL_CHUNK:
            self._dump()

    def add_copied(self, file: str, run_id: str, rows: int) -> None:
        """:meth:`add_unchanged` of every row of ``file``, which run ``run_id`` stored as
        :func:`plain_rows` ``rows`` (a file left unread, identical to the one it applied):
        stored as one row that stands for that run's rows, not listed one by one."""
        self.outcomes[Outcome.UNCHANGED] += rows
        self.row_count += rows
        self._note(file, None, file not in self._files, rows)
        self._pending.append(_Copied(file, run_id, rows))
        self._held += 1
        if self._held >= SPOOL_CHUNK:
            self._dump()

    def _note(self, file: str | None, number: int | None, plain: bool, rows: int = 1) -> None:
        """Count a row (or ``rows`` copied ones, ``number`` None) of ``file``, and whether the
        file's rows are still stored as reading it reports them: one row per file row, in
        order, numbered one after another, together, without code or message."""
        noted = self._files.get(file)
        if noted is None:
            self._files[file] = [rows, number, plain]
        else:
            follows = number is not None and noted[1] is not None and number == noted[1] + 1
            noted[0] += rows
            noted[1] = number
            noted[2] = noted[2] and plain and follows and self._file == file
        self._file = file

    def plain_files(self) -> dict[str, int]:
        """The files whose rows this report stores as reading them reports them (see
        :meth:`_note`), with how many: a later run may copy them (:func:`plain_rows`)."""
        return {f: n[0] for f, n in self._files.items() if f is not None and n[2]}

    def _dump(self) -> None:
        self._spool.seek(0, 2)
        pickle.dump(self._pending, self._spool, protocol=pickle.HIGHEST_PROTOCOL)
        self._chunks += 1
        self._pending = []
        self._held = 0

    def _items(self) -> Iterator[_Item]:
        """Every spooled item (a row outcome or a run of unchanged rows), in order."""
        position, chunks, pending = 0, self._chunks, list(self._pending)
        for _ in range(chunks):
            self._spool.seek(position)  # rows may be added between two reads
            chunk = pickle.load(self._spool)  # our own temporary file
            position = self._spool.tell()
            yield from chunk
        yield from pending

    def _rows(self) -> Iterator[_Row]:
        """Every row outcome as a tuple (:data:`ROW_FIELDS`), in the order they happened."""
        for item in self._items():
            if isinstance(item, _Copied):
                yield from self._copied_rows(item)
            elif len(item) == 3:
                yield from _run_rows(item)
            else:
                yield item

    def _copied_rows(self, item: _Copied) -> Iterator[_Row]:
        if self.reader is None:
            raise RuntimeError("a report with copied rows needs a reader to list them")
        for number, key in self.reader(item.run_id, item.file, item.rows):
            yield (item.file, number, key, "unchanged", None, None, {})

    def warn(self, file: str | None, message: str) -> None:
        self.warnings.append({"file": file or "", "message": message})

    def fail(self, code: str, message: str, file: str | None) -> None:
        self.file_errors.append({"code": code, "message": message, "file": file})
        self.add(RowResult(file, None, None, Outcome.ERROR, code, message))

    @property
    def errors(self) -> int:
        return self.outcomes[Outcome.ERROR]

    @property
    def ok(self) -> bool:
        return self.status in RunStatus.OK

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row outcome, in the order they happened (read back from the spool)."""
        for row in self._rows():
            yield dict(zip(ROW_FIELDS, row, strict=True))

    def counts(self) -> dict[str, Any]:
        return {
            "outcomes": {name: self.outcomes[name] for name in Outcome.ALL if self.outcomes[name]},
            "codes": dict(sorted(self.codes.items())),
            "rows": self.row_count,
            "warnings": self.warnings,
            "file_errors": self.file_errors,
            "shrink": self.shrink,
        }

    def as_dict(self, *, row_limit: int | None = None) -> dict[str, Any]:
        rows = []
        for number, row in enumerate(self.rows()):
            if row_limit is not None and number >= row_limit:
                break
            rows.append(row)
        return {
            "id": self.id,
            "status": self.status,
            "format": self.format,
            "mode": self.mode,
            "dry_run": self.dry_run,
            "connection": self.connection_name,
            "source": self.source_name,
            "summary": self.summary,
            **self.counts(),
            "rows_truncated": row_limit is not None and self.row_count > row_limit,
            "row_results": rows,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }

    def close(self) -> None:
        self._spool.close()


def store_report(
    session: Session, report: Report, *, tenant_id: str, connection_id: str, actor_name: str
) -> ImportRun:
    """Write the run and its rows (in batches) into ``session``'s transaction.

    A ``running`` row recorded for the same id (:func:`record_running`) is replaced.
    """
    started = session.get(ImportRun, report.id)
    if started is not None:
        session.delete(started)
        session.flush()
    run = ImportRun(
        id=report.id,
        tenant_id=tenant_id,
        connection_id=connection_id,
        actor_name=actor_name,
        source_name=report.source_name,
        format=report.format,
        mode=report.mode,
        dry_run=report.dry_run,
        status=report.status,
        counts=report.counts(),
        summary=report.summary[:2000],
        started_at=report.started_at,
        finished_at=report.finished_at or utcnow(),
    )
    session.add(run)
    session.flush()
    rows = _store_rows(session, report, run.id)
    metrics.IMPORT_ROWS.labels(report.format or "unknown", str(report.dry_run).lower()).inc(rows)
    return run


def _follows(run: _Run, file: str, number: int) -> bool:
    """Whether row ``number`` of ``file`` is the next row after ``run``."""
    return run[0] == file and run[1] + len(run[2]) == number


def _joins(run: _Run, after: _Run) -> bool:
    """Whether ``after`` continues ``run`` and both fit one statement."""
    return _follows(run, after[0], after[1]) and len(run[2]) + len(after[2]) <= RUN_KEYS


def _run_rows(run: _Run) -> Iterator[_Row]:
    file, first, keys = run
    for offset, key in enumerate(keys):
        yield (file, first + offset, key, "unchanged", None, None, {})


def _store_rows(session: Session, report: Report, run_id: str) -> int:
    """Insert the report's rows in order: row outcomes in batches of one ``executemany``,
    on SQLite runs of unchanged rows as one INSERT of their keys, copied rows as the one row
    that stands for them (:func:`_reference`); returns how many it reports."""
    insert_rows = _row_inserter(session)
    in_sql = session.get_bind().dialect.name == "sqlite"
    items = _joined(report._items()) if in_sql else report._items()
    batch: list[tuple[Any, ...]] = []
    rows = 0
    seen: dict[str, dict[str, str]] = {}
    refs: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, _Copied):
            if batch:
                insert_rows(batch)
                batch = []
            refs.append(_reference(session, run_id, item, seen))
            rows += item.rows
            continue
        if refs:
            session.execute(insert(ImportRowResult), refs)
            refs = []
        if in_sql and len(item) == 3 and _insert_run(session, run_id, item, batch):
            rows += len(item[2])
            batch = []
            continue
        for file, number, key, outcome, code, message, changes in (
            _run_rows(item) if len(item) == 3 else (item,)
        ):
            rows += 1
            if key is not None and len(key) > 255:
                key = key[:255]
            if message is not None and len(message) > 2000:
                message = message[:2000]
            batch.append(
                (run_id, file, number, key or None, outcome, code, message or None, changes)
            )
            if len(batch) >= STORE_BATCH:
                insert_rows(batch)
                batch = []
    if batch:
        insert_rows(batch)
    if refs:
        session.execute(insert(ImportRowResult), refs)
    return rows


def _joined(items: Iterator[_Item]) -> Iterator[_Item]:
    """The items with runs that follow each other (split where the spool was written out)
    joined, up to :data:`RUN_KEYS` keys: one statement each."""
    held: _Run | None = None
    for item in items:
        run = None if isinstance(item, _Copied) or len(item) != 3 else item
        if held is not None:
            if run is not None and _joins(held, run):
                held = (held[0], held[1], held[2] + run[2])
                continue
            yield held
            held = None
        if run is not None:
            held = run
        else:
            yield item
    if held is not None:
        yield held


def _insert_run(session: Session, run_id: str, run: _Run, batch: list[tuple[Any, ...]]) -> bool:
    """SQLite: insert ``batch`` (the rows before it), then the run of unchanged rows in one
    statement (a fourth of the CPU of a plain ``executemany`` of its rows); False, nothing
    done, for keys SQLite's JSON cannot carry (one holding a NUL)."""
    file, first, keys = run
    listed = json.dumps(keys)
    if "\\u0000" in listed:
        return False
    if batch:
        _row_inserter(session)(batch)
    session.connection().exec_driver_sql(_UNCHANGED_SQLITE, (run_id, file, first, listed))
    return True


def _reference(
    session: Session, run_id: str, item: _Copied, seen: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """The one row that stands for the rows of ``item`` (each unchanged, in their order) as
    the run that stored them has them. ``seen``: per run looked at, what its rows of each file
    stand for (one read of each run). PostgreSQL: that run (and the run ``item`` names) is
    locked against deletion by retention until this transaction ends; gone meanwhile, this
    raises. SQLite: the write transaction that found the run ``item`` names (and, through the
    rows that name it, the run that stored them: retention moves them before it deletes a run)
    holds the write lock."""
    if item.run_id not in seen:
        _lock_run(session, item.run_id, item.file)
        found = session.execute(_refs(item.run_id)).all()
        seen[item.run_id] = {file: rows_of for _, file, rows_of, _ in found}
    rows_of = seen[item.run_id].get(item.file, item.run_id)
    if rows_of not in seen:
        _lock_run(session, rows_of, item.file)
        seen[rows_of] = {}
    return {
        "run_id": run_id,
        "file": item.file,
        "row_number": item.rows,  # how many it stands for
        "record_key": None,
        "outcome": "unchanged",
        "code": None,
        "message": None,
        "changes": {},
        "rows_of": rows_of,
    }


def _lock_run(session: Session, run_id: str, file: str) -> None:
    """PostgreSQL: raise unless run ``run_id`` is stored, and keep it so (a share lock)."""
    if session.get_bind().dialect.name == "sqlite":
        return
    found = select(ImportRun.id).where(ImportRun.id == run_id).with_for_update(read=True)
    if session.scalar(found) is None:
        raise RuntimeError(
            f"the rows of {file} in run {run_id} were deleted while this run was stored "
            "(by retention?): run the import again"
        )


def _rows_run(run_id: str, file: str) -> ColumnElement[str]:
    """The run that stored the rows of ``file`` run ``run_id`` reports: itself, or the run its
    one row of the file stands for (which stored them itself: never a chain); a constant
    subquery, read with the rows."""
    query = _refs(run_id).where(ImportRowResult.file == file)
    found = query.with_only_columns(ImportRowResult.rows_of).limit(1).scalar_subquery()
    return func.coalesce(found, run_id)


def _refs(run_id: str) -> Any:
    """Run ``run_id``'s rows that stand for stored rows, in order (the partial index): id,
    file, the run that stored them and how many (``row_number``)."""
    return (
        select(
            ImportRowResult.id,
            ImportRowResult.file,
            ImportRowResult.rows_of,
            ImportRowResult.row_number,
        )
        .where(ImportRowResult.run_id == run_id, ImportRowResult.rows_of.is_not(None))
        .order_by(ImportRowResult.id)
    )


_READ = (
    ImportRowResult.file,
    ImportRowResult.row_number,
    ImportRowResult.record_key,
    ImportRowResult.outcome,
    ImportRowResult.code,
    ImportRowResult.message,
    ImportRowResult.changes,
)


def stored_rows(session: Session, run_id: str) -> Iterator[_Row]:
    """Every report row of run ``run_id`` as a tuple (:data:`ROW_FIELDS`), in order, a row
    that stands for another run's rows replaced by them (each unchanged): what the run reports,
    read a page at a time (stop early for the first rows only). Every reader goes through it."""
    refs = session.execute(_refs(run_id)).all()
    own: ColumnElement[bool] = ImportRowResult.rows_of.is_(None)
    if refs:
        files = sorted({file for _, file, _, _ in refs})
        own = own & or_(ImportRowResult.file.is_(None), ImportRowResult.file.not_in(files))
    ahead = list(refs)
    for row in _pages(session, select(ImportRowResult.id, *_READ), run_id, own):
        while ahead and ahead[0][0] < row[0]:
            yield from _referred(session, *ahead.pop(0)[1:])
        yield tuple(row[1:])
    for _, file, rows_of, rows in ahead:
        yield from _referred(session, file, rows_of, rows)


def _referred(
    session: Session, file: str, rows_of: str | ColumnElement[str], rows: int | None
) -> Iterator[_Row]:
    """The ``rows`` rows of ``file`` run ``rows_of`` stored, as a run that refers to them
    reports them (read no further than the last: the file's rows are among a million)."""
    columns = select(ImportRowResult.id, ImportRowResult.row_number, ImportRowResult.record_key)
    condition = ImportRowResult.rows_of.is_(None) & (ImportRowResult.file == file)
    for found in _pages(session, columns, rows_of, condition, most=rows):
        yield (file, found[1], found[2], "unchanged", None, None, {})


def _pages(
    session: Session,
    query: Any,
    run_id: str | ColumnElement[str],
    condition: ColumnElement[bool],
    most: int | None = None,
) -> Iterator[Any]:
    """The rows of ``query`` (its first column the id) of run ``run_id`` meeting
    ``condition``, by id, :data:`READ_PAGE` per statement; ``most``: how many there are."""
    query = query.where(ImportRowResult.run_id == run_id, condition)
    after: int | None = None
    left = most
    while left is None or left > 0:
        size = READ_PAGE if left is None else min(READ_PAGE, left)
        page = query if after is None else query.where(ImportRowResult.id > after)
        found = session.execute(page.order_by(ImportRowResult.id).limit(size)).all()
        yield from found
        if len(found) < size:
            return
        after = found[-1][0]
        left = None if left is None else left - len(found)


def plain_rows(session: Session, run_id: str, files: Iterable[str]) -> dict[str, int]:
    """Of ``files``, those whose rows run ``run_id`` stored as reading the file row by row
    reports them (one row per file row, in order, numbered one after another, without code or
    message: a clean run's), with how many (a run leaving another file unread lists it)."""
    number = ImportRowResult.row_number
    found = session.execute(
        select(
            ImportRowResult.file,
            func.count(),
            func.count(number.distinct()),
            func.min(number),
            func.max(number),
            func.count(ImportRowResult.code) + func.count(ImportRowResult.message),
        )
        .where(
            ImportRowResult.run_id == run_id,
            ImportRowResult.file.in_(sorted(files)),
            ImportRowResult.rows_of.is_(None),  # a file it did not store: not copied
        )
        .group_by(ImportRowResult.file)
        .order_by(ImportRowResult.file)
    ).all()
    plain: dict[str, int] = {}
    for file, rows, numbers, first, last, noted in found:
        if file is None or noted or first is None or last is None:
            continue
        if numbers == rows and last - first + 1 == rows:
            plain[file] = int(rows)
    return plain


def copied_rows(database: Database) -> RowReader:
    """A :data:`RowReader` of ``database`` (a read of its own each time)."""

    def read(run_id: str, file: str, rows: int) -> Iterator[tuple[int | None, str | None]]:
        with database.session(read_only=True) as session:
            for _, number, key, *_ in _referred(session, file, _rows_run(run_id, file), rows):
                yield number, key

    return read


_ROW_COLUMNS = ("run_id", "file", "row_number", "record_key", "outcome", "code", "message")


def _row_inserter(session: Session) -> Callable[[list[tuple[Any, ...]]], None]:
    """One ``executemany`` of report rows ``(*_ROW_COLUMNS, changes)``, no ORM or
    SQLAlchemy work per row (:mod:`server.db.bulk_insert`; empty changes are stored as
    ``{}``, the spool holds no other falsy value)."""
    columns = (*_ROW_COLUMNS, "changes")

    def write(batch: list[tuple[Any, ...]]) -> None:
        insert_rows(session, ImportRowResult.__table__, columns, batch)

    return write


def record_applied(
    session: Session, actor: Actor, report: Report, connection_id: str, actor_name: str
) -> None:
    """Finish an applied import in its own transaction (SPEC §5): the audit event, the stored
    report and the connection's last sync."""
    audit.record(
        session,
        actor,
        "import.apply",
        target_kind="import_run",
        target_id=report.id,
        target_label=f"{report.format} {report.mode}",
        detail=report.summary[:2000],
    )
    store_report(
        session, report, tenant_id=actor.tenant_id, connection_id=connection_id,
        actor_name=actor_name,
    )  # fmt: skip
    connection = session.get(Connection, connection_id)
    assert connection is not None
    connection.last_sync_at = report.finished_at
    connection.last_sync_result = report.summary[:2000]


def visible_runs(query: Any, actor: Actor) -> Any:
    """Import runs ``actor`` may read: the tenant's for district admins, their own otherwise
    (a connection reads the runs of its own pushes)."""
    query = query.where(ImportRun.tenant_id == actor.tenant_id)
    if actor.kind == "staff" and not actor.is_district_admin:
        query = query.where(ImportRun.actor_name == actor.name)
    if actor.kind == "connection":
        query = query.where(ImportRun.connection_id == actor.connection_id)
    return query


def record_running(
    session: Session,
    run_id: str,
    *,
    tenant_id: str,
    connection_id: str,
    actor_name: str,
    dry_run: bool,
    mode: str | None,
    format: str = "pending",
) -> ImportRun:
    """A ``running`` row for a run started in the background, so it can be polled; it is
    leased to this process (renewed by :func:`~server.domain.leases.renew_run` while it runs)
    so that, if the process dies, :func:`interrupt_abandoned_runs` ends it."""
    run = ImportRun(
        id=run_id,
        tenant_id=tenant_id,
        connection_id=connection_id,
        actor_name=actor_name,
        source_name=None,
        format=format,
        mode=mode or "delta",
        dry_run=dry_run,
        status=RunStatus.RUNNING,
        # the shape of Report.counts(), empty: pages and clients read it like a finished run's
        counts={
            "outcomes": {},
            "codes": {},
            "rows": 0,
            "warnings": [],
            "file_errors": [],
            "shrink": {},
        },
        summary="Running.",
        owner=leases.process_owner(),
        lease_until=utcnow() + leases.LEASE,
    )
    session.add(run)
    return run


def interrupt_abandoned_runs(database: Database) -> int:
    """Mark ``interrupted`` every running run whose process is gone (killed, crashed, its
    host lost): it will never finish, and its transaction was rolled back with it. Run by every
    worker poll and at start-up (issue 13). Returns how many were marked.

    The running runs are read outside any transaction, so the check neither waits for nor
    holds SQLite's write lock while an import runs; only a run found abandoned is written.
    """
    now = utcnow()
    with database.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        running = connection.execute(
            select(ImportRun.id, ImportRun.owner, ImportRun.lease_until, ImportRun.started_at)
            .where(ImportRun.status == RunStatus.RUNNING)
            .order_by(ImportRun.id)
        ).all()
    gone = [
        run_id
        for run_id, owner, lease_until, started_at in running
        if leases.owner_gone(owner, lease_until or started_at + leases.LEASE, now)
    ]
    if not gone:
        return 0
    with database.session() as session:
        for run in session.scalars(select(ImportRun).where(ImportRun.id.in_(gone))):
            if run.status != RunStatus.RUNNING:
                continue  # it ended meanwhile
            run.status = RunStatus.INTERRUPTED
            run.summary = (
                f"Interrupted: the process running it ({run.owner or 'unknown'}) stopped "
                "without finishing (killed or crashed); nothing was written. Run the import "
                "again."
            )
            run.finished_at, run.lease_until = now, None
    log.warning("abandoned import runs marked interrupted", extra={"runs": len(gone)})
    return len(gone)


def finish_unreported(session: Session, run_id: str, status: str, summary: str) -> None:
    """End a ``running`` row whose import stopped before it had a report (refused at start)."""
    run = session.get(ImportRun, run_id)
    if run is not None and run.status == RunStatus.RUNNING:
        run.status = status
        run.summary = summary[:2000]
        run.finished_at = utcnow()
        run.lease_until = None


def recent_runs(session: Session, actor: Actor, limit: int = 100) -> list[ImportRun]:
    query = visible_runs(select(ImportRun), actor)
    newest_first = query.order_by(ImportRun.started_at.desc(), ImportRun.id.desc())
    return list(session.scalars(newest_first.limit(limit)))


def visible_run(session: Session, actor: Actor, run_id: str) -> ImportRun | None:
    query = visible_runs(select(ImportRun).where(ImportRun.id == run_id), actor)
    return session.scalars(query).first()


def load_run(session: Session, tenant_id: str, run_id: str) -> ImportRun | None:
    run = session.get(ImportRun, run_id)
    return run if run is not None and run.tenant_id == tenant_id else None


def load_rows(session: Session, run_id: str, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The first ``limit`` (None: all) report rows of a stored run (:func:`stored_rows`)."""
    rows = stored_rows(session, run_id)
    if limit is not None:
        rows = islice(rows, limit)
    return [dict(zip(ROW_FIELDS, row, strict=True)) for row in rows]


def run_as_dict(
    session: Session, run: ImportRun, *, row_limit: int | None = None
) -> dict[str, Any]:
    """A stored run in the same shape as :meth:`Report.as_dict`."""
    return {
        "id": run.id,
        "status": run.status,
        "format": run.format,
        "mode": run.mode,
        "dry_run": run.dry_run,
        "source": run.source_name,
        "summary": run.summary,
        **run.counts,
        "row_results": load_rows(session, run.id, limit=row_limit),
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def standing_for(
    session: Session, rows: Sequence[ImportRowResult], keys: Iterable[str]
) -> list[ImportRowResult]:
    """Of stored ``rows`` (a person's, for subject access), those whose key is one of ``keys``
    as every other run that refers to them reports them (:func:`stored_rows`: each unchanged),
    one unsaved row each, in the order of those runs' rows."""
    wanted = set(keys)
    mine = [row for row in rows if row.record_key in wanted and row.rows_of is None]
    if not mine:
        return []
    pairs = sorted({(row.run_id, row.file) for row in mine if row.file is not None})
    refs = session.execute(
        select(
            ImportRowResult.id,
            ImportRowResult.run_id,
            ImportRowResult.file,
            ImportRowResult.rows_of,
        )
        .where(
            ImportRowResult.rows_of.is_not(None),
            ImportRowResult.rows_of.in_(sorted({run for run, _ in pairs})),
        )
        .order_by(ImportRowResult.id)
    ).all()
    found: list[ImportRowResult] = []
    for ref_id, run_id, file, rows_of in refs:
        for row in mine:
            if (row.run_id, row.file) == (rows_of, file) and run_id != rows_of:
                found.append(_as_reported(row, run_id, ref_id))
    return found


def _as_reported(row: ImportRowResult, run_id: str, ref_id: int) -> ImportRowResult:
    """Stored ``row`` as run ``run_id`` reports it through its row ``ref_id`` (unsaved)."""
    return ImportRowResult(
        id=ref_id,
        run_id=run_id,
        file=row.file,
        row_number=row.row_number,
        record_key=row.record_key,
        outcome="unchanged",
        code=None,
        message=None,
        changes={},
        rows_of=None,
    )


def keep_referred_rows(session: Session, doomed: ColumnElement[bool]) -> int:
    """Before the import runs meeting ``doomed`` are deleted (retention): the rows of theirs
    that a run not deleted reports (:func:`stored_rows`) are moved into the newest such run,
    each as it reports them, and every row standing for them then names that run. Returns how
    many files' rows moved. PostgreSQL: the doomed runs are locked first, so a run storing a
    row that stands for theirs either waits and then finds them gone, or is seen here."""
    doomed_runs = select(ImportRun.id).where(doomed)
    if session.get_bind().dialect.name != "sqlite":
        session.execute(doomed_runs.with_for_update()).all()
    refs = session.execute(
        select(ImportRowResult.rows_of, ImportRowResult.file, ImportRun.started_at, ImportRun.id)
        .join(ImportRun, ImportRun.id == ImportRowResult.run_id)
        .where(
            ImportRowResult.rows_of.is_not(None),
            ImportRowResult.rows_of.in_(doomed_runs),
            ImportRun.id.not_in(doomed_runs),
        )
        .order_by(ImportRowResult.rows_of, ImportRowResult.file, ImportRun.started_at, ImportRun.id)
    ).all()
    newest: dict[tuple[str, str], str] = {}
    for rows_of, file, _, run_id in refs:
        newest[(str(rows_of), str(file))] = run_id  # ordered: the newest last
    for (rows_of, file), keeper in sorted(newest.items()):
        _move_rows(session, rows_of, file, keeper)
    return len(newest)


def _move_rows(session: Session, rows_of: str, file: str, keeper: str) -> None:
    """Run ``rows_of``'s stored rows of ``file`` become run ``keeper``'s, as it reports them;
    every row standing for them names ``keeper``."""
    session.execute(
        update(ImportRowResult)
        .where(
            ImportRowResult.run_id == rows_of,
            ImportRowResult.file == file,
            ImportRowResult.rows_of.is_(None),
        )
        .values(run_id=keeper, outcome="unchanged", code=None, message=None, changes={})
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(ImportRowResult)
        .where(
            ImportRowResult.rows_of.is_not(None),
            ImportRowResult.rows_of == rows_of,
            ImportRowResult.file == file,
        )
        .values(rows_of=keeper)
        .execution_options(synchronize_session=False)
    )
