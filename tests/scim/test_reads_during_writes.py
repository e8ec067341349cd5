"""An identity provider's lookups keep answering while another unit of work writes.

On SQLite every unit of work took the write lock up front (BEGIN IMMEDIATE), so a SCIM lookup
queued behind whatever was writing (a long import, a PATCH of a 5,000-member group) and, past
the busy timeout, answered 503. Issue 15's benchmark saw those 503s at 8 concurrent requests.
A read (GET) now reads from its own snapshot without the lock (WAL lets readers and one writer
work at once); writes still queue for the lock as before.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from server.app import create_app
from server.config import Settings
from server.db.session import Database
from tests.scim.conftest import District
from tests.scim.helpers import IdP


@pytest.fixture
def impatient(settings: Settings, database: Database) -> Iterator[TestClient]:
    """The app over a database that waits at most half a second for SQLite's write lock."""
    quick = Database(database.url, busy_timeout=0.5)
    with TestClient(create_app(settings, database=quick)) as client:
        yield client
    quick.dispose()


@pytest.mark.sqlite_only  # SQLite's write lock: PostgreSQL readers never wait for writers
def test_a_lookup_answers_while_another_unit_of_work_holds_the_write_lock(
    impatient: TestClient, database: Database, district: District
) -> None:
    idp = IdP(impatient, district.token)
    pupil = idp.create_user("pupil@school.example", externalId="sis-7")
    with database.engine.connect() as writer:
        writer.execute(text("UPDATE tenants SET name = name"))  # takes and holds the lock
        found = idp.get("/Users", params={"filter": 'externalId eq "sis-7"'})
        read = idp.get(f"/Users/{pupil['id']}")
        change = idp.patch(
            f"/Users/{pupil['id']}", {"op": "replace", "path": "displayName", "value": "P"}
        )
        writer.rollback()
    assert found.status_code == 200 and found.json()["Resources"][0]["id"] == pupil["id"]
    assert read.status_code == 200
    # a write still waits for the lock, and says so once the wait is over
    assert change.status_code == 503
