"""After a bulk reset, the new passwords are handed over: the list offers printing exactly
the students just reset, and keeps the search (issue 14, item 9)."""

from __future__ import annotations

import re

from tests.web.conftest import csrf_of, sign_in


def test_a_class_reset_leads_to_printing_exactly_those_students(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    listing = client.get("/admin/users", params={"class": district.maths}).text
    done = client.post(
        "/admin/users/bulk",
        data={
            "csrf_token": csrf_of(listing),
            "scope": "all",
            "class": district.maths,
            "action": "reset_temporary",
        },
    )
    assert f"class={district.maths}" in str(done.url)  # the search is kept
    choice = re.search(r'<form[^>]*aria-label="Print the new passwords".*?</form>', done.text, re.S)
    assert choice and "these 1 student(s)" in choice.group(0)
    ids = re.findall(r'name="user_id" value="([^"]+)"', choice.group(0))
    assert ids == [district.manual_student]  # not the SSO student, not the teacher
    sheet = client.post(
        "/admin/users/bulk",
        data={"csrf_token": csrf_of(done.text), "user_id": ids, "action": "print_paper_saver"},
    )
    assert sheet.text.count('class="card"') == 1 and "Bart Simpson" in sheet.text
    assert district.temporary not in sheet.text  # the new password, not the old one


def test_one_students_page_has_its_own_print_button(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    page = client.get(f"/admin/users/{district.manual_student}").text
    form = re.search(r'<form method="post" action="/admin/users/bulk">.*?</form>', page, re.S)
    assert form and 'value="print_per_page"' in form.group(0) and ">Print<" in form.group(0)
    sheet = client.post(
        "/admin/users/bulk",
        data={
            "csrf_token": csrf_of(page),
            "user_id": district.manual_student,
            "action": "print_per_page",
        },
    )
    assert "Bart Simpson" in sheet.text and district.temporary in sheet.text
