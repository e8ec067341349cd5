"""An import's write phase prepared on a copy of a SQLite database, then replayed under the
write lock (issue 11 item 6: long imports must not starve other writers).

SQLite has one writer at a time, and an import's write phase (translating new and changed
rows, the bulk writes, the report) took tens of seconds to minutes: other writers waited and
were told to retry (503). Now, on a SQLite file:

1. **Prepare.** The database is copied (:func:`server.db.replay.private_copy`: the backup API,
   a reader, no write lock) and the write phase runs there exactly as it would on the
   database, while every statement that writes is recorded. The rows its plain INSERTs add
   are not recorded but kept on the copy, committed there and moved by the replay from the
   attached copy, each table's rows of a run of such INSERTs with one ``INSERT ... SELECT``
   (issue 15; :mod:`server.db.replay`);
   without such rows, the copy is rolled back and removed at once. A trial run, or a run
   refused or interrupted, ends here: nothing is written but its report (a short write, by
   the engine).
2. **Replay.** In one write transaction on the database (``BEGIN IMMEDIATE``): if the roster
   state (:func:`~server.domain.roster_state.roster_state`) and the state of the other tables
   the run may read (:func:`~server.domain.roster_state.writes_state`: connections,
   credentials, SCIM values, ...) are those of the copy, the recorded statements run in order,
   each changing as many rows as on the copy (their statement journals in memory, not in a
   temporary file: :func:`~server.db.replay.statement_journals_in_memory`); then it commits,
   and the copy is removed. Rows
   with ids the database assigns are safe: those of the roster (``user_roles``) cannot move
   without the roster state; audit events and report rows, whose ids nothing reads back, may
   (a moved INSERT writes the columns the INSERT wrote, not the copy's rowids).
3. **Anything else** (a write committed since the copy that the run may have read, a statement
   that changed another number of rows): the transaction is rolled back and the run prepared
   again on a new copy; if that fails too, it runs directly under the write lock as before.

Atomic either way: the replay is one transaction (a killed process leaves the database as it
was; a copy left behind by it is swept at the next run). What the engine does after committing
(storing the report of a run not applied, logging) it does once, after the replay's commit; the
session's ``after_commit`` work (kept page totals) is carried over to the database's session,
and a write phase that registered its own ``after_commit`` listener is run directly instead.
PostgreSQL (row locks only) and an in-memory SQLite run the write phase directly, and so does
a short one on a SQLite file (:func:`prepares`: sized by the engine's read snapshot,
:func:`server.imports.snapshot.writes_left`, against a threshold that grows with the database,
:func:`prepare_from`), where the copy would cost more than the lock time it saves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from server.db.long_writes import long_write
from server.db.replay import (
    Recorder,
    ReplayMismatch,
    database_file,
    detach,
    private_copy,
    recording,
    replay,
    statement_journals_in_memory,
    sweep,
)
from server.db.session import Database
from server.domain.roster_state import SQLITE_STATE_ROW, roster_state, writes_state
from server.imports.contract import SEEN

log = logging.getLogger("rollcall.imports")

PREPARATIONS = 2  # tries on a copy before the write phase runs directly under the lock
# A write phase smaller than this (rows applied or deactivated, plus rows walked at their
# weight: server.imports.snapshot.writes_left) runs directly under the write lock: below it,
# the copy and the replay cost more CPU than the lock time they save (issue 15; 20,000 users:
# ~0.6 s of copy and recording against 0.52 ms saved per applied row, net of the replay).
# Tests of the prepared path set it to 0 (fixture prepared_always).
PREPARE_FROM_ROWS = 1200
# ... on a database of this many pages (20,000 users, ~190 MB of 4 KiB pages). The copy costs
# in proportion to the database's pages (100,000 users, 2 GB: ~11 s), the lock time it saves
# in proportion to the rows: a larger database raises the threshold in proportion ...
TUNED_PAGES = 48_000
# ... up to this many rows (~2.6 s of applied rows at 0.52 ms): a larger write phase is
# prepared on a copy at any size, not to hold the lock near writers' 10-second busy timeout.
DIRECT_AT_MOST = 5000
WriteBody = Callable[[Session], None]


class _Stale(Exception):
    """The database moved since the copy was taken: prepare again."""


@dataclass
class Prepared:
    """A write phase run on a copy: its recorded writes and the states it started from."""

    recorder: Recorder
    before: tuple[Any, ...]
    moved: tuple[bool, ...]
    info: dict[str, Any]
    prepare_cpu: float
    copy: Path | None = None  # the committed copy the replay moves rows from
    kept: ExitStack = field(default_factory=ExitStack)  # removes the copy

    def close(self) -> None:
        self.recorder.close()
        self.kept.close()


def write(
    database: Database, body: WriteBody, *, brief: bool = False, rows: int | None = None
) -> bool:
    """Run ``body`` (the write phase) in a write transaction and commit it; returns True.
    Whatever ``body`` raises propagates, nothing written (see the module docstring).
    ``brief``: the caller knows the write phase is short (a package identical to a proven
    run writes only its report); ``rows``: at most how many rows it writes (None: unknown).
    A short one runs directly (:func:`prepares`)."""
    if not prepares(database, brief=brief, rows=rows):
        return _direct(database, body)
    sweep(database_file(database.engine))
    for attempt in range(1, PREPARATIONS + 1):
        prepared = prepare(database, body)
        if prepared is None:
            break
        try:
            if _replayed(database, prepared, attempt):
                return True
        finally:
            prepared.close()
    return _direct(database, body)


def prepares(database: Database, *, brief: bool = False, rows: int | None = None) -> bool:
    """Whether a write phase is prepared on a copy: on a SQLite file, unless it is short
    (``brief``, or fewer rows than :func:`prepare_from`): then the copy of the whole
    database and the second write of each row cost more than the lock time they save. A
    trial run is sized alike: run directly it holds the lock as long as its apply would."""
    if brief or database_file(database.engine) is None:
        return False
    return rows is None or rows >= prepare_from(database)


def prepare_from(database: Database) -> int:
    """The rows from which a write phase is prepared on a copy of ``database`` (a SQLite
    file): :data:`PREPARE_FROM_ROWS`, raised with the database's size (see above)."""
    with database.session(read_only=True) as session:  # no write lock
        pages = session.connection().exec_driver_sql("PRAGMA page_count").scalar() or 0
    scaled = int(PREPARE_FROM_ROWS * max(1.0, pages / TUNED_PAGES))
    return min(scaled, max(PREPARE_FROM_ROWS, DIRECT_AT_MOST))


