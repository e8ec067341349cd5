"""Activation emails say when they cannot be sent, and show what happened to each one
(issue 14, item 6): the job queue knows sent, failed and waiting."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from server.app import create_app
from server.db import Job, User
from server.domain import jobs
from server.domain.outbox import EMAIL_JOB
from server.mail import email_runner
from tests.web.conftest import csrf_of, sign_in


@pytest.fixture
def with_emails(database, district):
    with database.session() as session:
        session.get(User, district.manual_student).email = "bart@springfield.example"
        session.get(User, district.other_student).email = "lisa@springfield.example"


def _jobs(database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(Job))


def test_without_a_mail_server_the_buttons_say_so_and_nothing_is_queued(
    app, district, database, with_emails
):
    client = sign_in(app, "skinner", district.admin_password)
    shown = client.get(f"/admin/users/{district.manual_student}").text
    assert "Email is not set up on this server" in shown
    assert f"/admin/users/{district.manual_student}/invite" not in shown
    listing = client.get("/admin/users").text
    assert '<option value="send_activation" disabled>' in listing
    refused = client.post(
        f"/admin/users/{district.manual_student}/invite", data={"csrf_token": csrf_of(listing)}
    )
    assert refused.status_code == 403 and "Email is not set up on this server" in refused.text
    bulk = client.post(
        "/admin/users/bulk",
        data={
            "csrf_token": csrf_of(listing),
            "action": "send_activation",
            "user_id": [district.manual_student],
        },
    )
    assert "Email is not set up on this server" in bulk.text
    assert "queued" not in bulk.text
    assert _jobs(database) == 0


def test_with_a_mail_server_each_address_shows_sent_or_failed(
    district, database, settings, smtp, with_emails
):
    url, inbox = smtp
    app = create_app(replace(settings, smtp_url=url), database=database)
    client = sign_in(app, "skinner", district.admin_password)
    for user_id in (district.manual_student, district.other_student):
        page = client.get(f"/admin/users/{user_id}").text
        client.post(f"/admin/users/{user_id}/invite", data={"csrf_token": csrf_of(page)})
        mailer = replace(settings, smtp_url=url if user_id == district.manual_student else None)
        mailer = mailer if mailer.smtp_url else replace(settings, smtp_url="smtp://127.0.0.1:1")
        assert jobs.run_due(database, {EMAIL_JOB: email_runner(mailer)}) == 1
    assert [m["To"] for m in inbox.messages] == ["bart@springfield.example"]
    bart = client.get(f"/admin/users/{district.manual_student}").text
    assert "to bart@springfield.example: <strong>sent</strong>" in bart
    lisa = client.get(f"/admin/users/{district.other_student}").text
    assert "to lisa@springfield.example: waiting to be sent (last try failed:" in lisa


def test_staff_add_their_own_message_to_activation_emails(
    district, database, settings, smtp, with_emails
):
    """Issue 14, item 14 (Mastery Connect lets teachers add a note to the invitation)."""
    url, inbox = smtp
    app = create_app(replace(settings, smtp_url=url), database=database)
    client = sign_in(app, "skinner", district.admin_password)
    listing = client.get("/admin/users").text
    assert 'name="email_message"' in listing
    form = {
        "csrf_token": csrf_of(listing),
        "action": "send_activation",
        "user_id": [district.manual_student],
    }
    too_long = client.post("/admin/users/bulk", data={**form, "email_message": "x" * 1001})
    assert "keep it under 1000" in too_long.text and _jobs(database) == 0
    sent = client.post(
        "/admin/users/bulk", data={**form, "email_message": "Bring your tablet on Monday."}
    )
    assert "Activation emails queued for 1 student(s)." in sent.text
    assert jobs.run_due(database, {EMAIL_JOB: email_runner(replace(settings, smtp_url=url))}) == 1
    [message] = inbox.messages
    assert "Bring your tablet on Monday." in message.get_payload()
