"""Every staff form changes something once: POST/redirect/GET with a one-time form token, so
a reload or a double click never repeats the change (issue 14, item 2)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from server.db import User
from tests.web.conftest import csrf_of, sign_in


def form_token_of(html: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', html).group(1)


def _new_student_form(client) -> dict[str, str]:
    html = client.get("/admin/users/new").text
    return {
        "csrf_token": csrf_of(html),
        "form_token": form_token_of(html),
        "given_name": "Maggie",
        "family_name": "Simpson",
        "confirm_new": "1",
    }


def _count(database, family_name: str) -> int:
    with database.session() as session:
        query = select(func.count()).select_from(User).where(User.family_name == family_name)
        return session.scalar(query)


def test_posting_the_same_add_student_form_twice_creates_one_account(app, district, database):
    client = sign_in(app, "chalmers", district.school_admin_password)
    form = _new_student_form(client)
    first = client.post("/admin/users/new", data=form, follow_redirects=False)
    assert first.status_code == 303
    created = client.get(first.headers["location"])
    assert "Student account created." in created.text
    password = re.search(r'id="revealed">([^<]+)<', created.text).group(1)
    again = client.post("/admin/users/new", data=form, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == first.headers["location"]
    assert _count(database, "Simpson") == 3  # Bart, Lisa and one Maggie
    reloaded = client.get(again.headers["location"])
    assert password in reloaded.text  # the result page can be reloaded


def test_a_double_click_creates_one_account(app, district, database):
    client = sign_in(app, "chalmers", district.school_admin_password)
    form = _new_student_form(client)
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(
                lambda _: client.post("/admin/users/new", data=form, follow_redirects=False),
                range(2),
            )
        )
    assert [a.status_code for a in answers] == [303, 303]
    assert answers[0].headers["location"] == answers[1].headers["location"]
    assert _count(database, "Simpson") == 3


def test_a_refused_post_can_be_corrected_and_sent_again(app, district, database):
    client = sign_in(app, "chalmers", district.school_admin_password)
    form = {**_new_student_form(client), "given_name": ""}
    refused = client.post("/admin/users/new", data=form, follow_redirects=False)
    assert refused.status_code == 400
    sent = client.post(
        "/admin/users/new", data={**form, "given_name": "Maggie"}, follow_redirects=False
    )
    assert sent.status_code == 303
    assert _count(database, "Simpson") == 3


def test_reloading_a_password_reset_does_not_reset_it_again(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    page = client.get(f"/admin/users/{district.manual_student}").text
    reset_form = page[page.index(f'/admin/users/{district.manual_student}/reset"') :]
    form = {"csrf_token": csrf_of(page), "form_token": form_token_of(reset_form)}
    first = client.post(f"/admin/users/{district.manual_student}/reset", data=form)
    shown = re.search(r'id="revealed">([^<]+)<', first.text).group(1)
    again = client.post(f"/admin/users/{district.manual_student}/reset", data=form)
    assert re.search(r'id="revealed">([^<]+)<', again.text).group(1) == shown
    revealed = client.post(
        f"/admin/users/{district.manual_student}/reveal", data={"csrf_token": csrf_of(page)}
    )
    assert f'id="revealed">{shown}<' in revealed.text


def test_a_new_connection_token_is_shown_after_the_redirect_and_added_once(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    html = client.get("/admin/connections").text
    add_form = html[html.index('action="/admin/connections"') :]
    form = {
        "csrf_token": csrf_of(html),
        "form_token": form_token_of(add_form),
        "name": "Entra",
        "kind": "scim",
    }
    first = client.post("/admin/connections", data=form)
    assert "Connection Entra added." in first.text
    token = re.search(r'id="token">(rc_[^<]+)<', first.text).group(1)
    again = client.post("/admin/connections", data=form)
    assert again.status_code == 200 and token in again.text
    assert "already exists" not in again.text
    assert token not in client.get("/admin/connections").text


def test_a_form_token_of_another_staff_member_is_refused(app, district):
    admin = sign_in(app, "skinner", district.admin_password)
    form = _new_student_form(admin)
    admin.post("/admin/users/new", data=form, follow_redirects=False)
    other = sign_in(app, "chalmers", district.school_admin_password)
    stolen = {**form, "csrf_token": csrf_of(other.get("/admin/users/new").text)}
    refused = other.post("/admin/users/new", data=stolen, follow_redirects=False)
    assert refused.status_code == 400


def test_every_form_that_changes_something_carries_a_one_time_token(app, district):
    # Issue 14 item 2, on every staff page: a POST form without a form token is a reading
    # (print, download) or signing in/out, never a change. Found without one: the upstream
    # sign-in settings, a pull's source settings, and the final "delete" confirmation.
    client = sign_in(app, "skinner", district.admin_password)
    reads = ("/admin/login", "/admin/logout", "/admin/export", "/admin/users/bulk")
    pages = [
        "/admin/users",
        f"/admin/users/{district.manual_student}",
        "/admin/users/new",
        "/admin/import",
        "/admin/requests",
        "/admin/schools",
        "/admin/connections",
        "/admin/connections/Clever/sign-in",
        "/admin/settings",
    ]
    user_page = client.get(f"/admin/users/{district.manual_student}").text
    confirm = client.post(
        f"/admin/users/{district.manual_student}/delete", data={"csrf_token": csrf_of(user_page)}
    )
    assert "Delete bartsimpson" in confirm.text
    missing = []
    for path, html in [("delete", confirm.text)] + [(p, client.get(p).text) for p in pages]:
        for action, body in re.findall(
            r'<form method="post" action="([^"]*)"[^>]*>(.*?)</form>', html, re.S
        ):
            if action not in reads and 'name="form_token"' not in body:
                missing.append(f"{path}: {action}")
    assert missing == []
