"""Users moving school in a full import (issue 15): their new ``user_roles`` rows go in with
one ``executemany`` per batch, not one INSERT each (the ORM flushes a row with an
autoincrement key one statement at a time), under the same rules: the old role goes, the new
one comes with its role type, one ``user.update`` audit event each.

Speed is measured in ``bench/imports.py``; these tests count statements."""

from __future__ import annotations

from sqlalchemy import event, select

from server.db import AuditEvent, Org, UserRole
from tests.imports.packages import district, package

STUDENTS = 600  # two batches of users


def _two_schools(files) -> None:
    files["orgs.csv"].append({**files["orgs.csv"][1], "sourcedId": "s2", "name": "Grant High"})


def test_users_moving_school_get_their_new_roles_a_batch_at_a_time(tenancy, tmp_path):
    """bench (2,000 users, a full import moving half of them): 1,052 statements for
    users.csv, an INSERT INTO user_roles per moved user."""
    files = district("1.1", students=STUDENTS)
    _two_schools(files)
    first = tenancy.run(package(tmp_path / "first.zip", "1.1", files))
    assert first.status == "applied", first.summary
    for row in files["users.csv"][1::2]:  # u1, u3, …: half the students
        row["orgSourcedIds"] = "s2"
    inserts: list[int] = []

    def count(_conn, _cursor, statement, parameters, _context, executemany) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO USER_ROLES"):
            many = executemany and isinstance(parameters[0], tuple | list | dict)
            # rows the statement sends (PostgreSQL: one INSERT of many VALUES)
            inserts.append(len(parameters) if many else statement.count("), (") + 1)

    event.listen(tenancy.database.engine, "before_cursor_execute", count)
    try:
        moved = tenancy.run(package(tmp_path / "moved.zip", "1.1", files), mode="full")
    finally:
        event.remove(tenancy.database.engine, "before_cursor_execute", count)

    assert moved.status == "applied", moved.summary
    assert moved.outcomes["updated"] == STUDENTS // 2, moved.summary
    assert sum(inserts) == STUDENTS // 2, "one new role row per moved user"
    assert len(inserts) <= 2, f"{len(inserts)} INSERTs into user_roles for two batches"
    kid, stays = tenancy.user("u1"), tenancy.user("u2")
    with tenancy.database.session() as session:
        schools = dict(session.execute(select(Org.sourced_id, Org.id)).all())
        rows = session.scalars(select(UserRole).where(UserRole.user_id == kid.id)).all()
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.update")).all()
    assert [(r.org_id, r.role, r.role_type) for r in rows] == [
        (schools["s2"], "student", "primary")
    ]
    assert kid.primary_org_id == schools["s2"] and kid.version == 2
    assert [r.org_id for r in stays.roles] == [schools["s1"]] and stays.version == 1
    by_target = {e.target_id: e.changes for e in events}
    assert len(events) == len(by_target) == STUDENTS // 2
    assert by_target[kid.id]["primary_org_id"] == [schools["s1"], schools["s2"]]


def test_a_user_moving_back_and_forth_keeps_one_row_per_role(tenancy, tmp_path):
    """The unique (user, org, role) rows hold when a batch's new rows are inserted after the
    rows that go are deleted: moving to s2 and back leaves one row at s1."""
    files = district("1.1", students=3)
    _two_schools(files)
    assert tenancy.run(package(tmp_path / "a.zip", "1.1", files)).status == "applied"
    for school in ("s2", "s1"):
        for row in files["users.csv"][1:]:
            row["orgSourcedIds"] = school
        report = tenancy.run(package(tmp_path / f"{school}.zip", "1.1", files))
        assert report.status == "applied" and report.outcomes["updated"] == 3, report.summary
    kid = tenancy.user("u1")
    assert [(r.role, r.role_type) for r in kid.roles] == [("student", "primary")]
    assert kid.version == 3
