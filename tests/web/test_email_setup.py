"""Activation emails say when they cannot be sent, and show what happened to each one
(issue 14, item 6): the job queue knows sent, failed and waiting."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from server.db import Job, User
from tests.web.conftest import bulk, invite, sign_in


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
    refused = invite(client, district.manual_student)
    assert refused.status_code == 403 and "Email is not set up on this server" in refused.text
    many = bulk(client, "send_activation", [district.manual_student])
    assert "Email is not set up on this server" in many.text
    assert "queued" not in many.text
    assert _jobs(database) == 0


def test_with_a_mail_server_each_address_shows_sent_or_failed(
    district, database, mailing, with_emails
):
    client = sign_in(mailing.app, "skinner", district.admin_password)
    invite(client, district.manual_student)
    assert mailing.send() == 1
    invite(client, district.other_student)
    assert replace(mailing, url="smtp://127.0.0.1:1").send() == 1  # nothing there: it fails
    assert [m["To"] for m in mailing.inbox.messages] == ["bart@springfield.example"]
    bart = client.get(f"/admin/users/{district.manual_student}").text
    assert "to bart@springfield.example: <strong>sent</strong>" in bart
    lisa = client.get(f"/admin/users/{district.other_student}").text
    assert "to lisa@springfield.example: waiting to be sent (last try failed:" in lisa


def test_staff_add_their_own_message_to_activation_emails(district, database, mailing, with_emails):
    """Issue 14, item 14 (Mastery Connect lets teachers add a note to the invitation)."""
    client = sign_in(mailing.app, "skinner", district.admin_password)
    assert 'name="email_message"' in client.get("/admin/users").text
    bart = [district.manual_student]
    too_long = bulk(client, "send_activation", bart, email_message="x" * 1001)
    assert "keep it under 1000" in too_long.text and _jobs(database) == 0
    sent = bulk(client, "send_activation", bart, email_message="Bring your tablet on Monday.")
    assert "Activation emails queued for 1 student(s)." in sent.text
    assert mailing.send() == 1
    [message] = mailing.inbox.messages
    assert "Bring your tablet on Monday." in message.get_payload()
