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
    assert chosen.status_code == 200, chosen.text
    assert "alert" not in chosen.text
    assert student.get(path).status_code == 410
    with database.session() as session:
        bart = users.find_by_username(session, bart_tenant, "bartsimpson")
        assert bart.credential.state == "active" and bart.credential.temporary_secret is None


def _queue_for_bart(settings, smtp_url, district, database) -> str:
    app = create_app(replace(settings, smtp_url=smtp_url), database=database)
    with database.session() as session:
        actor = system_actor(get_tenant(session, "Springfield").id)
        bart = users.get_user(session, actor, district.manual_student)
        users.update_user(session, actor, bart, {"email": "bart@springfield.example"})
    admin = sign_in(app, "skinner", district.admin_password)
    page = admin.get(f"/admin/users/{district.manual_student}").text
    sent = admin.post(
        f"/admin/users/{district.manual_student}/invite", data={"csrf_token": csrf_of(page)}
    )
    assert "Activation email queued" in sent.text
    return district.manual_student


def test_the_queued_job_holds_a_reference_and_the_link_is_made_at_send_time(
    app, district, database, settings, smtp
):
    """Issue 12, point 7: no working link (nor address or name) sits in ``jobs.payload``."""
    from sqlalchemy import func, select

    from server.db import ActivationToken, Job

    url, inbox = smtp
    user_id = _queue_for_bart(settings, url, district, database)
    with database.session() as session:
        [job] = session.scalars(select(Job).where(Job.kind == EMAIL_JOB)).all()
        payload = str(job.payload)
        assert user_id in payload
        assert "/activate/" not in payload and "bart@springfield.example" not in payload
        assert "bartsimpson" not in payload and "Bart" not in payload
        assert session.scalar(select(func.count()).select_from(ActivationToken)) == 0
    assert jobs.run_due(database, {EMAIL_JOB: email_runner(replace(settings, smtp_url=url))}) == 1
    [message] = inbox.messages
    assert re.search(r"http\S+/activate/\S+", message.get_payload())
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(ActivationToken)) == 1


def test_a_queued_mail_for_a_deactivated_student_is_dropped(
    app, district, database, settings, smtp
):
    from sqlalchemy import select

    from server.db import AuditEvent

    url, inbox = smtp
    user_id = _queue_for_bart(settings, url, district, database)
    with database.session() as session:
        actor = system_actor(get_tenant(session, "Springfield").id)
        users.deactivate_user(session, actor, users.get_user(session, actor, user_id))
    assert jobs.run_due(database, {EMAIL_JOB: email_runner(replace(settings, smtp_url=url))}) == 1
    assert inbox.messages == []
    with database.session() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.target_id == user_id)
        ).all()
    assert "email.dropped" in actions and "email.sent" not in actions


def test_the_list_shows_each_bulk_activation_email_sent_or_failed(
    app, district, database, settings, smtp
):
    # Issue 14 item 6: with a mail server, the page shows sent/failed per address.
    url, _inbox = smtp
    with database.session() as session:
        actor = system_actor(get_tenant(session, "Springfield").id)
        bart = users.get_user(session, actor, district.manual_student)
        users.update_user(session, actor, bart, {"email": "bart@springfield.example"})
    teacher = sign_in(
        create_app(replace(settings, smtp_url=url), database=database),
        "edna",
        district.teacher_password,
    )
    listing = teacher.get("/admin/users").text
    done = teacher.post(
        "/admin/users/bulk",
        data={
            "csrf_token": csrf_of(listing),
            "action": "send_activation",
            "user_id": [district.manual_student],
        },
    )
    shown = re.search(r'aria-label="Activation emails">(.*?)</ul>', done.text, re.S).group(1)
    assert "Bart Simpson — bart@springfield.example: waiting to be sent" in shown
    assert jobs.run_due(database, {EMAIL_JOB: email_runner(replace(settings, smtp_url=url))}) == 1
    again = teacher.get(str(done.url)).text
    assert "Bart Simpson — bart@springfield.example: <strong>sent</strong>" in again
