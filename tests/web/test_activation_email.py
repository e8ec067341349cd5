"""A teacher sends activation emails; the student follows the link and chooses a password."""

from __future__ import annotations

import re
from dataclasses import replace

from starlette.testclient import TestClient

from server.app import create_app
from server.domain import jobs, users
from server.domain.actors import system_actor
from server.domain.outbox import EMAIL_JOB
from server.domain.tenants import get_tenant
from server.mail import email_runner
from tests.web.conftest import csrf_of, sign_in


def test_teacher_sends_activation_emails_and_the_student_activates(
    app, district, database, settings, smtp
):
    url, inbox = smtp
    with database.session() as session:
        actor = system_actor(get_tenant(session, "Springfield").id)
        bart = users.get_user(session, actor, district.manual_student)
        bart_tenant = bart.tenant_id
        users.update_user(session, actor, bart, {"email": "bart@springfield.example"})
    app = create_app(replace(settings, smtp_url=url), database=database)
    teacher = sign_in(app, "edna", district.teacher_password)
    listing = teacher.get("/admin/users").text
    done = teacher.post(
        "/admin/users/bulk",
        data={
            "csrf_token": csrf_of(listing),
            "action": "send_activation",
            "user_id": [district.manual_student, district.clever_student],
        },
    )
    assert "Activation emails queued for 1 student(s)." in done.text
    assert "Milhouse Van Houten: This account signs in with Clever." in done.text

    mailer = replace(settings, smtp_url=url)
    assert jobs.run_due(database, {EMAIL_JOB: email_runner(mailer)}) == 1
    [message] = inbox.messages
    assert message["To"] == "bart@springfield.example"
    link = re.search(r"http\S+/activate/\S+", message.get_payload()).group(0)
    path = link.split("127.0.0.1:8000", 1)[1]

    student = TestClient(app)
    form = student.get(path)
    assert form.status_code == 200
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    chosen = student.post(
        path,
        data={"csrf": token, "password": "my own secret phrase", "confirm": "my own secret phrase"},
    )
    assert chosen.status_code in (200, 303), chosen.text
    assert "alert" not in chosen.text
    assert student.get(path).status_code == 410
    with database.session() as session:
        bart = users.find_by_username(session, bart_tenant, "bartsimpson")
        assert bart.credential.state == "active" and bart.credential.temporary_secret is None
