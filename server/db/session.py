"""Engines and sessions: SQLite in WAL mode with foreign keys, or PostgreSQL, same code.

One session per request or CLI command: ``with database.session() as session:`` commits on
success and rolls back on any error, so a failed request never leaves half a change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.orm import Session, sessionmaker

from server.db.checkpoints import AUTOCHECKPOINT_PAGES, Checkpointer
from server.errors import DatabaseUnavailable

log = logging.getLogger("rollcall.db")

# SQLSTATEs that a retry can cure: lock timeout, statement timeout, server shutting down or
# starting, and the connection exceptions (class 08).
_RETRYABLE_SQLSTATES = {"55P03", "57014", "57P01", "57P02", "57P03"}
_SQLITE_BUSY = ("database is locked", "database table is locked", "unable to open database")


def unavailable_reason(error: Exception) -> str | None:
    """Why ``error`` means "busy or unreachable, retry later", or None if retrying cannot help.

    >>> unavailable_reason(OperationalError("INSERT", {}, Exception("database is locked")))
    'busy: database is locked'
    >>> unavailable_reason(OperationalError("SELECT", {}, Exception("too many SQL variables")))
    """
    if isinstance(error, SATimeoutError):
        return "busy: no free database connection"
    original = getattr(error, "orig", None)
    text_ = str(original or error).strip().splitlines()[0] if str(original or error) else ""
    if getattr(error, "connection_invalidated", False):
        return f"unreachable: {text_}"
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if sqlstate:
        if sqlstate in _RETRYABLE_SQLSTATES:
            return f"busy: {text_}"
        return f"unreachable: {text_}" if sqlstate.startswith("08") else None
    if type(original).__module__.startswith("psycopg"):
        # psycopg raises connection failures (refused, reset, server gone) without a SQLSTATE
        return f"unreachable: {text_}"
    if any(marker in text_.lower() for marker in _SQLITE_BUSY):
        return f"busy: {text_}"
    return None


DEFAULT_BUSY_TIMEOUT = 10.0
DEFAULT_SLOW_QUERY_MS = 500.0


def create_database_engine(
    url: str,
    *,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    slow_query_ms: float | None = DEFAULT_SLOW_QUERY_MS,
    **options: Any,
) -> Engine:
    """An engine for ``url`` (see :func:`_create_engine`), logging statements slower than
    ``slow_query_ms`` (None: none)."""
    engine = _create_engine(url, busy_timeout, **options)
    if slow_query_ms is not None:
        log_slow_queries(engine, slow_query_ms)
    return engine


def log_slow_queries(engine: Engine, threshold_ms: float) -> None:
    """Log every statement slower than ``threshold_ms`` (its SQL, never its parameters: they
    may hold personal data), with the request id of the request that ran it."""

    def started(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info.setdefault("query_started", []).append(time.perf_counter())

    def finished(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        elapsed = (time.perf_counter() - conn.info["query_started"].pop()) * 1000
        if elapsed >= threshold_ms:
            log.warning(
                "slow query",
                extra={"duration_ms": round(elapsed, 1), "sql": " ".join(statement.split())[:500]},
            )

    def failed(context: Any) -> None:
        stack = context.connection.info.get("query_started") if context.connection else None
        if stack:
            stack.pop()

    event.listen(engine, "before_cursor_execute", started)
    event.listen(engine, "after_cursor_execute", finished)
    event.listen(engine, "handle_error", failed)


def _as_list(value: str | tuple[str, ...] | None) -> list[str]:
    return [value] if isinstance(value, str) else list(value or ())


def _create_engine(url: str, busy_timeout: float, **options: Any) -> Engine:
    """Create an engine; SQLite connections get WAL, foreign keys and a busy timeout.

    ``busy_timeout`` (seconds) bounds how long a request waits for a lock before the database
    counts as busy: SQLite's write lock, PostgreSQL's row and table locks; on PostgreSQL it
    also bounds connecting to a server that does not answer.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": busy_timeout},
            **options,
        )
        event.listen(engine, "connect", partial(_configure_sqlite_connection, busy_timeout))
        event.listen(engine, "begin", _begin_sqlite_immediately)
        return engine
    milliseconds = int(busy_timeout * 1000)
    # connect_args' options replace the URL's own (a search_path, say): keep both.
    given = make_url(url).query.get("options")
    connect_args = {
        "connect_timeout": max(1, int(busy_timeout)),
        "options": " ".join([f"-c lock_timeout={milliseconds}", *_as_list(given)]),
    }
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **options)


