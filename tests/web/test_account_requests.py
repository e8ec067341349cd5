"""Teachers ask for accounts; school admins approve (creating the account) or decline."""

from __future__ import annotations

import re

from tests.web.conftest import csrf_of, sign_in


def test_teacher_requests_an_account_and_the_school_admin_approves_it(app, district):
    teacher = sign_in(app, "edna", district.teacher_password)
    form = teacher.get("/admin/requests").text
    sent = teacher.post(
        "/admin/requests",
        data={
            "csrf_token": csrf_of(form),
            "given_name": "Ralph",
            "family_name": "Wiggum",
            "class_id": district.maths,
            "birth_date": "2017-05-01",
        },
    )
    assert "Request sent" in sent.text and "pending" in sent.text

    admin = sign_in(app, "chalmers", district.school_admin_password)
    queue = admin.get("/admin/requests").text
    request_id = re.search(r"/admin/requests/([0-9a-f-]{36})/approve", queue).group(1)
    approved = admin.post(
        f"/admin/requests/{request_id}/approve", data={"csrf_token": csrf_of(queue)}
    )
    assert "Request approved" in approved.text and "Ralph Wiggum" in approved.text
    assert re.search(r'id="revealed">[A-Za-z0-9-]{8,}<', approved.text)
    assert "Ralph" in teacher.get("/admin/users").text  # now in the teacher's class
    again = admin.post(f"/admin/requests/{request_id}/approve", data={"csrf_token": csrf_of(queue)})
    assert again.status_code == 409


def test_declining_needs_a_reason_which_the_teacher_sees(app, district):
    teacher = sign_in(app, "edna", district.teacher_password)
    form = teacher.get("/admin/requests").text
    teacher.post(
        "/admin/requests",
        data={
            "csrf_token": csrf_of(form),
            "given_name": "Sherri",
            "family_name": "Mackleberry",
            "class_id": district.maths,
        },
    )
    admin = sign_in(app, "skinner", district.admin_password)
    queue = admin.get("/admin/requests").text
    request_id = re.search(r"/admin/requests/([0-9a-f-]{36})/decline", queue).group(1)
    refused = admin.post(
        f"/admin/requests/{request_id}/decline", data={"csrf_token": csrf_of(queue), "reason": " "}
    )
    assert refused.status_code == 400
    admin.post(
        f"/admin/requests/{request_id}/decline",
        data={"csrf_token": csrf_of(queue), "reason": "Already has an account: sherrim"},
    )
    mine = teacher.get("/admin/requests").text
    assert "declined" in mine and "Already has an account: sherrim" in mine


def test_admins_cannot_file_requests_and_teachers_cannot_decide(app, district):
    admin = sign_in(app, "skinner", district.admin_password)
    page = admin.get("/admin/requests").text
    response = admin.post(
        "/admin/requests",
        data={
            "csrf_token": csrf_of(page),
            "given_name": "A",
            "family_name": "B",
            "class_id": district.maths,
        },
    )
    assert response.status_code == 403
