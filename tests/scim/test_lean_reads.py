"""Issue 15: a SCIM lookup is one read on a Core connection, without the ORM's session.

The lookups identity providers send before every write (``userName eq``, ``externalId eq``, a
read by id) were already one SELECT, but each ran inside an ORM session's unit of work (the
session, its transaction, its commit and close: more CPU than the SELECT). Counted here, never
timed: ORM transactions begun and statements.
"""

from __future__ import annotations

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
