"""Every audit event names the person or the connection that caused it, and credential events
the state before and after (issue 12, point 9)."""

from __future__ import annotations

import html
import re

from sqlalchemy import select
from starlette.testclient import TestClient

from server.db import AuditEvent
from tests.web.conftest import csrf_of, sign_in

FIELDS = r'name="(content|choice|signature|csrf_token)" value="([^"]*)"'


def _events(context, action: str) -> list[AuditEvent]:
    with context.database.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_a_school_csv_uploaded_by_staff_is_audited_as_that_person(app, district, context):
    admin = sign_in(app, "skinner", district.admin_password)
    form = admin.get("/admin/import").text
    school = re.search(r'<option value="([0-9a-f-]{36})">Lincoln</option>', form).group(1)
    content = (
        b"Student Full Name,Username,Year Group,Class,Gender\r\nAva Adams,aadams,4,Maths 4B,F\r\n"
    )
    shown = admin.post(
        "/admin/import",
        data={"csrf_token": csrf_of(form), "connection": "Manual", "school": school},
        files={"file": ("pupils.csv", content, "text/csv")},
    )
    fields = dict(re.findall(FIELDS, shown.text))
    fields["choice"] = html.unescape(fields["choice"])
    assert admin.post("/admin/import/apply", data=fields).status_code == 200
    for action in ("user.create", "import.apply"):
        [event] = _events(context, action)[-1:]
        assert (event.actor_kind, event.actor_name, event.via) == ("staff", "skinner", "Manual")
    page = admin.get("/admin/audit", params={"who": "skinner", "action": "user.create"}).text
    assert "aadams" in page and "via Manual" in page


def test_staff_sign_ins_and_token_creation_are_audited(app, district, context):
    sign_in(app, "chalmers", district.school_admin_password)
    [signed] = _events(context, "staff.signin")
    assert (signed.actor_name, signed.target_label) == ("chalmers", "chalmers")
    [made] = _events(context, "staff.token_create")  # the fixture's token for skinner
    assert made.target_label == "skinner" and made.changes["name"] == [None, "tests"]
    assert district.api_token not in str(made.changes)


def test_credential_events_record_the_state_before_and_after(app, district, context):
    headers = {"Authorization": f"Bearer {district.api_token}"}
    with TestClient(app, base_url="http://testserver") as client:
        reset = client.post(
            f"/admin/api/users/{district.manual_student}/password",
            json={"temporary": False, "password": "Brisk-Heron-Cove-58"},
            headers=headers,
        )
        assert reset.status_code == 200, reset.text
    [event] = _events(context, "credential.set")
    assert event.changes["credential_state"] == ["issued", "active"]
    [issued] = _events(context, "credential.reset")  # the fixture's temporary password
    assert issued.changes["credential_state"] == ["pending", "issued"]
