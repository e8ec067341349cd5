"""Private copies of a SQLite database, and the writes made on one replayed on the original.

SQLite has one writer at a time. A long write (an import) can be *prepared* on a private copy
of the database, taken with SQLite's online backup API (a reader: it takes no write lock), while
a :class:`Recorder` notes every statement that writes, in order, with its parameters and the
number of rows it changed. :func:`replay` then runs those statements on the original inside its
write transaction and checks each one changed as many rows as on the copy; the caller checks
first that nothing the preparation read has changed since the copy was taken.

Rows moved from the copy (issue 15): a recorder made with ``moves_rows`` keeps, of a plain
``INSERT INTO t (columns) VALUES (?, ...)`` run with many rows, only the range of rowids its
rows took on the copy (when they took one range, as many as it inserted). The copy is then
committed and kept, and the replay moves those rows with one ``INSERT INTO t (columns)
SELECT columns FROM <the copy>.t WHERE rowid BETWEEN ...`` (in C, no parameters pickled, read
back nor bound). Before any other write that may change rows of ``t`` (an UPDATE, a DELETE,
an INSERT of another shape into ``t``, or a write to a table whose foreign keys cascade into
``t``), the rows of its pending ranges are read back from the copy and kept as parameters:
the replay then runs that INSERT with them, as it was run. The replay leaves the recorded
savepoints out and moves the rows of each run of such INSERTs (the batches of an import) with
one ``INSERT ... SELECT`` per table, when their ranges follow each other (:func:`_planned`).

Copies hold personal data: each is a file of mode 0600 in a directory of mode 0700 next to the
database (``<database>.copies/``), named after the process that made it, removed when done; the
copies of processes that no longer run (killed mid-way) are swept by :func:`sweep`.

Example::

    with private_copy(database.engine) as copy:
        with recording(copy) as recorder:
            ...  # write on a session bound to ``copy``, then roll back
        with session.begin():  # the original's write transaction
            replay(session.connection(), recorder)
"""

from __future__ import annotations

import functools
import os
import pickle
import re
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import NullPool

from server.db.backup import sqlite_path
from server.db.session import _begin_sqlite_immediately, _configure_sqlite_connection

COPIES = ".copies"
# a statement that writes, and the table it writes to (group 1); the roster state's hook
# (server.domain.roster_reads) recognises writes by it too
WRITE_STATEMENT = re.compile(
    r'\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+"?(\w+)',
    re.IGNORECASE,
)
_SAVEPOINT = re.compile(r"\s*SAVEPOINT\s+(\w+)", re.IGNORECASE)
_ROLLBACK_TO = re.compile(r"\s*ROLLBACK\s+TO\s+(?:SAVEPOINT\s+)?(\w+)", re.IGNORECASE)
_RELEASE = re.compile(r"\s*RELEASE\s+(?:SAVEPOINT\s+)?(\w+)", re.IGNORECASE)
# an INSERT of one row of parameters per execution, nothing else (server.db.bulk_insert's):
# its table (group 2) and column list (group 3)
_PLAIN_INSERT = re.compile(
    r'\s*INSERT\s+INTO\s+("?)(\w+)\1\s*\(([^()]*)\)\s*VALUES\s*\(\s*\?(?:\s*,\s*\?)*\s*\)\s*',
    re.IGNORECASE,
)
COPY_SCHEMA = "replay_copy"  # the copy, attached to the original during the replay


class ReplayMismatch(Exception):
    """A replayed statement did not do on the original what it did on the copy."""


def database_file(engine: Engine) -> Path | None:
    """The file of a SQLite engine's database, or None (PostgreSQL, in memory)."""
    path = sqlite_path(str(engine.url))
    if path is None or str(path) == ":memory:" or str(path).startswith("file:"):
        return None
    return None if engine.url.query.get("mode") == "memory" else path


def copies_directory(database: Path) -> Path:
    return database.with_name(database.name + COPIES)


