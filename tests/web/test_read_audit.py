"""Reads of student data are audit events of kind ``read`` (issue 12, point 8): exports,
credential prints and PDFs (which class, how many students), opening a student's page."""

from __future__ import annotations

import re

from sqlalchemy import select

from server.db import AuditEvent
from tests.web.conftest import bulk, csrf_of, sign_in


def _reads(context) -> list[AuditEvent]:
    with context.database.session() as session:
        return list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action.startswith("read."))
                .order_by(AuditEvent.id)
            )
        )


def test_opening_a_students_page_is_a_read_naming_them(app, district, context):
    teacher = sign_in(app, "edna", district.teacher_password)
    assert teacher.get(f"/admin/users/{district.manual_student}").status_code == 200
    [read] = _reads(context)
    assert (read.action, read.actor_name, read.target_id) == (
        "read.user_page",
        "edna",
        district.manual_student,
    )
    assert read.changes["classes"] == [None, ["Maths 4B"]]


def test_printing_credentials_records_the_class_and_how_many(app, district, context):
    teacher = sign_in(app, "edna", district.teacher_password)
    chosen = [district.manual_student, district.clever_student]
    for action in ("print", "pdf"):
        # address_checked: the sign-in address on the sheet was checked
        answer = bulk(teacher, action, chosen, address_checked="1")
        assert answer.status_code == 200
    prints = [r for r in _reads(context) if r.action.startswith("read.credential_")]
    assert [r.action for r in prints] == ["read.credential_print", "read.credential_pdf"]
    for read in prints:
        assert read.changes == {"students": [None, 2], "classes": [None, ["Maths 4B"]]}
        assert read.actor_name == "edna"


def test_exports_are_reads_and_the_audit_page_filters_them(app, district, context):
    admin = sign_in(app, "skinner", district.admin_password)
    form = admin.get("/admin/import").text
    school = re.search(r'<option value="([0-9a-f-]{36})">Lincoln</option>', form).group(1)
    for fmt in ("school-csv", "xlsx", "oneroster-1.2"):
        answer = admin.post(
            "/admin/export", data={"csrf_token": csrf_of(form), "format": fmt, "school": school}
        )
        assert answer.status_code == 200, answer.text
    exports = [r for r in _reads(context) if r.action == "read.export"]
    assert [r.changes["format"][1] for r in exports] == ["school-csv", "xlsx", "oneroster-1.2"]
    assert all(r.changes["users"][1] >= 1 and r.actor_name == "skinner" for r in exports)
    shown = admin.get("/admin/audit", params={"action": "read."}).text
    assert shown.count("read.export") == 3 and "credential.reveal" not in shown
