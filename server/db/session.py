"""Engines and sessions: SQLite in WAL mode with foreign keys, or PostgreSQL, same code.

One session per request or CLI command: ``with database.session() as session:`` commits on
success and rolls back on any error, so a failed request never leaves half a change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker


def create_database_engine(url: str, **options: Any) -> Engine:
    """Create an engine; SQLite connections get WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **options
        )
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_sqlite_immediately)
        return engine
    return create_engine(url, pool_pre_ping=True, **options)


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is turned off so that "begin" below decides.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Search columns are stored case-folded; a case-sensitive LIKE lets a prefix search use
    # their indexes instead of scanning the table.
    cursor.execute("PRAGMA case_sensitive_like=ON")
    cursor.close()


def _begin_sqlite_immediately(connection: Any) -> None:
    # BEGIN IMMEDIATE takes the write lock up front: two writers queue on busy_timeout
    # instead of failing with "database is locked" when a reader upgrades to a writer.
    # An AUTOCOMMIT connection (the health check) only reads: it must not wait for a writer.
    if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """An engine and its session factory."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.engine = create_database_engine(url, **options)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commit on success, roll back on error."""
        with self.sessions.begin() as session:
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
        self.engine.dispose()
