"""The bulk insert of imports (issue 15) stores exactly what SQLAlchemy's Core insert stores:
the same bytes in every column (SQLite's datetime text, JSON text, booleans, dates, nulls),
read back alike through the ORM, with one ``executemany`` per call."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, insert, select, text
from sqlalchemy.orm import Session

from server.db import AuditEvent, Credential, User, new_id
from server.db.bulk_insert import JSONText, insert_dicts, insert_rows, update_rows
from server.db.session import Database
from server.domain import audit
from server.domain.actors import Actor
from server.domain.connections import create_connection

AT = datetime(2026, 3, 4, 5, 6, 7, 890123, UTC)
ELSEWHERE = datetime(2026, 3, 4, 7, 6, 7, 0, timezone(timedelta(hours=2)))  # 05:06:07 UTC


def _user(tenant_id: str, connection_id: str, name: str, **given: Any) -> dict[str, Any]:
    """Every column of ``users``: JSON, DateTime (one in another zone, one null), Date,
    nullable strings."""
    made = new_id()
    return {
        column.key: None for column in User.__table__.columns
    } | {
        "id": made, "tenant_id": tenant_id, "connection_id": connection_id,
        "sourced_id": f"s-{name}", "username": name, "username_folded": name,
        "given_name": "Ann", "family_name": "Ölçer", "given_folded": "ann",
        "family_folded": "ölçer", "primary_role": "student", "birth_date": date(2012, 1, 9),
        "demographic_flags": {"hispanicOrLatinoEthnicity": True},
        "extra": {"phone": "1", "nested": {"a": [1, 2.5, None]}, "é": "ü"},
        "status": "active", "created_at": AT, "updated_at": ELSEWHERE, "deleted_at": None,
        "purge_after": datetime(2027, 1, 1, tzinfo=UTC), "version": 1,
    } | given  # fmt: skip


def _stored(session: Session, table: str, key: str, value: str) -> tuple[Any, ...]:
    """The row as the driver returns it (SQLite: the stored text itself)."""
    return tuple(
        session.execute(text(f"SELECT * FROM {table} WHERE {key} = :v"), {"v": value}).one()
    )


def _connection_id(session: Session, system: Actor) -> str:
    return create_connection(session, system, "SIS", "oneroster").connection.id


def test_users_written_in_bulk_store_what_a_core_insert_stores(
    database: Database, session: Session, system: Actor
) -> None:
    connection_id = _connection_id(session, system)
    core = _user(system.tenant_id, connection_id, "core")
    bulk = _user(system.tenant_id, connection_id, "bulk", id=core["id"][:-3] + "bbb")
    session.execute(insert(User.__table__), [core])  # type: ignore[arg-type]
    insert_dicts(session, User.__table__, [bulk])
    columns = [c.key for c in User.__table__.columns]
    by_core = dict(zip(columns, _stored(session, "users", "id", core["id"]), strict=True))
    by_bulk = dict(zip(columns, _stored(session, "users", "id", bulk["id"]), strict=True))
    differing = {"id", "sourced_id", "username", "username_folded"}
    assert {k: v for k, v in by_bulk.items() if k not in differing} == {
        k: v for k, v in by_core.items() if k not in differing
    }
    read = session.get(User, bulk["id"])
    assert read is not None
    assert read.updated_at == ELSEWHERE and read.created_at == AT and read.deleted_at is None
    assert read.extra == bulk["extra"] and read.birth_date == date(2012, 1, 9)
    # comparisons in SQL with the ORM's own parameters find both rows
    found = select(User.username).where(User.created_at == AT, User.updated_at <= AT)
    assert sorted(session.scalars(found)) == ["bulk", "core"]


def test_booleans_binary_and_nulls_match_the_core_insert(
    database: Database, session: Session, system: Actor
) -> None:
    connection_id = _connection_id(session, system)
    users = [_user(system.tenant_id, connection_id, name) for name in ("one", "two")]
    insert_dicts(session, User.__table__, users)
    core = {
        "user_id": users[0]["id"], "state": "pending", "password_hash": None,
        "must_change": True, "temporary_secret": b"\x00\xffsealed", "issued_at": ELSEWHERE,
        "activated_at": None, "updated_at": AT,
    }  # fmt: skip
    bulk = core | {"user_id": users[1]["id"]}
    session.execute(insert(Credential.__table__), [core])  # type: ignore[arg-type]
    insert_rows(session, Credential.__table__, tuple(bulk), [tuple(bulk.values())])
    stored_core = _stored(session, "credentials", "user_id", users[0]["id"])
    stored_bulk = _stored(session, "credentials", "user_id", users[1]["id"])
    assert stored_bulk[1:] == stored_core[1:]
    read = session.get(Credential, users[1]["id"])
    assert (
        read is not None
        and read.must_change is True
        and read.issued_at == AT - timedelta(microseconds=890123)
    )
    assert read.temporary_secret == b"\x00\xffsealed" and read.activated_at is None


def test_json_already_serialised_is_stored_as_the_generic_path_stores_the_value(
    database: Database, session: Session, system: Actor
) -> None:
    """The audit log's ``changes``, a null JSON value and an update by key."""
    changes = {"username": [None, "ann"], "extra.phone": ["1", "2"], "ok": [False, 3.5]}
    common = {
        "tenant_id": system.tenant_id, "at": AT, "actor_kind": "system", "actor_id": None,
        "actor_name": "t", "via": None, "action": "x", "target_kind": None, "target_id": None,
        "target_label": None, "detail": None, "override": False,
    }  # fmt: skip
    session.execute(insert(AuditEvent.__table__), [common | {"changes": changes}])  # type: ignore[arg-type]
    insert_dicts(
        session, AuditEvent.__table__, [common | {"changes": JSONText(json.dumps(changes))}]
    )
    stored = (
        session.connection()
        .exec_driver_sql("SELECT changes, at, override FROM audit_events ORDER BY id")
        .all()
    )
    assert stored[0] == stored[1]
    assert [e.changes for e in session.scalars(select(AuditEvent))] == [changes, changes]
    ids = session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()
    with audit.amending(session, "test"):
        update_rows(session, AuditEvent.__table__, ("detail",), "id", [("again", ids[1])])
    session.expire_all()
    assert [e.detail for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))] == [
        None,
        "again",
    ]


