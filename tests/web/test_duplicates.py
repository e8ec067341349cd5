"""Active duplicates are offered, never created silently (issue 14, item 3): add student,
teachers' account requests, the admin API and the school CSV ask the same domain rule."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from starlette.testclient import TestClient

from server.db import User, fold
from tests.web.conftest import csrf_of, sign_in


def _simpsons(database, given: str = "Bart") -> int:
    with database.session() as session:
        query = (
            select(func.count())
            .select_from(User)
            .where(User.given_folded == fold(given), User.family_folded == "simpson")
        )
        return session.scalar(query)


def test_add_student_offers_the_active_account_of_the_same_name_in_the_class(
    app, district, database
):
    client = sign_in(app, "skinner", district.admin_password)
    form_page = client.get("/admin/users/new").text
    lincoln = re.search(r'<option value="([^"]+)"[^>]*>Lincoln</option>', form_page).group(1)
    form = {
        "csrf_token": csrf_of(form_page),
        "given_name": "bart",
        "family_name": "SIMPSON",
        "school_id": lincoln,
        "class_id": district.maths,
    }
    offered = client.post("/admin/users/new", data=form)
    assert offered.status_code == 409
    link = re.search(r'<a href="([^"]+)">Open existing account</a>', offered.text).group(1)
    assert link == f"/admin/users/{district.manual_student}"
    assert "Create anyway" in offered.text and 'name="allow_duplicate" value="1"' in offered.text
    assert _simpsons(database) == 1
    created = client.post("/admin/users/new", data={**form, "allow_duplicate": "1"})
    assert "Student account created." in created.text
    assert _simpsons(database) == 2


def test_the_api_answers_409_possible_duplicate_unless_allow_duplicate(app, district):
    headers = {"Authorization": f"Bearer {district.api_token}"}
    maggie = {"given_name": "Maggie", "family_name": "Simpson", "birth_date": "2023-01-12"}
    with TestClient(app) as client:
        first = client.post("/admin/api/users", json=maggie, headers=headers)
        assert first.status_code == 201
        again = client.post(
            "/admin/api/users", json={**maggie, "given_name": "MAGGIE"}, headers=headers
        )
        assert again.status_code == 409
        body = again.json()
        assert body["error"] == "possible_duplicate"
        assert [m["id"] for m in body["matches"]] == [first.json()["id"]]
        other_day = client.post(
            "/admin/api/users", json={**maggie, "birth_date": "2023-02-01"}, headers=headers
        )
        assert other_day.status_code == 201  # same name, another birth date: another child
        anyway = client.post(
            "/admin/api/users", json={**maggie, "allow_duplicate": True}, headers=headers
        )
        assert anyway.status_code == 201


def test_a_teachers_request_for_a_student_already_in_the_class_is_offered_the_account(
    app, district, database
):
    teacher = sign_in(app, "edna", district.teacher_password)
    csrf = csrf_of(teacher.get("/admin/requests").text)
    form = {"csrf_token": csrf, "given_name": "Bart", "family_name": "Simpson"}
    form["class_id"] = district.maths
    offered = teacher.post("/admin/requests", data=form)
    assert offered.status_code == 409
    assert f'<a href="/admin/users/{district.manual_student}">Open existing account</a>' in (
        offered.text
    )
    assert "Send request anyway" in offered.text
    sent = teacher.post("/admin/requests", data={**form, "allow_duplicate": "1"})
    assert "Request sent to your school admin." in sent.text

    admin = sign_in(app, "chalmers", district.school_admin_password)
    listed = admin.get("/admin/requests").text
    approve = re.search(r'action="(/admin/requests/[^/]+/approve)"', listed).group(1)
    held = admin.post(approve, data={"csrf_token": csrf_of(listed)})
    assert held.status_code == 409 and "Approve anyway" in held.text
    assert _simpsons(database) == 1
    approved = admin.post(approve, data={"csrf_token": csrf_of(listed), "allow_duplicate": "1"})
    assert "Request approved: the account was created." in approved.text
    assert _simpsons(database) == 2


def test_the_school_csv_creates_a_same_named_student_with_warning_w204(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    form = client.get("/admin/import").text
    lincoln = re.search(r'<option value="([^"]+)">Lincoln</option>', form).group(1)
    content = b"Student Full Name,Username,Year Group,Class,Gender\nBart Simpson,,4,Art 4,M\n"
    shown = client.post(
        "/admin/import",
        data={"csrf_token": csrf_of(form), "connection": "Manual", "school": lincoln},
        files={"file": ("school.csv", content, "text/csv")},
    )
    assert "W204" in shown.text
    assert "an active student with the same name is already at this school" in shown.text
    assert "bartsimpson" in shown.text  # names the account it may duplicate
