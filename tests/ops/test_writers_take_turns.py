"""Issue 15 (SCIM speed, item 2): the writes of one process take turns on SQLite.

SQLite hands its write lock to nobody: a second ``BEGIN IMMEDIATE`` sleeps in SQLite's busy
handler (sleeps growing to 100 ms) and looks again, so eight SCIM writes in flight spent most
of their latency asleep after the lock was already free (``bench/README.md``). Write units of
work now wait for each other in the process, before ``BEGIN IMMEDIATE``, and are woken as
soon as the one before commits; reads never wait, and a write kept waiting past the busy
timeout still answers 503.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import event, text

from server.db.session import Database
from server.errors import DatabaseUnavailable

ENOUGH = 5.0  # seconds a thread is given to reach a point it reaches at once when it can


@pytest.fixture
def sqlite_database(database: Database) -> Iterator[Database]:
    """A second handle on the test database, with its own engine (and its own writers)."""
    if database.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL locks rows: its writers never queue for the database")
    handle = Database(database.url, busy_timeout=ENOUGH)
    yield handle
    handle.dispose()


def _begins(database: Database) -> list[str]:
    """The name of the thread of every ``BEGIN`` sent to SQLite (recorded as it is sent: a
    ``BEGIN IMMEDIATE`` may then wait in SQLite's busy handler)."""
    names: list[str] = []

    def sent(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("BEGIN"):
            names.append(threading.current_thread().name)

    event.listen(database.engine, "before_cursor_execute", sent)
    return names


def test_a_second_write_waits_in_the_process_and_starts_once_the_first_commits(
    sqlite_database: Database,
) -> None:
    begins = _begins(sqlite_database)
    first_wrote, first_may_commit = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def first() -> None:
        with sqlite_database.session() as session:
            session.execute(text("UPDATE tenants SET name = name"))
            first_wrote.set()
            first_may_commit.wait(ENOUGH)

    def second() -> None:
        with sqlite_database.session() as session:
            session.execute(text("UPDATE tenants SET name = name"))
        outcome["second"] = "committed"

    one = threading.Thread(target=first, name="first")
    one.start()
    assert first_wrote.wait(ENOUGH)
    two = threading.Thread(target=second, name="second")
    two.start()
    two.join(0.5)  # the second write is given time to reach SQLite, if it could
    assert begins == ["first"], "the second write began a transaction while the first held it"
    with sqlite_database.session(read_only=True) as session:  # reads still go through
        assert session.execute(text("SELECT 1")).scalar() == 1
    first_may_commit.set()
    one.join(ENOUGH)
    two.join(ENOUGH)
    assert outcome == {"second": "committed"}
    assert begins == ["first", "MainThread", "second"]


def test_a_write_kept_waiting_past_the_busy_timeout_is_refused_as_busy(
    database: Database,
) -> None:
    if database.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL locks rows: its writers never queue for the database")
    impatient = Database(database.url, busy_timeout=0.2)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with impatient.session() as session:
            session.execute(text("UPDATE tenants SET name = name"))
            holding.set()
            release.wait(ENOUGH)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(ENOUGH)
        with pytest.raises(DatabaseUnavailable, match="busy"), impatient.session() as session:
            session.execute(text("UPDATE tenants SET name = name"))
    finally:
        release.set()
        holder.join(ENOUGH)
        impatient.dispose()
