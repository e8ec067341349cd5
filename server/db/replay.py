"""Private copies of a SQLite database, and the writes made on one replayed on the original.

SQLite has one writer at a time. A long write (an import) can be *prepared* on a private copy
of the database, taken with SQLite's online backup API (a reader: it takes no write lock), while
a :class:`Recorder` notes every statement that writes, in order, with its parameters and the
number of rows it changed. :func:`replay` then runs those statements on the original inside its
write transaction and checks each one changed as many rows as on the copy; the caller checks
first that nothing the preparation read has changed since the copy was taken.

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


@dataclass
class Recorder:
    """The writing statements run on an engine, in order, spooled to a temporary file (memory
    stays flat): SQL, parameters (an ``executemany`` list too) and the rows each changed.
    What a savepoint rolled back is dropped (it had no effect). ``ignored``: tables whose writes
    are not kept (temporary tables of the preparation)."""

    ignored: frozenset[str] = frozenset()
    count: int = 0
    unrecorded_write: str | None = None
    _file: IO[bytes] = field(default_factory=tempfile.TemporaryFile)
    _savepoints: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def before(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info["replay_changes"] = cursor.connection.total_changes

    def after(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        # SQLAlchemy says "many" for an INSERT of many rows it sent as one statement too
        many = many and bool(parameters) and isinstance(parameters[0], (list, tuple, dict))
        written = WRITE_STATEMENT.match(statement)
        if written is not None:
            if written.group(1).lower() in self.ignored:
                return
            returning = re.search(r"\bRETURNING\b", statement, re.IGNORECASE) is not None
            self._write(statement, parameters, many, None if returning else cursor.rowcount)
            return
        if self._savepoint(statement, parameters, many):
            return
        if cursor.connection.total_changes != conn.info.get("replay_changes"):
            self.unrecorded_write = self.unrecorded_write or statement[:200]

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
            self._write(statement, parameters, many, None)
            return True
        if released := _RELEASE.match(statement):
            marks = self._savepoints.get(released.group(1))
            if marks:
                marks.pop()
            self._write(statement, parameters, many, None)
            return True
        return False

    def _write(self, statement: str, parameters: Any, many: bool, rowcount: int | None) -> None:
        self._file.seek(0, 2)
        kept = [_plain(one) for one in parameters] if many else _plain(parameters)
        entry = (statement, kept, many, rowcount)
        pickle.dump(entry, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.count += 1

    def statements(self) -> Iterator[tuple[str, Any, bool, int | None]]:
        """The recorded statements, in order."""
        self._file.seek(0)
        end = os.fstat(self._file.fileno()).st_size
        while self._file.tell() < end:
            yield pickle.load(self._file)  # our own temporary file

    def close(self) -> None:
        self._file.close()


def _plain(parameters: Any) -> Any:
    """One statement's parameters as SQLAlchemy takes them back: a dict or a tuple."""
    return parameters if isinstance(parameters, dict) else tuple(parameters or ())


@contextmanager
def recording(engine: Engine, ignored: frozenset[str] = frozenset()) -> Iterator[Recorder]:
    """Record the writing statements run on ``engine`` while the block runs."""
    recorder = Recorder(ignored=frozenset(name.lower() for name in ignored))
    event.listen(engine, "before_cursor_execute", recorder.before)
    event.listen(engine, "after_cursor_execute", recorder.after)
    try:
        yield recorder
    finally:
        event.remove(engine, "before_cursor_execute", recorder.before)
        event.remove(engine, "after_cursor_execute", recorder.after)


def replay(connection: Connection, recorder: Recorder) -> int:
    """Run the recorded statements on ``connection`` (in its open transaction, through
    SQLAlchemy so that its statement hooks see them as any write); returns how many.

    :raises ReplayMismatch: a statement changed another number of rows than on the copy.
    """
    done = 0
    for statement, parameters, many, rowcount in recorder.statements():
        changed = _execute(connection, statement, parameters, many)
        if rowcount is not None and changed != rowcount:
            raise ReplayMismatch(
                f"statement {done + 1} changed {changed} rows, {rowcount} on the copy: "
                f"{' '.join(statement.split())[:200]}"
            )
        done += 1
    return done


def _execute(connection: Connection, statement: str, parameters: Any, many: bool) -> int:
    result = connection.exec_driver_sql(statement, parameters)
    if result.returns_rows:
        result.fetchall()
    return result.rowcount