def sweep(database: Path | None) -> int:
    """Remove the copies left by processes that no longer run; returns how many."""
    if database is None:
        return 0
    directory = copies_directory(database)
    if not directory.is_dir():
        return 0
    removed = 0
    for path in sorted(directory.iterdir()):
        pid = path.name.split("-", 1)[0]
        if pid.isdigit() and _alive(int(pid)):
            continue
        with suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def private_copy(engine: Engine) -> Iterator[Engine]:
    """A consistent copy of ``engine``'s SQLite database (backup API, no write lock) in a
    private file, and an engine over it configured like the original (foreign keys, case
    sensitive LIKE, ``BEGIN IMMEDIATE``) but without durability (a copy thrown away after);
    the file is removed on exit."""
    database = database_file(engine)
    assert database is not None, "only a SQLite file can be copied"
    directory = copies_directory(database)
    directory.mkdir(mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    path = directory / f"{os.getpid()}-{uuid.uuid4().hex}.sqlite3"
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    copy: Engine | None = None
    try:
        _back_up(engine, path)
        copy = create_engine(
            f"sqlite:///{path}", poolclass=NullPool, connect_args={"check_same_thread": False}
        )
        event.listen(copy, "connect", partial(_configure_sqlite_connection, 10.0))
        event.listen(copy, "connect", _throwaway)
        event.listen(copy, "begin", _begin_sqlite_immediately)
        yield copy
    finally:
        if copy is not None:
            copy.dispose()
        for leftover in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm"))):
            with suppress(FileNotFoundError):
                leftover.unlink()


def _back_up(engine: Engine, path: Path) -> None:
    with engine.connect() as connection, closing(sqlite3.connect(path)) as target:
        source = connection.connection.driver_connection
        assert source is not None
        source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")


def _throwaway(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=MEMORY")  # savepoints still roll back
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()


@dataclass(frozen=True)
class Rows:
    """The rows an INSERT put on the copy: rowids ``first`` to ``last`` of its table."""

    first: int
    last: int


@dataclass
class Recorder:
    """The writing statements run on an engine, in order, spooled to a temporary file (memory
    stays flat): SQL, parameters (an ``executemany`` list too) and the rows each changed.
    What a savepoint rolled back is dropped (it had no effect). ``ignored``: tables whose writes
    are not kept (temporary tables of the preparation). ``moves_rows``: plain INSERTs of many
    rows are kept as their rows' range on the copy (see the module docstring)."""

    ignored: frozenset[str] = frozenset()
    moves_rows: bool = False
    count: int = 0
    moved: int = 0  # statements kept as a range of the copy's rows
    unrecorded_write: str | None = None
    _file: IO[bytes] = field(default_factory=tempfile.TemporaryFile)
    _savepoints: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    _kept: IO[bytes] = field(default_factory=tempfile.TemporaryFile)
    _kept_at: dict[int, int] = field(default_factory=dict)  # statement -> offset in _kept
    _pending: dict[str, list[tuple[int, str, Rows]]] = field(default_factory=dict)
    _cascades: dict[tuple[str, int], set[str]] | None = None
    _insert: tuple[str, int] | None = None  # table and its largest rowid before the INSERT

    def before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.moves_rows:
            self._insert = None
            self._before_write(cursor.connection, statement, args[-1])
        conn.info["replay_changes"] = cursor.connection.total_changes

    def _before_write(self, raw: Any, statement: str, many: bool) -> None:
        """Before a plain INSERT of many rows: note its table's largest rowid; before any
        other write: keep the pending rows it may change as parameters."""
        written = WRITE_STATEMENT.match(statement)
        if written is None:
            return
        table = written.group(1).lower()
        if table in self.ignored:
            return
        if _PLAIN_INSERT.fullmatch(statement):  # changes no row it did not insert
            if many:
                with suppress(sqlite3.OperationalError):  # a table WITHOUT ROWID
                    self._insert = (table, _rowid(raw, f'SELECT max(rowid) FROM "{table}"'))
            return
        verb = statement.lstrip()[:6].upper()
        actions = {"UPDATE": (5,), "DELETE": (6,)}.get(verb, (5, 6))
        for changed in self._changed_by(raw, table, actions):
            self._keep_pending(raw, changed)

    def _changed_by(self, raw: Any, table: str, actions: tuple[int, ...]) -> set[str]:
        """``table`` and the tables a write to it may change through their foreign keys'
        actions (``actions``: 5, ON UPDATE; 6, ON DELETE; the columns of SQLite's list)."""
        if self._cascades is None:
            self._cascades = _cascades(raw)
        reached, todo = {table}, [table]
        while todo:
            parent = todo.pop()
            for child in set().union(*(self._cascades.get((parent, a), ()) for a in actions)):
                if child not in reached:
                    reached.add(child)
                    todo.append(child)
        return reached

    def _keep_pending(self, raw: Any, table: str) -> None:
        """The rows of ``table``'s pending ranges, read from the copy, kept as parameters."""
        for number, columns, rows in self._pending.pop(table, ()):
            kept = raw.execute(
                f'SELECT {columns} FROM "{table}" WHERE rowid BETWEEN ? AND ? ORDER BY rowid',
                (rows.first, rows.last),
            ).fetchall()
            self._kept.seek(0, 2)
            self._kept_at[number] = self._kept.tell()
            pickle.dump(kept, self._kept, protocol=pickle.HIGHEST_PROTOCOL)

    def after(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        # SQLAlchemy says "many" for an INSERT of many rows it sent as one statement too
        many = many and bool(parameters) and isinstance(parameters[0], (list, tuple, dict))
        written = WRITE_STATEMENT.match(statement)
        if written is not None:
            if written.group(1).lower() in self.ignored:
                return
            rows = self._inserted(cursor, many, len(parameters or ()))
            if rows is not None:
                self._write(statement, rows, False, cursor.rowcount)
                return
            returning = re.search(r"\bRETURNING\b", statement, re.IGNORECASE) is not None
            self._write(statement, parameters, many, None if returning else cursor.rowcount)
            return
        if self._savepoint(statement, parameters, many):
            return
        if cursor.connection.total_changes != conn.info.get("replay_changes"):
            self.unrecorded_write = self.unrecorded_write or statement[:200]

    def _inserted(self, cursor: Any, many: bool, sent: int) -> Rows | None:
        """The range of rowids a plain INSERT of many rows took, if one range held exactly
        its rows (as many as it inserted, all above the largest before it); else None."""
        if self._insert is None or not many:
            return None
        table, largest = self._insert
        self._insert = None
        raw = cursor.connection
        first = _rowid(
            raw,
            f'SELECT min(rowid) FROM "{table}" WHERE rowid > ?',
            (-(2**63) if largest is None else largest,),
        )
        last = _rowid(raw, f'SELECT max(rowid) FROM "{table}"')
        if cursor.rowcount != sent or first is None or last - first + 1 != sent:
            return None
        return Rows(first, last)

    def _savepoint(self, statement: str, parameters: Any, many: bool) -> bool:
        if begun := _SAVEPOINT.match(statement):
            self._savepoints.setdefault(begun.group(1), []).append((0, 0))
            self._write(statement, parameters, many, None)
            self._savepoints[begun.group(1)][-1] = (self._file.tell(), self.count)
            return True
        if undone := _ROLLBACK_TO.match(statement):
            marks = self._savepoints.get(undone.group(1))
            if marks:  # drop what the savepoint undid: replayed, it would only cost time
                position, self.count = marks[-1]
                self._file.seek(position)
                self._file.truncate()
                self._forget_from(self.count)
            self._write(statement, parameters, many, None)
            return True
        if released := _RELEASE.match(statement):
            marks = self._savepoints.get(released.group(1))
            if marks:
                marks.pop()
            self._write(statement, parameters, many, None)
            return True
        return False

    def _forget_from(self, number: int) -> None:
        """Drop the moved rows of the statements from ``number`` on (rolled back)."""
        for table, pending in list(self._pending.items()):
            self._pending[table] = [entry for entry in pending if entry[0] < number]
        for dropped in [kept for kept in self._kept_at if kept >= number]:
            del self._kept_at[dropped]

    def _write(self, statement: str, parameters: Any, many: bool, rowcount: int | None) -> None:
        self._file.seek(0, 2)
        if isinstance(parameters, Rows):
            kept: Any = parameters
            insert = _PLAIN_INSERT.fullmatch(statement)
            assert insert is not None
            table = insert.group(2).lower()
            self._pending.setdefault(table, []).append((self.count, insert.group(3), parameters))
            self.moved += 1
        else:
            kept = [_plain(one) for one in parameters] if many else _plain(parameters)
        entry = (statement, kept, many, rowcount)
        pickle.dump(entry, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.count += 1

    def statements(self) -> Iterator[tuple[str, Any, bool, int | None]]:
        """The recorded statements, in order: those whose rows are moved from the copy as a
        :class:`Rows` (their parameters; :func:`replay` moves them), or, changed on the copy
        after, as the parameters they were run with."""
        self._file.seek(0)
        end = os.fstat(self._file.fileno()).st_size
        number = 0
        while self._file.tell() < end:
            statement, parameters, many, rowcount = pickle.load(self._file)  # our own file
            if isinstance(parameters, Rows):
                parameters, many = self._moving(number, parameters)
            yield statement, parameters, many, rowcount
            number += 1

    def _moving(self, number: int, rows: Rows) -> tuple[Any, bool]:
        at = self._kept_at.get(number)
        if at is not None:  # changed on the copy after it: run as it was
            self._kept.seek(at)
            return pickle.load(self._kept), True
        return rows, False

    def close(self) -> None:
        self._file.close()
        self._kept.close()


def _rowid(raw: Any, sql: str, parameters: tuple[Any, ...] = ()) -> Any:
    return raw.execute(sql, parameters).fetchone()[0]


def _cascades(raw: Any) -> dict[tuple[str, int], set[str]]:
    """For each table and action (5: ON UPDATE, 6: ON DELETE), the tables whose foreign
    keys to it act then (CASCADE, SET NULL, SET DEFAULT): such a write may change their rows."""
    tables = [
        name for (name,) in raw.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
    ]
    cascades: dict[tuple[str, int], set[str]] = {}
    for table in tables:
        for key in raw.execute(f'PRAGMA foreign_key_list("{table}")').fetchall():
            for action in (5, 6):
                if key[action] not in ("NO ACTION", "RESTRICT"):
                    cascades.setdefault((key[2].lower(), action), set()).add(table.lower())
    return cascades


@functools.lru_cache(maxsize=256)
def _moving_sql(statement: str) -> str:
    """The INSERT ... SELECT that moves a plain INSERT's rows from the attached copy."""
    insert = _PLAIN_INSERT.fullmatch(statement)
    assert insert is not None
    table, columns = insert.group(2), insert.group(3)
    return (
        f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM {COPY_SCHEMA}."{table}" '
        "WHERE rowid BETWEEN ? AND ? ORDER BY rowid"
    )


def _plain(parameters: Any) -> Any:
    """One statement's parameters as SQLAlchemy takes them back: a dict or a tuple."""
    return parameters if isinstance(parameters, dict) else tuple(parameters or ())


@contextmanager
def recording(
    engine: Engine, ignored: frozenset[str] = frozenset(), *, moves_rows: bool = False
) -> Iterator[Recorder]:
    """Record the writing statements run on ``engine`` while the block runs; ``moves_rows``:
    keep plain INSERTs as their rows' ranges on the copy (the copy must then be committed and
    given to :func:`replay`)."""
    recorder = Recorder(ignored=frozenset(name.lower() for name in ignored), moves_rows=moves_rows)
    event.listen(engine, "before_cursor_execute", recorder.before)
    event.listen(engine, "after_cursor_execute", recorder.after)
    try:
        yield recorder
    finally:
        event.remove(engine, "before_cursor_execute", recorder.before)
        event.remove(engine, "after_cursor_execute", recorder.after)


def replay(connection: Connection, recorder: Recorder, copy: Path | None = None) -> int:
    """Run the recorded statements on ``connection`` (in its open transaction, through
    SQLAlchemy so that its statement hooks see them as any write); returns how many ran.
    Rows moved from the copy are read from ``copy`` (the committed copy's file), attached
    to the connection as :data:`COPY_SCHEMA`: :func:`detach` it once the transaction ends.
    Savepoints are left out and the moves of each run of moved statements merged, a table's
    rows moved once (:func:`_planned`).

    :raises ReplayMismatch: a statement changed another number of rows than on the copy.
    """
    if recorder.moved:
        assert copy is not None, "rows moved from a copy need the copy"
        connection.exec_driver_sql(f"ATTACH DATABASE ? AS {COPY_SCHEMA}", (str(copy),))
    driver = connection.connection.driver_connection
    done = 0
    for statement, parameters, many, rowcount in _planned(recorder.statements(), driver):
        changed = _execute(connection, statement, parameters, many)
        if rowcount is not None and changed != rowcount:
            raise ReplayMismatch(
                f"statement {done + 1} changed {changed} rows, {rowcount} on the copy: "
                f"{' '.join(statement.split())[:200]}"
            )
        done += 1
    return done


Statement = tuple[str, Any, bool, int | None]


def _planned(statements: Iterator[Statement], driver: Any) -> Iterator[Statement]:
    """The statements to replay: the recorded ones without their savepoints, each run of
    consecutive moves (INSERTs whose rows are moved from the copy) as one ``INSERT ...
    SELECT`` per table when it can be (:func:`_merged`).

    A savepoint on the copy either ended released (it changed nothing) or was rolled back
    to, and what it undid was never recorded: in the one transaction of the replay it would
    only cost time, and it splits the moves of every batch of an import. Moved once, a
    table's rows go into its indexes in one statement: each ``INSERT ... SELECT`` kept the
    pages it changed that earlier ones had changed in a statement journal (the replay of a
    first import of 100,000 users moved its enrollments in ~2,000 statements; issue 15)."""
    run: list[Statement] = []
    parents: dict[str, set[str]] | None = None
    for statement, parameters, many, rowcount in statements:
        if _SAVEPOINTS.match(statement):
            continue
        if isinstance(parameters, Rows):
            run.append((statement, parameters, many, rowcount))
            continue
        if run:
            parents = parents if parents is not None or len(run) < 2 else _parents(driver)
            yield from _merged(run, parents or {})
            run = []
        yield statement, parameters, many, rowcount
    if run:
        parents = parents if parents is not None or len(run) < 2 else _parents(driver)
        yield from _merged(run, parents or {})


def _merged(run: list[Statement], parents: dict[str, set[str]]) -> Iterator[Statement]:
    """A run of moves as one ``INSERT ... SELECT`` per table, in the order the tables first
    appear, when each table's moves are of one column list and one range of rows on the
    copy (each starts where the one before ended) and no table's rows need the rows of a
    table that first appears after it (a foreign key); else each move as it was recorded.
    The rows of each table still go in in their order on the copy, at most
    :data:`MOVE_ROWS` a statement."""
    tables: dict[str, tuple[str, int, int, int | None]] = {}
    for statement, rows, _, rowcount in run:
        insert = _PLAIN_INSERT.fullmatch(statement)
        assert insert is not None and isinstance(rows, Rows)
        table = insert.group(2).lower()
        merged = tables.get(table)
        if merged is None:
            tables[table] = (statement, rows.first, rows.last, rowcount)
            continue
        first_statement, first, last, count = merged
        if statement != first_statement or rows.first != last + 1:
            tables = {}
            break
        total = None if count is None or rowcount is None else count + rowcount
        tables[table] = (first_statement, first, rows.last, total)
    order = list(tables)
    if not tables or any(
        order.index(parent) > order.index(table)
        for table in order
        for parent in parents.get(table, ())
        if parent in tables
    ):
        tables = {}
    if not tables:
        for statement, rows, _, rowcount in run:
            yield _moving_sql(statement), (rows.first, rows.last), False, rowcount
        return
    for statement, first, last, rowcount in tables.values():
        if rowcount is None or rowcount <= MOVE_ROWS:
            yield _moving_sql(statement), (first, last), False, rowcount
            continue
        for start in range(first, last + 1, MOVE_ROWS):  # each range holds all its rows
            end = min(start + MOVE_ROWS - 1, last)
            yield _moving_sql(statement), (start, end), False, end - start + 1


# rows one merged move sends at most: its statement journal (in memory during the replay:
# statement_journals_in_memory) holds the pages it changes that existed before it
MOVE_ROWS = 100_000
_SAVEPOINTS = re.compile(r"\s*(?:SAVEPOINT|RELEASE|ROLLBACK\s+TO)\b", re.IGNORECASE)


def _parents(driver: Any) -> dict[str, set[str]]:
    """For each table, the tables its foreign keys refer to (but itself)."""
    tables = [
        name for (name,) in driver.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
    ]
    parents: dict[str, set[str]] = {}
    for table in tables:
        for key in driver.execute(f'PRAGMA foreign_key_list("{table}")').fetchall():
            if key[2].lower() != table.lower():
                parents.setdefault(table.lower(), set()).add(key[2].lower())
    return parents


def _execute(connection: Connection, statement: str, parameters: Any, many: bool) -> int:
    result = connection.exec_driver_sql(statement, parameters)
    if result.returns_rows:
        result.fetchall()
    return result.rowcount


@contextmanager
def statement_journals_in_memory(connection: Connection) -> Iterator[None]:
    """Keep ``connection``'s statement journals in memory while the block runs (open and
    close it outside a transaction: SQLite refuses the change within one, and a change drops
    the connection's temporary tables: the replay makes none).

    Each INSERT ... SELECT of the replay moves many rows and may fail part-way (a key, a
    foreign key), so SQLite writes the former content of every page it changes that the
    transaction had changed before into a statement journal, a temporary file: the replay of a
    first import of 20,000 users in 10 classes each wrote 1.2 GB for a database of 390 MB
    (issue 15). In memory the journal of one statement is at most the pages it changes, and
    the file is never written."""
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA temp_store = MEMORY")
    try:
        yield
    finally:
        with suppress(sqlite3.Error):  # a broken connection: the pool discards it
            driver.execute("PRAGMA temp_store = DEFAULT")


def detach(connection: Connection) -> None:
    """Detach the copy :func:`replay` attached, after its transaction (SQLite cannot detach
    a database within one); the connection is dropped from the pool if that fails."""
    driver = connection.connection.driver_connection
    assert driver is not None
    try:
        attached = driver.execute("PRAGMA database_list").fetchall()
        if any(row[1] == COPY_SCHEMA for row in attached):
            driver.execute(f"DETACH DATABASE {COPY_SCHEMA}")
    except sqlite3.Error:
        connection.invalidate()