def _configure_sqlite_connection(busy_timeout: float, dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is turned off so that "begin" below decides.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    # A request's commit no longer checkpoints every 1,000 pages: the Checkpointer's thread does
    # (server/db/checkpoints.py); this is the WAL's bound if it falls behind.
    cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
    # Search columns are stored case-folded; a case-sensitive LIKE lets a prefix search use
    # their indexes instead of scanning the table.
    cursor.execute("PRAGMA case_sensitive_like=ON")
    cursor.close()


def _begin_sqlite_immediately(connection: Any) -> None:
    # BEGIN IMMEDIATE takes the write lock up front: two writers queue on busy_timeout
    # instead of failing with "database is locked" when a reader upgrades to a writer.
    # An AUTOCOMMIT connection (the health check) only reads: it must not wait for a writer.
    # A read-only unit of work (Database.session(read_only=True)) reads its own snapshot
    # (WAL) without the lock, so it never queues behind a writer.
    options = connection.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        return
    connection.exec_driver_sql("BEGIN" if options.get(READ_ONLY) else "BEGIN IMMEDIATE")


READ_ONLY = "rollcall_read_only"
# What a read runs on: a unit of work's session, or a read-only Core connection (a lookup's:
# :meth:`Database.read_connection`, no ORM session around one SELECT).
Reader = Session | Connection


def connection_of(reader: Reader) -> Connection:
    """The Core connection a read runs its statement on."""
    return reader if isinstance(reader, Connection) else reader.connection()


@contextmanager
def _unavailable_as_503() -> Iterator[None]:
    """Raise a busy or unreachable database's errors as :class:`DatabaseUnavailable`."""
    try:
        yield
    except (OperationalError, InterfaceError, SATimeoutError) as error:
        reason = unavailable_reason(error)
        if reason is None:
            raise
        log.warning("database unavailable", extra={"reason": reason})
        raise DatabaseUnavailable(reason) from error


class Database:
    """An engine and its session factory.

    On SQLite, the write units of work of this process take turns on :attr:`writer` before
    ``BEGIN IMMEDIATE``: a writer that finds SQLite's write lock taken sleeps in SQLite's busy
    handler (sleeps growing to 100 ms) and is not woken when the lock is freed, so writes in
    flight together queued mostly in those sleeps; a Python lock hands over at once. SQLite's
    busy timeout still covers the other processes (``rollcall import``, a second server);
    PostgreSQL locks rows, not the database, and takes no turns.
    """

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.busy_timeout = float(options.get("busy_timeout", DEFAULT_BUSY_TIMEOUT))
        self.engine = create_database_engine(url, **options)
        # Reentrant: a unit of work may open another one in its thread before it writes.
        self.writer = threading.RLock() if url.startswith("sqlite") else None
        self.checkpointer = _checkpointer(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.reader = self.engine.execution_options(**{READ_ONLY: True})
        self.read_sessions = sessionmaker(
            self.reader, expire_on_commit=False, info={READ_ONLY: True}
        )

    @contextmanager
    def session(self, *, read_only: bool = False) -> Iterator[Session]:
        """A unit of work: commit on success, roll back on error.

        ``read_only``: a unit of work that only reads. On SQLite it does not take the write
        lock, so it never waits for a writer; a write in it fails unless no other write
        committed since it began (check ``session.info[READ_ONLY]`` before writing).

        :raises DatabaseUnavailable: the database is busy or unreachable (see
            :func:`unavailable_reason`); the unit of work was rolled back.
        """
        if read_only or self.writer is None:
            with self._unit_of_work(read_only=read_only) as session:
                yield session
            return
        if not self.writer.acquire(timeout=self.busy_timeout):
            reason = "busy: the other writes of this process held the database"
            log.warning("database unavailable", extra={"reason": reason})
            raise DatabaseUnavailable(reason)
        try:
            with self._unit_of_work(read_only=False) as session:
                yield session
            if self.checkpointer is not None:
                self.checkpointer.committed()
        finally:
            self.writer.release()

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A read on a Core connection, without an ORM session: a read-only transaction
        (as :meth:`session` with ``read_only``) that begins with its first statement and is
        rolled back at the end (issue 15: a lookup's Session frame cost more than its SELECT).

        :raises DatabaseUnavailable: the database is busy or unreachable.
        """
        with _unavailable_as_503(), self.reader.connect() as connection:
            yield connection

    @contextmanager
    def _unit_of_work(self, *, read_only: bool) -> Iterator[Session]:
        factory = self.read_sessions if read_only else self.sessions
        with _unavailable_as_503(), factory.begin() as session:
            yield session

    def is_reachable(self) -> bool:
        try:
            with self.engine.connect() as connection:
                # a read outside any transaction: answers while a long import holds SQLite's
                # write lock (issue 11: /healthz must answer during a big import)
                connection.execution_options(isolation_level="AUTOCOMMIT")
                connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def dispose(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.engine.dispose()


def _checkpointer(url: str) -> Checkpointer | None:
    """The WAL checkpointer of a SQLite database file (none in memory, none on PostgreSQL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Checkpointer(parsed.database)
