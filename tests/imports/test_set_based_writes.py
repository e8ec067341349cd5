"""The set-based write path of a first import (issue 15): new users go in with one Core
``executemany`` per table and batch, building no ORM object, under the same rules as every
other surface (the rows of ``new_user_rows.new_user_rows``, the SSO credential state, R109, one
audit event per created record, a row error reported on its row).

Speed is measured in ``bench/imports.py``; these tests count objects and statements."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import event, inspect, select

from server.db import AuditEvent, Credential, RecordStatus, User, UserGrade, UserRole
from server.districts import school
from server.domain import audit, bulk, users
from server.domain.actors import connection_actor
from server.domain.connections import get_connection
from server.domain.users import RoleAssignment
from tests.imports.conftest import built, statements
from tests.imports.packages import district, package

STUDENTS = 600


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_first_import_builds_no_object_for_the_users_it_creates(tenancy, tmp_path, version):
    """cProfile of ``bench.imports`` (2,000 users): ``bulk.create_users`` spent a quarter of
    its time building a ``User`` (with its roles, grades and credential) per new user and
    flushing them."""
    path = package(tmp_path / "district.zip", version, district(version, students=STUDENTS))
    with built(User, UserRole, UserGrade, Credential) as made, statements(tenancy.database) as sent:
        first = tenancy.run(path)
    assert first.status == "applied", first.summary
    people = STUDENTS + 1
    assert tenancy.count(User) == people
    assert made == [], f"{len(made)} ORM objects built for {people} new users"
    assert sent() < people // 4, f"{sent()} statements for a first import of {people} users"
    kid = tenancy.user("u7")
    assert (kid.username, kid.given_folded, kid.family_folded) == ("Stug.Dentg", "stug", "dentg")
    assert (kid.grades, kid.credential.state, kid.version, kid.status) == (
        ["03"],
        "pending",
        1,
        "active",
    )
    assert [(r.role, r.role_type) for r in kid.roles] == [("student", "primary")]
    assert kid.primary_org_id == kid.roles[0].org_id
    with tenancy.database.session() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.create"))
        by_target = {event.target_id: event for event in events}
    assert len(by_target) == people
    assert by_target[kid.id].changes["username"] == [None, "Stug.Dentg"]
    assert by_target[kid.id].changes["grades"] == [None, ["03"]]


def test_users_created_in_bulk_are_the_users_create_user_makes(session, system):
    """One definition of a new user (``new_user_rows.new_user_rows``) for both paths: every column,
    role, grade, the credential and the audit event's changes agree."""
    org = school(session, system)
    fields = {
        "given_name": " Ava ",
        "family_name": "Ádams",
        "email": "Ava@Example.org",
        "identifier": "ID-1",
        "grades": ["04", "03"],
        "roles": [RoleAssignment(org.id, "student")],
        "extra": {},
    }
    (made,) = bulk.create_users(
        session, system, [{**fields, "username": "ava.bulk", "sourced_id": "bulk-1"}]
    )
    one = users.create_user(
        session, system, {**fields, "username": "ava.one", "sourced_id": "one-1"}
    )
    session.flush()
    session.expire_all()
    bulk_user = session.get(User, made.id)
    assert isinstance(made, bulk.Created) and bulk_user is not None
    assert _columns(bulk_user) == _columns(one)
    assert [_columns(r) for r in bulk_user.roles] == [_columns(r) for r in one.roles]
    assert bulk_user.grades == one.grades == ["03", "04"]
    assert _columns(bulk_user.credential) == _columns(one.credential)
    events = {
        e.target_id: e.changes
        for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "user.create"))
    }
    assert _named(events[made.id], "ava.bulk", "bulk-1") == _named(
        events[one.id], "ava.one", "one-1"
    )


OWN = ("id", "user_id", "username", "username_folded", "sourced_id", "created_at", "updated_at")


def _columns(record) -> dict:
    mapper = inspect(record).mapper
    return {c.key: getattr(record, c.key) for c in mapper.column_attrs if c.key not in OWN}


def _named(changes: dict, username: str, sourced_id: str) -> dict:
    assert changes.pop("username") == [None, username]
    assert changes.pop("sourced_id") == [None, sourced_id]
    return changes


def test_users_an_sso_connection_creates_in_bulk_sign_in_only_through_it(tenancy, tmp_path):
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=40))
    with built(User) as made:
        first = tenancy.run(path, connection="Clever")
    assert first.status == "applied", first.summary
    assert made == []
    assert {tenancy.user(f"u{n}").credential.state for n in (0, 1, 40)} == {"sso"}


