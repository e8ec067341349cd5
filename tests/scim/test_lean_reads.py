"""Issue 15: a SCIM lookup is one read on a Core connection, without the ORM's session.

The lookups identity providers send before every write (``userName eq``, ``externalId eq``, a
read by id) were already one SELECT, but each ran inside an ORM session's unit of work (the
session, its transaction, its commit and close: more CPU than the SELECT) in a worker thread.
Counted here, never timed: ORM transactions begun, statements, and the thread the SELECT ran
on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.orm import Session

from server.db.session import Database
from tests.scim.helpers import IdP, statements

LOOKUPS = (
    ("/Users", {"filter": 'userName eq "lean.pupil"'}),
    ("/Users", {"filter": 'externalId eq "sis-lean"'}),
)


@contextmanager
def _orm_transactions() -> Iterator[list[object]]:
    """The ORM session transactions begun meanwhile, in any thread."""
    begun: list[object] = []

    def note(session: Session, transaction: object) -> None:
        begun.append(transaction)

    event.listen(Session, "after_transaction_create", note)
    try:
        yield begun
    finally:
        event.remove(Session, "after_transaction_create", note)


def test_a_lookup_begins_no_orm_session(idp: IdP, database: Database) -> None:
    pupil = idp.create_user("lean.pupil", externalId="sis-lean")  # the token is cached now
    for path, params in [*LOOKUPS, (f"/Users/{pupil['id']}", {})]:
        with _orm_transactions() as begun, statements(database) as seen:
            found = idp.get(path, params=params)
        assert found.status_code == 200, found.text
        assert (found.json().get("Resources") or [found.json()])[0]["id"] == pupil["id"]
        assert begun == [], path
        # BEGIN is a statement on SQLite only (psycopg begins without one)
        assert [s.split(" ", 1)[0] for s in seen if s != "BEGIN"] == ["SELECT"], seen


def test_a_lookup_that_finds_nothing_still_answers_as_before(idp: IdP) -> None:
    idp.create_user("lean.pupil", externalId="sis-lean")
    missing = idp.get("/Users", params={"filter": 'userName eq "nobody"'})
    assert missing.status_code == 200 and missing.json()["totalResults"] == 0, missing.text
    unknown = idp.get("/Users/no-such-user")
    assert unknown.status_code == 404 and unknown.json()["status"] == "404", unknown.text


def test_a_lookup_on_sqlite_reads_on_the_event_loops_thread(idp: IdP, database: Database) -> None:
    """On SQLite the lookup's SELECT runs where the request is served (a read in WAL mode
    never waits for a writer): the hop to a worker thread and back, and its waits for the GIL,
    were the tail of lookups in flight together. PostgreSQL's reads stay in worker threads."""
    idp.create_user("lean.pupil", externalId="sis-lean")
    on_loop: list[bool] = []

    def note(*_: object) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            on_loop.append(False)
        else:
            on_loop.append(True)

    event.listen(database.engine, "before_cursor_execute", note)
    try:
        for path, params in LOOKUPS:
            assert idp.get(path, params=params).json()["totalResults"] == 1
    finally:
        event.remove(database.engine, "before_cursor_execute", note)
    sqlite = database.engine.dialect.name == "sqlite"
    assert on_loop and set(on_loop) == {sqlite}, on_loop
