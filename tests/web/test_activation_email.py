"""A teacher sends activation emails; the student follows the link and chooses a password."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from server.domain import users
from server.domain.actors import system_actor
from server.domain.outbox import EMAIL_JOB
from server.domain.tenants import get_tenant
from tests.web.conftest import BART_MAIL, bulk, give_bart_an_address, invite, sign_in


def test_teacher_sends_activation_emails_and_the_student_activates(district, database, mailing):
    bart_tenant = give_bart_an_address(database, district)
    teacher = sign_in(mailing.app, "edna", district.teacher_password)
    done = bulk(teacher, "send_activation", [district.manual_student, district.clever_student])
    assert "Activation emails queued for 1 student(s)." in done.text
    assert "Milhouse Van Houten: This account signs in with Clever." in done.text

    assert mailing.send() == 1
    [message] = mailing.inbox.messages
    assert message["To"] == BART_MAIL
    link = re.search(r"http\S+/activate/\S+", message.get_payload()).group(0)
    path = link.split("127.0.0.1:8000", 1)[1]

    student = TestClient(mailing.app)
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


def _queue_for_bart(mailing, district, database) -> str:
    give_bart_an_address(database, district)
    admin = sign_in(mailing.app, "skinner", district.admin_password)
    assert "Activation email queued" in invite(admin, district.manual_student).text
    return district.manual_student


def test_the_queued_job_holds_a_reference_and_the_link_is_made_at_send_time(
    district, database, mailing
):
    """Issue 12, point 7: no working link (nor address or name) sits in ``jobs.payload``."""
    from sqlalchemy import func, select

    from server.db import ActivationToken, Job

    user_id = _queue_for_bart(mailing, district, database)
    with database.session() as session:
        [job] = session.scalars(select(Job).where(Job.kind == EMAIL_JOB)).all()
        payload = str(job.payload)
        assert user_id in payload
        assert "/activate/" not in payload and BART_MAIL not in payload
        assert "bartsimpson" not in payload and "Bart" not in payload
        assert session.scalar(select(func.count()).select_from(ActivationToken)) == 0
    assert mailing.send() == 1
    [message] = mailing.inbox.messages
    assert re.search(r"http\S+/activate/\S+", message.get_payload())
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(ActivationToken)) == 1


def test_a_queued_mail_for_a_deactivated_student_is_dropped(district, database, mailing):
    from sqlalchemy import select

    from server.db import AuditEvent

    user_id = _queue_for_bart(mailing, district, database)
    with database.session() as session:
        actor = system_actor(get_tenant(session, "Springfield").id)
        users.deactivate_user(session, actor, users.get_user(session, actor, user_id))
    assert mailing.send() == 1
    assert mailing.inbox.messages == []
    with database.session() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.target_id == user_id)
        ).all()
    assert "email.dropped" in actions and "email.sent" not in actions


def test_the_list_shows_each_bulk_activation_email_sent_or_failed(district, database, mailing):
    # Issue 14 item 6: with a mail server, the page shows sent/failed per address.
    give_bart_an_address(database, district)
    teacher = sign_in(mailing.app, "edna", district.teacher_password)
    done = bulk(teacher, "send_activation", [district.manual_student])
    shown = re.search(r'aria-label="Activation emails">(.*?)</ul>', done.text, re.S).group(1)
    assert f"Bart Simpson — {BART_MAIL}: waiting to be sent" in shown
    assert mailing.send() == 1
    again = teacher.get(str(done.url)).text
    assert f"Bart Simpson — {BART_MAIL}: <strong>sent</strong>" in again