def test_a_bad_row_in_a_batch_is_reported_on_its_row_and_the_others_are_created(tenancy, tmp_path):
    """R109 (another connection's username), R103 (a sourcedId twice) and R102 (a bad email)
    in one batch: each row keeps its own code; every other user of the batch is created,
    with one audit event each."""
    files = district("1.1", students=60)
    people = files["users.csv"]
    people[10]["username"] = "taken.elsewhere"
    people[20]["email"] = "not-an-email"
    people.append(dict(people[30], username="someone.else"))  # u30 again
    with tenancy.database.session() as session:
        clever = connection_actor(get_connection(session, tenancy.tenant_id, "Clever"))
        users.create_user(session, clever, {"username": "taken.elsewhere", "given_name": "T"})
    path = package(tmp_path / "district.zip", "1.1", files)

    report = tenancy.run(path, skip_invalid=True)

    assert report.status == "applied", report.summary
    rows = [row for row in report.as_dict()["row_results"] if row["file"] == "users.csv"]
    errors = {row["key"]: row["code"] for row in rows if row["outcome"] == "error"}
    assert errors == {"u10": "R109", "u20": "R102", "u30": "R103"}
    created = {row["key"] for row in rows if row["outcome"] == "created"}
    assert len(created) == 61 - 2 and {"u9", "u11", "u21", "u30"} <= created
    with tenancy.database.session() as session:
        audited = session.scalars(
            select(AuditEvent.target_label).where(
                AuditEvent.action == "user.create", AuditEvent.actor_name == "SIS"
            )
        ).all()
    assert len(audited) == len(created) == len(set(audited))


def test_audit_events_recorded_in_bulk_are_the_events_record_makes(session, system):
    """``audit.record_many`` (imports) stores what ``audit.record`` stores for the same event:
    secret-looking fields redacted, dates, enums, tuples and nested values made plain."""
    changes = {
        "given_name": [None, "Ava"],
        "birth_date": [None, date(2014, 5, 1)],
        "status": [RecordStatus.ACTIVE, RecordStatus.INACTIVE],
        "roles": [None, ({"org_id": "o1", "role": "student", "begin": date(2026, 9, 1)},)],
        "password": [None, "hunter2-secret"],
        "extra.pin": ["1234", "5678"],
        "grades": [["03"], ("04", 5, 1.5, True)],
    }
    one = audit.record(session, system, "user.update", target_id="a", changes=changes)
    audit.record_many(session, system, "user.update", [{"target_id": "b", "changes": changes}])
    session.flush()
    (many,) = session.scalars(select(AuditEvent).where(AuditEvent.target_id == "b")).all()
    session.refresh(one)
    assert many.changes == one.changes
    assert one.changes["password"] == one.changes["extra.pin"] == ["[redacted]", "[redacted]"]
    assert one.changes["birth_date"] == [None, "2014-05-01"]
    assert one.changes["roles"][1][0]["begin"] == "2026-09-01"


def test_enrollment_batches_read_only_the_columns_they_check(tenancy, tmp_path):
    """cProfile of ``bench.imports``: each enrollment batch loaded every user and class it
    named in full, decoding their JSON columns again (a tenth of a first import's write
    phase). The users.csv and classes.csv batches read their records; enrollment batches read
    the ids, owner and status they check."""
    students = 1200  # 3 batches of users, 1 of classes, 3 of enrollments
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=students))
    sent: list[str] = []

    def keep(_conn, _cursor, statement, *_) -> None:
        sent.append(statement)

    event.listen(tenancy.database.engine, "before_cursor_execute", keep)
    try:
        first = tenancy.run(path)
    finally:
        event.remove(tenancy.database.engine, "before_cursor_execute", keep)
    assert first.status == "applied", first.summary
    selects = [s for s in sent if s.lstrip().upper().startswith("SELECT")]
    full_classes = [s for s in selects if "classes.grades" in s]
    full_users = [s for s in selects if "users.extra" in s and "import_seen" not in s]
    assert len(full_classes) <= 2, "classes.csv's one row: its lookup and create_class's"
    assert len(full_users) <= 3, "one per users.csv batch"


def test_a_full_import_deactivates_what_it_no_longer_lists_a_batch_at_a_time(tenancy, tmp_path):
    """``deactivations.deactivate_missing`` deactivated record by record (a savepoint, an UPDATE,
    a token revocation and an audit INSERT each). Now a chunk at a time, with the same
    outcome: W201 per record, one audit event each, students kept until the leaver date."""
    students = 600
    files = district("1.1", students=students)
    first = tenancy.run(package(tmp_path / "all.zip", "1.1", files))
    assert first.status == "applied", first.summary
    kept = 100
    files["users.csv"] = files["users.csv"][: kept + 1]
    files["enrollments.csv"] = files["enrollments.csv"][: kept + 1]
    path = package(tmp_path / "fewer.zip", "1.1", files)

    with statements(tenancy.database) as sent:
        report = tenancy.run(path, mode="full", allow_shrink=True)

    assert report.status == "applied", report.summary
    gone = students - kept
    rows = [row for row in report.as_dict()["row_results"] if row["outcome"] == "deactivated"]
    assert {row["code"] for row in rows} == {"W201"}
    assert sorted(row["file"] for row in rows) == ["enrollments.csv"] * gone + ["users.csv"] * gone
    assert sent() < gone // 2, f"{sent()} statements to deactivate {gone} users and enrollments"
    left = tenancy.user(f"u{students}")
    assert left.status == "inactive" and left.purge_after is not None
    assert tenancy.user(f"u{kept}").status == "active"
    with tenancy.database.session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.deactivate")
        ).all()
        statuses = session.scalars(
            select(AuditEvent.changes).where(AuditEvent.action == "enrollment.status")
        ).all()
    assert len(events) == len({e.target_id for e in events}) == gone
    assert {e.detail for e in events} == {"Missing from a full import."}
    assert events[0].changes == {"status": ["active", "inactive"]}
    assert statuses == [{"status": ["active", "inactive"]}] * gone
