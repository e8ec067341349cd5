"""Class bulk actions act on students only and say so (issue 14, item 4): the class's
teacher is never reset or emailed by "Reset passwords" or "Send activation emails"."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from server.app import create_app
from server.db import Credential, Job, User
from tests.web.conftest import csrf_of, sign_in


def _whole_class(client, district, action: str):
    listing = client.get("/admin/users", params={"class": district.maths}).text
    assert "Krabappel" in listing  # the search of the class lists its teacher too
    data = {
        "csrf_token": csrf_of(listing),
        "scope": "all",
        "class": district.maths,
        "action": action,
    }
    return client.post("/admin/users/bulk", data=data)


def _teacher(session) -> User:
    return session.scalars(select(User).where(User.family_name == "Krabappel")).one()


def test_resetting_a_class_resets_its_students_not_its_teacher(app, district, database):
    client = sign_in(app, "skinner", district.admin_password)
    done = _whole_class(client, district, "reset_temporary").text
    assert "Reset 1 student password(s)." in done
    assert "Edna Krabappel: not a student (teacher)" in done
    with database.session() as session:
        teacher = _teacher(session)
        credential = session.scalars(
            select(Credential).where(Credential.user_id == teacher.id)
        ).one_or_none()
        assert credential is None or credential.state != "issued"


def test_activation_emails_for_a_class_skip_its_teacher(district, database, settings):
    with database.session() as session:
        _teacher(session).email = "edna@springfield.example"
        bart = session.get(User, district.manual_student)
        bart.email = "bart@springfield.example"
    app = create_app(replace(settings, smtp_url="smtp://127.0.0.1:1"), database=database)
    client = sign_in(app, "skinner", district.admin_password)
    done = _whole_class(client, district, "send_activation").text
    assert "Edna Krabappel: not a student (teacher)" in done
    with database.session() as session:  # the queue holds whom to write to, by id
        recipients = {job.payload.get("user_id") for job in session.scalars(select(Job))}
        edna = _teacher(session).id
    assert edna not in recipients and district.manual_student in recipients


def test_the_bulk_menu_says_the_credential_actions_are_for_students(district, database, settings):
    app = create_app(replace(settings, smtp_url="smtp://127.0.0.1:1"), database=database)
    client = sign_in(app, "skinner", district.admin_password)
    listing = client.get("/admin/users").text
    assert "Reset students' passwords (temporary)" in listing
    assert "Send activation emails to students" in listing