def test_a_thousand_rows_go_in_one_statement(
    database: Database, session: Session, system: Actor
) -> None:
    connection_id = _connection_id(session, system)
    users = [_user(system.tenant_id, connection_id, f"u{n}") for n in range(1000)]
    seen: list[tuple[str, int]] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        # rows sent: an executemany's parameter sets, or (PostgreSQL) the VALUES of one INSERT
        rows = len(parameters) if executemany else statement.count("), (") + 1
        seen.append((statement.split(" (")[0], rows))

    engine = session.get_bind()
    session.connection()
    event.listen(engine, "before_cursor_execute", count)
    try:
        insert_dicts(session, User.__table__, users)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert seen == [("INSERT INTO users", 1000)]
    assert session.scalar(text("SELECT count(*) FROM users")) == 1000


@pytest.mark.postgres_only
def test_a_batch_runs_the_roster_triggers_of_postgresql_once(
    database: Database, session: Session, system: Actor
) -> None:
    """PostgreSQL's roster triggers run once per statement (``roster_changed_<table>``: a row
    in ``roster_changes``, a count, a fold every 256); psycopg 3's ``executemany`` sends one
    statement per row, so a batch of 200 users ran them 200 times (issue 15: 317 s of server
    CPU for 9 s of the importing process in a 20k first import's users.csv)."""
    connection_id = _connection_id(session, system)
    users = [_user(system.tenant_id, connection_id, f"u{n}") for n in range(200)]
    changes = text("SELECT count(*) FROM roster_changes WHERE tenant_id = :t")
    before = session.scalar(changes, {"t": system.tenant_id})
    assert before < 50, "a fold (above 256 rows) would hide the count"
    insert_dicts(session, User.__table__, users)
    assert session.scalar(changes, {"t": system.tenant_id}) - before == 1
    assert session.scalar(text("SELECT count(*) FROM users")) == 200


def test_an_update_of_many_rows_is_one_statement_and_stores_each_row_s_values(
    database: Database, session: Session, system: Actor
) -> None:
    """``update_rows`` (the row hashes an import stores after its writes): PostgreSQL runs
    the roster triggers once per statement, and psycopg 3's ``executemany`` is one statement
    per row, so a batch goes in one ``UPDATE ... FROM (VALUES ...)`` there (issue 15); on
    SQLite one ``executemany``. Each row gets its own value, other rows none."""
    connection_id = _connection_id(session, system)
    users = [_user(system.tenant_id, connection_id, f"u{n}") for n in range(300)]
    insert_dicts(session, User.__table__, users)
    changes = text("SELECT count(*) FROM roster_changes WHERE tenant_id = :t")
    before = session.scalar(changes, {"t": system.tenant_id}) or 0
    sent: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        sent.append(statement.split(" SET ")[0])

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        hashes = [(f"h{n:03}", user["id"]) for n, user in enumerate(users[:250])]
        update_rows(session, User.__table__, ("content_hash",), "id", hashes)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert sent == ["UPDATE users"]
    stored = dict(session.execute(text("SELECT id, content_hash FROM users")).tuples().all())
    assert [stored[user["id"]] for user in users] == [f"h{n:03}" for n in range(250)] + [None] * 50
    if session.get_bind().dialect.name == "postgresql":
        assert (session.scalar(changes, {"t": system.tenant_id}) or 0) - before <= 1


@pytest.mark.parametrize("value", [datetime(2026, 1, 1), "2026-01-01"])
def test_a_naive_datetime_is_refused_as_by_the_orm(
    database: Database, session: Session, system: Actor, value: Any
) -> None:
    """A naive datetime (or a string) never reaches the database (``UTCDateTime``)."""
    connection_id = _connection_id(session, system)
    with pytest.raises((ValueError, TypeError, AttributeError)):
        insert_dicts(
            session, User.__table__, [_user(system.tenant_id, connection_id, "n", created_at=value)]
        )