def _direct(database: Database, body: WriteBody) -> bool:
    """The write phase in the database's own write transaction (the lock held throughout)."""
    session = database.sessions()
    try:
        with session.begin():
            body(session)
    finally:
        session.close()
    return True


def prepare(database: Database, body: WriteBody) -> Prepared | None:
    """Run ``body`` on a copy of the database and record its writes; None when what it did
    cannot be replayed (the caller runs it directly). The copy is committed and kept for the
    replay when rows are to be moved from it (:class:`server.db.replay.Recorder`), else
    rolled back and removed."""
    started = time.process_time()
    with ExitStack() as kept:
        copy = kept.enter_context(private_copy(database.engine))
        prepared = _record(copy, body)
        if prepared is not None:
            prepared.prepare_cpu = time.process_time() - started
            if prepared.recorder.moved:
                prepared.copy = Path(str(copy.url.database))
                prepared.kept = kept.pop_all()
    return prepared


def _record(copy: Engine, body: WriteBody) -> Prepared | None:
    """``body`` run on ``copy`` while its writes are recorded; the copy committed when rows
    are to be moved from it, else rolled back."""
    session = sessionmaker(copy, expire_on_commit=False)()
    try:
        with recording(copy, ignored=frozenset({SEEN.name}), moves_rows=True) as recorder:
            try:
                session.begin()
                before = _states(session)
                body(session)
                moved = _moved(before, _states(session))
                info = dict(session.info)
                listeners = list(getattr(session.dispatch.after_commit, "listeners", ()))
                if recorder.moved and not (recorder.unrecorded_write or listeners):
                    _commit_copy(session)
            finally:
                session.rollback()
    except BaseException:
        recorder.close()
        raise
    finally:
        session.close()
    if recorder.unrecorded_write or listeners:
        log.warning(
            "import not replayable",
            extra={"statement": recorder.unrecorded_write, "listeners": len(listeners)},
        )
        recorder.close()
        return None
    return Prepared(recorder, before, moved, info, 0.0)


def _commit_copy(session: Session) -> None:
    """Commit the copy's transaction at the driver, not through the session: what the
    session publishes after a commit (kept page totals) is the replay's to publish."""
    driver = session.connection().connection.driver_connection
    assert driver is not None
    driver.execute("COMMIT")


def _states(session: Session) -> tuple[Any, ...]:
    """The roster state and the state of the other watched tables (SQLite: the database's)."""
    return (roster_state(session, SQLITE_STATE_ROW), writes_state(session))


def _moved(before: tuple[Any, ...], after: tuple[Any, ...]) -> tuple[bool, ...]:
    return tuple(b != a for b, a in zip(before, after, strict=True))


def _replayed(database: Database, prepared: Prepared, attempt: int) -> bool:
    """Replay ``prepared`` in one write transaction and commit it; False (rolled back) when
    the database moved since the copy or a statement did not do what it did there."""
    connection = database.engine.connect()
    session = database.sessions(bind=connection)
    started = time.perf_counter()
    try:
        with statement_journals_in_memory(connection), session.begin():
            if _states(session) != prepared.before:
                raise _Stale("the database changed since the copy")
            with long_write(session):
                count = replay(connection, prepared.recorder, prepared.copy)
            if _moved(prepared.before, _states(session)) != prepared.moved:
                raise ReplayMismatch("the replay moved the states otherwise than the copy")
            session.info.update(prepared.info)  # published after this commit, not the copy's
    except (_Stale, ReplayMismatch) as why:
        log.info("import prepared again", extra={"attempt": attempt, "reason": str(why)})
        return False
    finally:
        session.close()
        if prepared.copy is not None:
            detach(connection)
        connection.close()
    log.info(
        "import replayed",
        extra={
            "statements": count,
            "lock_seconds": round(time.perf_counter() - started, 3),
            "prepare_cpu_seconds": round(prepared.prepare_cpu, 3),
            "moved_statements": prepared.recorder.moved,
        },
    )
    return True
