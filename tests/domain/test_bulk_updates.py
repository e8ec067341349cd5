"""Changed records of one kind written at once (``server.domain.bulk_updates``, issue 15):
one statement for the batch, every version checked and bumped, the values stored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from server.db import User
from server.db.bulk_insert import insert_dicts
from server.db.session import Database
from server.domain.actors import Actor
from server.domain.bulk_updates import write_changes
from tests.domain.test_bulk_insert import _connection_id, _user

LATER = datetime(2026, 5, 6, 7, 8, 9, 123456, UTC)


def _users(session: Session, system: Actor, count: int) -> list[User]:
    connection_id = _connection_id(session, system)
    insert_dicts(
        session,
        User.__table__,
        [_user(system.tenant_id, connection_id, f"u{n:03}") for n in range(count)],
    )
    return list(session.scalars(select(User).order_by(User.username)))


def test_a_batch_of_changes_is_one_statement_that_bumps_each_version(
    database: Database, session: Session, system: Actor
) -> None:
    """PostgreSQL runs the roster triggers once per statement and psycopg 3's
    ``executemany`` sends one statement per row: 200 deactivations ran them 200 times."""
    users = _users(session, system, 210)
    changes = text("SELECT count(*) FROM roster_changes WHERE tenant_id = :t")
    before = session.scalar(changes, {"t": system.tenant_id}) or 0
    sent: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        sent.append(statement.split(" SET ")[0])

    for user in users[:200]:
        user.status, user.updated_at = "inactive", LATER
    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        write_changes(session, users[:200], ("status", "updated_at"))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert sent == ["UPDATE users"]
    assert [user.version for user in users] == [2] * 200 + [1] * 10
    session.expire_all()
    stored = session.execute(
        select(User.status, User.version, User.updated_at).order_by(User.username)
    )
    assert [tuple(row) for row in stored] == [("inactive", 2, LATER)] * 200 + [
        ("active", 1, users[-1].updated_at)
    ] * 10
    if session.get_bind().dialect.name == "postgresql":
        assert (session.scalar(changes, {"t": system.tenant_id}) or 0) - before <= 1


def test_a_record_changed_meanwhile_fails_the_batch(
    database: Database, session: Session, system: Actor
) -> None:
    users = _users(session, system, 3)
    session.execute(text("UPDATE users SET version = 5 WHERE id = :id"), {"id": users[1].id})
    for user in users:
        user.status = "inactive"
    with pytest.raises(StaleDataError, match="1 of 3 users rows changed meanwhile"):
        write_changes(session, users, ("status",))
    session.rollback()  # the objects hold changes the database refused