def test_the_audit_log_in_bulk_stores_the_json_text_record_stores(
    database: Database, session: Session, system: Actor
) -> None:
    """``audit.record_many`` serialises each event's changes once, by itself: the text must
    be what ``audit.record`` has SQLAlchemy store (redaction, plain and nested values)."""
    changes = {
        "given_name": [None, "Zoë"],
        "birth_date": [None, date(2014, 5, 1)],
        "password": [None, "hunter2"],
        "grades": [["03"], ("04", 5, 1.5, True)],
        "extra.phone": ["1", None],
        "status": ["active", "inactive"],
    }
    for target, many_changes in (("empty", None), ("full", changes)):
        audit.record(session, system, "x", target_id=f"{target}-one", changes=many_changes)
        audit.record_many(
            session, system, "x", [{"target_id": f"{target}-many", "changes": many_changes}]
        )
    session.flush()
    rows = session.execute(text("SELECT target_id, changes FROM audit_events")).all()
    stored = {target_id: changes for target_id, changes in rows}
    assert stored["full-many"] == stored["full-one"] and stored["empty-many"] == stored["empty-one"]
    assert "hunter2" not in str(stored["full-many"])


def test_a_value_every_row_shares_is_converted_once_and_stored_alike(
    database: Database, session: Session, system: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cProfile of a first import at 20,000 users: a third of the bulk conversions made the
    same text again and again (a batch's one ``created_at`` per row, its ``None``s). A value
    that is one object in every row is converted once; the rows stored are the Core insert's,
    rows that differ in the column included."""
    from server.db import bulk_insert

    calls: list[Any] = []
    made = bulk_insert._converter

    def counting(dialect: Any, type_: Any) -> Any:
        convert = made(dialect, type_)
        if convert is None:
            return None

        def count(value: Any) -> Any:
            calls.append(value)
            return convert(value)

        return count

    monkeypatch.setattr(bulk_insert, "_converter", counting)
    monkeypatch.setattr(bulk_insert, "_PLANS", {})
    connection_id = _connection_id(session, system)
    rows = 200
    shared = [_user(system.tenant_id, connection_id, f"b{n}") for n in range(rows)]
    flags, born, purge = {"hispanicOrLatinoEthnicity": True}, date(2012, 1, 9), AT
    for n, row in enumerate(shared):
        row.update(demographic_flags=flags, birth_date=born, purge_after=purge)
        row["extra"] = {"n": n}  # differs per row: converted per row
    core = [
        # fresh ids: an id derived from its row's (the last three characters replaced) was that
        # row's own whenever it already ended so, 1 run in 20 at 200 rows (a duplicate key)
        row | {"id": new_id(), "sourced_id": f"c{n}", "username_folded": f"c{n}"}
        for n, row in enumerate(shared)
    ]
    insert_dicts(session, User.__table__, shared)
    assert len(calls) < rows + 20, f"{len(calls)} conversions for {rows} rows"
    session.execute(insert(User.__table__), core)  # type: ignore[arg-type]
    columns = [c.key for c in User.__table__.columns]
    differing = {"id", "sourced_id", "username", "username_folded"}
    for bulk_row, core_row in zip(shared, core, strict=True):
        by_bulk = dict(zip(columns, _stored(session, "users", "id", bulk_row["id"]), strict=True))
        by_core = dict(zip(columns, _stored(session, "users", "id", core_row["id"]), strict=True))
        assert {k: v for k, v in by_bulk.items() if k not in differing} == {
            k: v for k, v in by_core.items() if k not in differing
        }


@pytest.mark.parametrize(
    "fields",
    [
        {"user_id": new_id(), "school_id": None, "role": "student", "primary": False},
        {"primary": True, "n": 0, "big": -(10**20), "begin_date": "2026-09-01"},
        {"label": 'Zoë "Q" \\ \n\t\x00 ☃ 𝄞', "é": "ü"},  # escapes and non-ASCII, as json.dumps
        {"50%": "100%s", "%s": "%d"},  # a template's markers in names and values
        {"password": "hunter2", "role": "x"},  # a secret name: redacted
        {"ratio": 1.5, "nan": float("nan"), "when": date(2026, 1, 2), "list": ["a"]},
        {},
    ],
)
def test_a_creation_s_changes_are_the_text_changes_json_writes(fields: dict[str, Any]) -> None:
    """An enrollment's ``enrollment.create`` event is written without its intermediate dicts
    (cProfile at 20,000 users: ~15 us per event, 79k events): the very text of
    ``changes_json`` for ``{name: [None, value]}``, which ``audit.record`` stores too."""
    made = audit.created_json(fields)
    assert made == audit.changes_json({name: [None, value] for name, value in fields.items()})
    assert isinstance(made, JSONText) and audit.changes_json(made) is made
    filled = audit.created_row_json(tuple(fields), tuple(fields.values()))
    assert filled == made and isinstance(filled, JSONText)
