"""Subject access (issue 12, point 10): one JSON document with everything stored about a
student, for district admins, audited as a read, and complete by construction."""

from __future__ import annotations

import json

from sqlalchemy import inspect, select
from starlette.testclient import TestClient

from server.db import AuditEvent, Base
from server.domain.subject_access import NOT_ABOUT_A_USER, REGISTRY
from tests.web.conftest import csrf_of, sign_in


def test_a_district_admin_exports_everything_about_a_student_without_secrets(
    app, district, context
):
    headers = {"Authorization": f"Bearer {district.api_token}"}
    with TestClient(app, base_url="http://testserver") as client:
        answer = client.get(f"/admin/api/users/{district.manual_student}/export", headers=headers)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["user"]["id"] == district.manual_student
    assert document["user"]["given_name"] == "Bart" and document["grades"][0]["grade"] == "04"
    assert document["roles"] and document["enrollments"][0]["class_id"] == district.maths
    assert document["credential"]["state"] == "issued"
    assert document["credential"]["password_hash_set"] is True
    assert "password_hash" not in document["credential"]
    assert document["badges"] == [] and document["app_tokens"] == []
    actions = [e["action"] for e in document["audit_history"]]
    assert "user.create" in actions and "credential.reset" in actions
    assert "provider_data" in document and "import_rows" in document
    text = json.dumps(document)
    assert district.temporary not in text and "argon2" not in text
    with context.database.session() as session:
        reads = session.scalars(
            select(AuditEvent.actor_name).where(AuditEvent.action == "read.subject_export")
        ).all()
    assert reads == ["skinner"]


def test_only_district_admins_export(app, district):
    school_admin = sign_in(app, "chalmers", district.school_admin_password)
    page = school_admin.get("/admin/users").text
    refused = school_admin.get(
        f"/admin/api/users/{district.manual_student}/export",
        headers={"X-CSRF-Token": csrf_of(page)},
    )
    assert refused.status_code == 403 and refused.json()["error"] == "NotAllowed"


def test_every_table_is_either_exported_or_said_to_hold_nothing_of_a_user(database):
    """A new table fails here until it is listed: in REGISTRY (exported) or, with the reason,
    in NOT_ABOUT_A_USER. Any table with a foreign key to users must be exported."""
    tables = set(inspect(database.engine).get_table_names()) - {"alembic_version"}
    tables |= set(Base.metadata.tables)
    assert tables - set(REGISTRY) - set(NOT_ABOUT_A_USER) == set()
    assert not set(REGISTRY) & set(NOT_ABOUT_A_USER)
    about_users = {
        table.name
        for table in Base.metadata.sorted_tables
        for key in table.foreign_keys
        if key.column.table.name == "users"
    }
    assert about_users - set(REGISTRY) == set()
