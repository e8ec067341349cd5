"""Staff email a reset's new temporary password to the student's own address (issue 14, item
14; Missouri Connections offers "email the new temporary password to the account")."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from tests.conftest import stored_where
from tests.web.conftest import BART_MAIL, bulk, csrf_of, give_bart_an_address, sign_in


def _shown_password(client, user_id: str) -> str:
    page = client.get(f"/admin/users/{user_id}").text
    shown = client.post(f"/admin/users/{user_id}/reveal", data={"csrf_token": csrf_of(page)})
    return re.search(r'id="revealed">([^<]+)<', shown.text).group(1)


def _emailed_password(message) -> str:
    return re.search(r"Temporary password: (\S+)", message.get_payload()).group(1)


def test_a_bulk_reset_emails_each_new_password_and_shows_sent_per_student(
    district, database, mailing
):
    give_bart_an_address(database, district)
    admin = sign_in(mailing.app, "skinner", district.admin_password)
    assert "Email each student's new temporary password" in admin.get("/admin/users").text
    chosen = [district.manual_student, district.other_student]
    done = bulk(admin, "reset_temporary", chosen, email_passwords="1")
    assert "Reset 2 student password(s)." in done.text
    assert "New passwords emailed to 1 student(s)." in done.text
    assert "Not emailed (no address): Lisa Simpson." in done.text
    emails = re.search(r'aria-label="New passwords by email">(.*?)</ul>', done.text, re.S).group(1)
    assert f"Bart Simpson — {BART_MAIL}: waiting to be sent" in emails
    assert "Lisa" not in emails

    assert mailing.send() == 1
    [message] = mailing.inbox.messages
    assert message["To"] == BART_MAIL and message["Subject"] == "Your new password"
    password = _emailed_password(message)
    assert password == _shown_password(admin, district.manual_student)
    assert password != district.temporary
    again = admin.get(str(done.url)).text
    assert f"Bart Simpson — {BART_MAIL}: <strong>sent</strong>" in again
    assert stored_where(database, password) == []


def test_a_single_reset_emails_the_password_and_the_students_page_shows_it_sent(
    district, database, mailing
):
    give_bart_an_address(database, district)
    admin = sign_in(mailing.app, "skinner", district.admin_password)
    page = admin.get(f"/admin/users/{district.manual_student}").text
    assert f"and email it to {BART_MAIL}" in page
    reset = admin.post(
        f"/admin/users/{district.manual_student}/reset",
        data={"csrf_token": csrf_of(page), "kind": "temporary", "email_password": "1"},
    )
    assert f"New temporary password set. Emailed to {BART_MAIL}." in reset.text
    assert "New password, " in reset.text and "waiting to be sent" in reset.text
    assert mailing.send() == 1
    password = _emailed_password(mailing.inbox.messages[0])
    assert password == _shown_password(admin, district.manual_student)
    shown = admin.get(f"/admin/users/{district.manual_student}").text
    assert re.search(rf"New password, [0-9: -]+ to {BART_MAIL}: <strong>sent</strong>", shown)
    assert stored_where(database, password) == []


def test_a_password_replaced_before_the_email_goes_out_is_never_sent(district, database, mailing):
    give_bart_an_address(database, district)
    admin = sign_in(mailing.app, "skinner", district.admin_password)
    for email in ("1", ""):
        page = admin.get(f"/admin/users/{district.manual_student}").text
        admin.post(
            f"/admin/users/{district.manual_student}/reset",
            data={"csrf_token": csrf_of(page), "kind": "temporary", "email_password": email},
        )
    assert mailing.send() == 1
    assert mailing.inbox.messages == []


def test_without_a_mail_server_the_reset_is_refused_and_nothing_changes(app, district, database):
    give_bart_an_address(database, district)
    admin = sign_in(app, "skinner", district.admin_password)
    page = admin.get(f"/admin/users/{district.manual_student}").text
    assert "and email it to" not in page
    single = admin.post(
        f"/admin/users/{district.manual_student}/reset",
        data={"csrf_token": csrf_of(page), "kind": "temporary", "email_password": "1"},
    )
    assert single.status_code == 403 and "Email is not set up on this server" in single.text
    listing = admin.get("/admin/users").text
    assert "Email new passwords — email is not set up on this server" in listing
    many = bulk(admin, "reset_temporary", [district.manual_student], email_passwords="1")
    assert "Email is not set up on this server" in many.text and "Reset 1" not in many.text
    assert _shown_password(admin, district.manual_student) == district.temporary


def test_the_admin_api_reset_emails_the_password_or_refuses_without_a_mail_server(
    app, district, database, mailing
):
    give_bart_an_address(database, district)
    bearer = {"Authorization": f"Bearer {district.api_token}"}
    path = f"/admin/api/users/{district.manual_student}/password"
    with TestClient(app) as plain:
        refused = plain.post(path, json={"email": True}, headers=bearer)
        assert refused.status_code == 403 and "Email is not set up" in refused.json()["detail"]
    with TestClient(mailing.app) as mailer:
        answer = mailer.post(path, json={"email": True}, headers=bearer)
        assert answer.status_code == 200, answer.text
        assert answer.json()["emailed_to"] == BART_MAIL
    assert mailing.send() == 1
    assert _emailed_password(mailing.inbox.messages[0]) == answer.json()["password"]
