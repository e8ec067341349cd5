"""SQLite's WAL is checkpointed beside the requests, not inside their commits (issue 15).

At ``wal_autocheckpoint`` = 1,000 pages, one SCIM create in 17 copied the WAL back into the
database (and waited for its fsync) before it answered: the p99 of creates. Counted, never
timed: the bound a request's commit checkpoints at, and the checkpoints the thread ran.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from server.db.checkpoints import AUTOCHECKPOINT_PAGES
from server.db.migrate import upgrade
from server.db.session import Database
from server.domain.tenants import create_tenant

pytestmark = pytest.mark.sqlite_only


def test_a_commit_checkpoints_only_past_the_bound(database: Database) -> None:
    with database.engine.connect() as connection:
        bound = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one()
    assert bound == AUTOCHECKPOINT_PAGES >= 10_000


def test_the_write_units_of_work_are_checkpointed_by_a_thread(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'wal.sqlite3'}")
    upgrade(database.engine)
    checkpointer = database.checkpointer
    assert checkpointer is not None
    for number in range(checkpointer.every):  # one checkpoint asked for
        with database.session() as session:
            create_tenant(session, f"Tenant {number}")
    thread = checkpointer.thread
    assert thread is not None and thread.name == "rollcall-checkpoint"
    waited = 0
    while checkpointer.checkpoints == 0 and waited < 600:  # a wait, not a timing: up to 30 s
        threading.Event().wait(0.05)
        waited += 1
    assert checkpointer.checkpoints == 1
    for _ in range(2 * checkpointer.every):  # a read-only unit of work asks for none
        with database.session(read_only=True) as session:
            session.execute(text("SELECT 1"))
    assert checkpointer.checkpoints == 1
    database.dispose()
    assert not thread.is_alive()
