"""District admins delete students in the staff app and the admin API (issue 12, point 1)."""

from __future__ import annotations

import re

from sqlalchemy import select

from server.db import AuditEvent, RecordStatus, User
from tests.web.conftest import csrf_of, sign_in


def _status(context, user_id: str) -> str:
    with context.database.session() as session:
        return session.get(User, user_id).status


def _actions(context, user_id: str) -> list[tuple[str, str]]:
    with context.database.session() as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.actor_name).where(AuditEvent.target_id == user_id)
        )
        return [tuple(row) for row in rows]


def test_district_admin_confirms_then_deletes_a_student_in_the_staff_app(app, district, context):
    admin = sign_in(app, "skinner", district.admin_password)
    page = admin.get(f"/admin/users/{district.manual_student}").text
    assert f'action="/admin/users/{district.manual_student}/delete"' in page
    asked = admin.post(
        f"/admin/users/{district.manual_student}/delete", data={"csrf_token": csrf_of(page)}
    )
    assert asked.status_code == 200
    assert "after 30 days, erases everything" in asked.text and "pseudonym" in asked.text
    assert _status(context, district.manual_student) == RecordStatus.ACTIVE  # not yet
    done = admin.post(
        f"/admin/users/{district.manual_student}/delete",
        data={"csrf_token": csrf_of(asked.text), "confirm": "1"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"].startswith("/admin/users?")
    assert _status(context, district.manual_student) == RecordStatus.DELETED
    assert ("user.delete", "skinner") in _actions(context, district.manual_student)
    assert admin.get(f"/admin/users/{district.manual_student}").status_code == 404


def test_school_admins_and_teachers_cannot_delete(app, district, context):
    for username, password in (
        ("chalmers", district.school_admin_password),
        ("edna", district.teacher_password),
    ):
        client = sign_in(app, username, password)
        page = client.get(f"/admin/users/{district.manual_student}").text
        assert "/delete" not in page
        refused = client.post(
            f"/admin/users/{district.manual_student}/delete",
            data={"csrf_token": csrf_of(page), "confirm": "1"},
        )
        assert refused.status_code == 403, refused.text
    assert _status(context, district.manual_student) == RecordStatus.ACTIVE


def test_admin_api_deletes_a_user_and_answers_404_after(app, district, context):
    headers = {"Authorization": f"Bearer {district.api_token}"}
    with app_client(app) as client:
        gone = client.delete(f"/admin/api/users/{district.manual_student}", headers=headers)
        assert gone.status_code == 204, gone.text
        assert (
            client.get(f"/admin/api/users/{district.manual_student}", headers=headers).status_code
            == 404
        )
        again = client.delete(f"/admin/api/users/{district.manual_student}", headers=headers)
        assert again.status_code == 404 and again.json()["error"] == "NotFound"
        managed = client.delete(f"/admin/api/users/{district.clever_student}", headers=headers)
        assert managed.status_code == 409 and "Clever" in managed.json()["detail"]
        spec = client.get("/admin/api/openapi.json").json()
        assert "204" in spec["paths"]["/users/{user_id}"]["delete"]["responses"]
    assert _status(context, district.manual_student) == RecordStatus.DELETED
    assert _status(context, district.clever_student) == RecordStatus.ACTIVE
    assert ("user.delete", "skinner") in _actions(context, district.manual_student)


def app_client(app):
    from starlette.testclient import TestClient

    return TestClient(app, base_url="http://testserver")


def test_the_audit_page_shows_when_the_retention_job_ran_and_what_it_removed(
    app, district, context
):
    from datetime import timedelta

    from server.db import utcnow
    from server.domain import retention
    from server.domain.actors import system_actor
    from tests.conftest import TEST_SECRET

    admin = sign_in(app, "skinner", district.admin_password)
    assert "The retention job has not run yet." in admin.get("/admin/audit").text
    headers = {"Authorization": f"Bearer {district.api_token}"}
    with app_client(app) as client:
        client.delete(f"/admin/api/users/{district.manual_student}", headers=headers)
    with context.database.session() as session:
        tenant_id = session.get(User, district.other_student).tenant_id
        retention.enforce(
            session,
            system_actor(tenant_id, "retention"),
            secret_key=TEST_SECRET,
            now=utcnow() + timedelta(days=31),
        )
    shown = admin.get("/admin/audit").text
    status = re.search(r'<p class="hint" id="purge-status">(.*?)</p>', shown, re.S).group(1)
    assert "Retention job last ran" in status and "users purged 1" in status
    assert "Bart" not in status  # counts only
    teacher = sign_in(app, "chalmers", district.school_admin_password)
    assert "purge-status" not in teacher.get("/admin/audit").text
