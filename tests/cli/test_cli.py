"""The ``rollcall`` command line, run in-process against the test database."""

from __future__ import annotations

import json

from server.domain.connections import authenticate_token


def test_connection_add_prints_a_working_token_once(rollcall, database):
    code, out, _ = rollcall(
        "connection", "add", "Entra ID", "--kind", "scim", "--json", "--profile", "entra"
    )
    assert code == 0
    created = json.loads(out)
    assert created["kind"] == "scim" and created["profile"] == "entra"
    with database.session() as session:
        assert authenticate_token(session, created["token"]).name == "Entra ID"
    code, out, _ = rollcall("connection", "list", "--json")
    listed = {row["name"]: row for row in json.loads(out)}
    assert set(listed) == {"Manual", "Entra ID"}
    assert created["token"] not in out


def test_rotate_token_invalidates_the_old_one(rollcall, database):
    _, out, _ = rollcall("connection", "add", "Okta", "--kind", "scim", "--json")
    old = json.loads(out)["token"]
    code, out, _ = rollcall("connection", "rotate-token", "Okta", "--json")
    new = json.loads(out)["token"]
    assert code == 0 and new != old
    with database.session() as session:
        assert authenticate_token(session, old) is None
        assert authenticate_token(session, new) is not None


def test_first_command_creates_the_default_tenant_and_tenant_add_adds_more(rollcall):
    rollcall("connection", "list")
    assert rollcall("tenant", "add", "Second District")[0] == 0
    _, out, _ = rollcall("tenant", "list", "--json")
    assert [t["name"] for t in json.loads(out)] == ["Default District", "Second District"]
    _, out, _ = rollcall("connection", "list", "--tenant", "Second District", "--json")
    assert [c["name"] for c in json.loads(out)] == ["Manual"]


def test_staff_add_generates_a_password_or_reads_it_from_stdin(rollcall):
    code, out, _ = rollcall("staff", "add", "boss", "--role", "district_admin", "--json")
    assert code == 0 and len(json.loads(out)["password"]) >= 12
    code, out, _ = rollcall(
        "staff",
        "add",
        "boss2",
        "--role",
        "district_admin",
        "--password-stdin",
        "--json",
        stdin="a quiet long passphrase\n",
    )
    assert code == 0 and "password" not in json.loads(out)


def test_bad_input_exits_non_zero_with_a_clear_error(rollcall):
    code, _, err = rollcall("staff", "add", "t1", "--role", "teacher")
    assert code == 1 and "need a school" in err
    code, _, err = rollcall("staff", "add", "t1", "--role", "teacher", "--school", "nope")
    assert code == 1 and "No school with sourcedId 'nope'" in err
    rollcall("connection", "add", "Clever", "--kind", "oneroster", "--sso", "Clever")
    code, out, _ = rollcall("connection", "add", "Clever", "--kind", "csv", "--json")
    assert code == 1 and json.loads(out)["error"] == "A connection named 'Clever' already exists."
    code, _, err = rollcall("connection", "rotate-token", "Nope")
    assert code == 1 and "No connection named 'Nope'" in err
    code, _, _ = rollcall("tenant", "list", "--tenant", "Missing")  # tenant list ignores --tenant
    assert code == 0
    code, _, err = rollcall("connection", "list", "--tenant", "Missing")
    assert code == 1 and "No tenant named 'Missing'" in err


def test_bad_invocation_exits_2(rollcall):
    code, _, err = rollcall("connection", "add", "X", "--kind", "bogus")
    assert code == 2 and "invalid choice: 'bogus'" in err


def test_export_student_prints_the_subject_access_document(rollcall, database):
    from sqlalchemy import select

    from server.db import AuditEvent
    from server.domain import users
    from server.domain.actors import system_actor
    from server.domain.tenants import get_tenant

    rollcall("connection", "list")  # creates the default tenant
    with database.session() as session:
        tenant = get_tenant(session)
        made = users.create_user(
            session, system_actor(tenant.id), {"given_name": "Ada", "family_name": "Byron"}
        )
        user_id = made.id
    code, out, _ = rollcall("export-student", user_id)
    assert code == 0
    document = json.loads(out)
    assert document["user"]["family_name"] == "Byron"
    assert [e["action"] for e in document["audit_history"]] == ["user.create"]
    assert rollcall("export-student", "no-such-id")[0] == 1
    with database.session() as session:
        reads = session.scalars(
            select(AuditEvent.actor_name).where(AuditEvent.action == "read.subject_export")
        ).all()
    assert reads == ["cli"]


def test_tenant_delete_needs_the_name_again_writes_a_final_export_then_deletes_everything(
    rollcall, database, tmp_path
):
    from sqlalchemy import inspect, text

    from server.domain import users
    from server.domain.actors import system_actor
    from server.domain.tenants import get_tenant

    rollcall("tenant", "add", "Closing District")
    rollcall("tenant", "add", "Staying District")
    with database.session() as session:
        for name in ("Closing District", "Staying District"):
            tenant = get_tenant(session, name)
            users.create_user(
                session, system_actor(tenant.id), {"given_name": "Ada", "family_name": name}
            )
        closing = get_tenant(session, "Closing District").id
    export = tmp_path / "closing.json"
    code, _, err = rollcall("tenant", "delete", "Closing District", "--export", str(export))
    assert code == 1 and "confirm" in err and not export.exists()
    code, _, _ = rollcall(
        "tenant", "delete", "Closing District", "--export", str(export), "--confirm", "Closing"
    )
    assert code == 1 and not export.exists()
    code, out, _ = rollcall(
        "tenant",
        "delete",
        "Closing District",
        "--export",
        str(export),
        "--confirm",
        "Closing District",
        "--json",
    )
    assert code == 0 and json.loads(out)["users"] == 1
    document = json.loads(export.read_text())
    [person] = document["users"].values()
    assert person["user"]["family_name"] == "Closing District"
    left = []
    with database.engine.connect() as connection:
        for table in inspect(database.engine).get_table_names():
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).mappings().all()
            left += [(table, row) for row in rows if closing in str(dict(row))]
    assert left == []
    _, out, _ = rollcall("tenant", "list", "--json")
    assert [t["name"] for t in json.loads(out)] == ["Staying District"]


def test_purge_applies_the_retention_rules_and_reports_counts(rollcall, database):
    from sqlalchemy import func, select

    from server.db import PurgeRun

    code, out, _ = rollcall("purge", "--json")
    assert code == 0
    counts = json.loads(out)
    assert {"users_purged", "students_deleted", "audit_events", "jobs"} <= set(counts)
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(PurgeRun)) == 1
