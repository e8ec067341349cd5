"""Issue 11 item 6: what other writers meet while an import is *writing*.

``test_write_lock.py`` shows that reading the file takes no lock. Once the rows are read, the
import writes them in one atomic transaction, and then the database decides:

- PostgreSQL locks only the rows the import writes: a SCIM create of another user commits
  while the import's transaction is still open, and the import holds no table lock stronger
  than ``ROW EXCLUSIVE`` (the lock every INSERT/UPDATE takes, which blocks no other writer).
- SQLite has one writer at a time: the import prepares its writes on a private copy of the
  database and holds the write lock only while it replays them, so a SCIM write meanwhile
  succeeds at once (README "SQLite's write lock during an import"); a write that must wait
  for the lock answers 503 with ``Retry-After`` (``tests/ops/test_busy_database.py``).

The import is held half-way through its write transaction by its progress callback, which
the engine calls with the rows handled so far after every batch it has written (and with 0
while it reads the file).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from server.app import create_app
from server.db import User
from server.db.session import Database
from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.import_runs import RunStatus
from tests.imports.held import HeldImport
from tests.imports.packages import district, package

# these imports are short: every write phase is prepared on a copy, as a long one is
pytestmark = pytest.mark.usefixtures("prepared_always")

SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
STUDENTS = 1200  # several batches of users and enrollments: the hold comes mid-way


@pytest.fixture
def scim_token(tenancy) -> str:
    with tenancy.database.session() as session:
        return create_connection(session, system_actor(tenancy.tenant_id), "Entra", "scim").token


@pytest.fixture
def district_zip(tmp_path: Path) -> Path:
    return package(tmp_path / "district.zip", "1.1", district(students=STUDENTS))


def _create(client: TestClient, token: str, user_name: str):
    return client.post(
        "/scim/v2/Users",
        json={"schemas": [SCIM_USER], "userName": user_name},
        headers={"Authorization": f"Bearer {token}"},
    )


def _locks_held_by_others(database: Database) -> Callable[[], list[tuple[str, str]]]:
    """(table, lock mode) of every relation lock held by other backends, seen from outside."""

    def read() -> list[tuple[str, str]]:
        with database.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT c.relname, l.mode FROM pg_locks l "
                    "JOIN pg_class c ON c.oid = l.relation "
                    "WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid() "
                    "AND c.relkind = 'r' ORDER BY c.relname, l.mode"
                )
            )
            return [(name, mode) for name, mode in rows]

    return read


def test_on_postgresql_other_writers_go_on_while_an_import_writes(
    tenancy, settings, database, database_url, scim_token, district_zip
):
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's row locks; SQLite is the next test")
    app = create_app(settings, database=database)
    with HeldImport(tenancy, district_zip, at=STUDENTS) as held, TestClient(app) as client:
        locks = _locks_held_by_others(database)()
        made = _create(client, scim_token, "during-the-import@school.example")
        assert not held.outcome, "the import finished before the SCIM write: hold it longer"
    assert made.status_code == 201, made.text
    # the import wrote rows (it holds ROW EXCLUSIVE on them), but locked no table against others
    assert ("users", "RowExclusiveLock") in locks, locks
    stronger = [(name, mode) for name, mode in locks if mode not in WEAK_TABLE_LOCKS]
    assert stronger == [], stronger
    report = held.report()
    assert report.status == RunStatus.APPLIED, report.summary
    assert tenancy.count(User) == STUDENTS + 1 + 1  # the students, the teacher, the SCIM user


# PostgreSQL's table-level modes that conflict with no INSERT/UPDATE/DELETE of other rows
# ShareUpdateExclusiveLock: an import's ANALYZE of a table it filled (server.db.statistics);
# it conflicts only with VACUUM, ANALYZE, CREATE INDEX and schema changes, never with a read
# or a write (PostgreSQL's "Explicit Locking" table)
WEAK_TABLE_LOCKS = {
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
}


def test_on_sqlite_a_write_meanwhile_is_answered_at_once(
    tenancy, settings, scim_token, district_zip
):
    """SQLite: the import prepares its writes on a private copy and takes the write lock only
    to replay them (``server/imports/prepared.py``, more in ``test_prepared_writes.py``)."""
    if not tenancy.database.url.startswith("sqlite"):
        pytest.skip("SQLite's single write lock; PostgreSQL locks rows (the test above)")
    impatient = Database(tenancy.database.url, busy_timeout=0.3)
    try:
        app = create_app(settings, database=impatient)
        with TestClient(app) as client, HeldImport(tenancy, district_zip, at=STUDENTS) as held:
            made = _create(client, scim_token, "during-the-import@school.example")
            assert not held.outcome
    finally:
        impatient.dispose()
    assert made.status_code == 201, made.text
    assert held.report().status == RunStatus.APPLIED, held.report().summary
    assert tenancy.count(User) == STUDENTS + 1 + 1
