"""The admin UI as staff use it: sign in, find, add, manage, reset, print, connections, audit."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from tests.web.conftest import bulk, csrf_of, sign_in


def test_pages_need_a_session_and_wrong_passwords_say_nothing_specific(app, district):
    client = TestClient(app)
    response = client.get("/admin/users", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/admin/login")
    bad = client.post("/admin/login", data={"username": "skinner", "password": "nope"})
    unknown = client.post("/admin/login", data={"username": "nobody", "password": "nope"})
    assert bad.status_code == unknown.status_code == 401
    assert "do not match an active staff account" in bad.text
    assert bad.text.replace("skinner", "") == unknown.text.replace("nobody", "")


def test_session_cookie_is_httponly_and_samesite_lax(app, district):
    client = TestClient(app)
    response = client.post(
        "/admin/login",
        data={"username": "skinner", "password": district.admin_password},
        follow_redirects=False,
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_admin_finds_an_inactive_student_only_when_asked_and_reactivates_them(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    assert "Nelson" not in client.get("/admin/users", params={"q": "muntz"}).text
    found = client.get("/admin/users", params={"q": "muntz", "inactive": "1"}).text
    assert "Nelson" in found and "Inactive" in found
    page = client.get(f"/admin/users/{district.inactive_student}").text
    done = client.post(
        f"/admin/users/{district.inactive_student}/status",
        data={"csrf_token": csrf_of(page), "active": "1"},
    )
    assert "The account is active." in done.text
    assert "Nelson" in client.get("/admin/users", params={"q": "muntz"}).text


def test_admin_cannot_change_an_sso_students_password_and_sees_why(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    page = client.get(f"/admin/users/{district.clever_student}").text
    assert "SSO: Clever" in page and "Reset password" not in page
    response = client.post(
        f"/admin/users/{district.clever_student}/reset",
        data={"csrf_token": csrf_of(page), "kind": "temporary"},
    )
    assert response.status_code == 409
    assert "This account is managed by Clever. Change it in Clever" in response.text
    renamed = client.post(
        f"/admin/users/{district.clever_student}",
        data={"csrf_token": csrf_of(page), "username": "mvh"},
    )
    assert renamed.status_code == 409 and "break sign-in" in renamed.text


def test_forms_without_the_csrf_token_are_refused(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    response = client.post(
        f"/admin/users/{district.manual_student}/reset", data={"kind": "temporary"}
    )
    assert response.status_code == 403


def test_show_temporary_password_then_reset_issues_a_new_one(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    page = client.get(f"/admin/users/{district.manual_student}").text
    shown = client.post(
        f"/admin/users/{district.manual_student}/reveal", data={"csrf_token": csrf_of(page)}
    )
    assert district.temporary in shown.text
    reset = client.post(
        f"/admin/users/{district.manual_student}/reset",
        data={"csrf_token": csrf_of(page), "kind": "temporary"},
    )
    new = re.search(r'id="revealed">([^<]+)<', reset.text).group(1)
    assert new != district.temporary
    audit = client.get("/admin/audit", params={"target": district.manual_student}).text
    assert "credential.reveal" in audit and "credential.reset" in audit


def test_teacher_sees_only_their_class_resets_it_and_prints_the_paper_saver_sheet(app, district):
    client = sign_in(app, "edna", district.teacher_password)
    listing = client.get("/admin/users").text
    assert "Bart" in listing and "Milhouse" in listing and "Lisa" not in listing
    assert "Add student" not in listing
    assert client.get(f"/admin/users/{district.other_student}").status_code == 404
    csrf = csrf_of(listing)
    ids = [district.manual_student, district.clever_student]
    reset = client.post(
        "/admin/users/bulk", data={"csrf_token": csrf, "action": "reset_temporary", "user_id": ids}
    )
    assert "Reset 1 student password(s)." in reset.text and "managed by Clever" in reset.text
    sheet = client.post(
        "/admin/users/bulk",
        data={"csrf_token": csrf, "action": "print_paper_saver", "user_id": ids},
    )
    assert 'class="paper-saver"' in sheet.text and "Maths 4B" in sheet.text
    assert "Signs in with Clever." in sheet.text
    assert re.search(r'class="secret">[A-Za-z0-9-]{8,}</span> <small>', sheet.text)
    assert (
        client.post(
            "/admin/users/new", data={"csrf_token": csrf, "given_name": "A", "family_name": "B"}
        ).status_code
        == 403
    )


def test_school_admin_adds_a_student_and_is_offered_reactivation_of_a_match(app, district):
    client = sign_in(app, "chalmers", district.school_admin_password)
    form = client.get("/admin/users/new").text
    assert 'class="required">First name' in form
    data = {
        "csrf_token": csrf_of(form),
        "given_name": "Nelson",
        "family_name": "Muntz",
        "birth_date": "2016-04-01",
    }
    offered = client.post("/admin/users/new", data=data).text
    assert "An inactive account matches" in offered and "Reactivate" in offered
    created = client.post("/admin/users/new", data={**data, "confirm_new": "1"}).text
    assert "Student account created." in created
    assert re.search(r'id="revealed">[A-Za-z0-9-]{8,}<', created)


def test_district_admin_adds_a_connection_and_sees_its_token_once(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    page = client.get("/admin/connections").text
    added = client.post(
        "/admin/connections",
        data={"csrf_token": csrf_of(page), "name": "Entra ID", "kind": "scim", "profile": "entra"},
    ).text
    token = re.search(r'id="token">(rc_[^<]+)<', added).group(1)
    assert token not in client.get("/admin/connections").text
    teacher = sign_in(app, "edna", district.teacher_password)
    assert teacher.get("/admin/connections").status_code == 403


def test_credentials_pdf_download_holds_the_cards(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    ids = [district.manual_student, district.clever_student]
    response = bulk(client, "pdf_paper_saver", ids, address_checked="1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF") and len(response.content) > 1000
    per_page = bulk(client, "pdf_per_page", ids, address_checked="1")
    assert (
        per_page.content.count(b"/Type /Page\n") in (2, 0)
        or per_page.content.count(b"/Type /Page") >= 2
    )


def test_audit_log_filters_by_action_staff_and_date(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    page = client.get(f"/admin/users/{district.manual_student}").text
    client.post(
        f"/admin/users/{district.manual_student}/reveal", data={"csrf_token": csrf_of(page)}
    )
    log = client.get("/admin/audit", params={"action": "credential.reveal", "who": "skinner"}).text
    assert log.count("credential.reveal") >= 1 and "user.create" not in log
    assert "No events match." in client.get("/admin/audit", params={"to": "2000-01-01"}).text
    assert client.get("/admin/audit", params={"from": "not-a-date"}).status_code == 400
    teacher = sign_in(app, "edna", district.teacher_password)
    assert teacher.get("/admin/audit").status_code == 403


def test_connections_page_shows_recent_errors_a_provider_caused(app, district, database):
    from server.domain.connections import get_connection, record_failure
    from server.domain.tenants import get_tenant

    with database.session() as session:
        clever = get_connection(session, get_tenant(session, "Springfield").id, "Clever")
        for number in range(55):
            record_failure(
                session,
                clever.id,
                method="PUT",
                path=f"/users/{number}",
                status=409,
                error="The username 'bart' is already used by another account.",
                request_excerpt='{"password": "x", "token=rc_secretsecret1"}',
            )
    client = sign_in(app, "skinner", district.admin_password)
    page = client.get("/admin/connections").text
    assert "10 recent error(s) caused by Clever" in page
    assert "PUT /users/54" in page and "already used by another account" in page
    assert "rc_secretsecret1" not in page
    with database.session() as session:
        from sqlalchemy import func, select

        from server.db import ProviderFailure

        assert session.scalar(select(func.count()).select_from(ProviderFailure)) == 50


def test_bulk_reset_of_a_whole_grade_reaches_every_page(app, district, database):
    from server.db import Org
    from server.domain import roster_views, users
    from server.domain.actors import system_actor
    from server.domain.tenants import get_tenant
    from server.domain.users import RoleAssignment

    with database.session() as session:
        tenant = get_tenant(session, "Springfield")
        actor = system_actor(tenant.id)
        school = roster_views.find_by_sourced_id(session, Org, tenant.id, "lincoln")
        for number in range(60):
            users.create_user(
                session,
                actor,
                {
                    "given_name": f"Kid{number}",
                    "family_name": "Grade3",
                    "grades": ["03"],
                    "roles": [RoleAssignment(school.id, "student")],
                },
            )
    client = sign_in(app, "skinner", district.admin_password)
    listing = client.get("/admin/users", params={"grade": "03"}).text
    assert "Apply to all 60 users matching this search" in listing
    done = bulk(client, "reset_temporary", [], scope="all", grade="03")
    assert "Reset 60 student password(s)." in done.text


def test_repeated_wrong_staff_passwords_are_slowed_down_not_locked_out(app, district, database):
    client = TestClient(app)
    for _ in range(5):
        assert (
            client.post("/admin/login", data={"username": "skinner", "password": "x"}).status_code
            == 401
        )
    throttled = client.post(
        "/admin/login", data={"username": "skinner", "password": district.admin_password}
    )
    assert throttled.status_code == 429 and "wait" in throttled.text
    with database.session() as session:
        from sqlalchemy import update

        from server.db import LoginThrottle

        session.execute(update(LoginThrottle).values(blocked_until=None))
    assert sign_in(app, "skinner", district.admin_password)


def test_activation_qr_sheet_holds_a_one_time_link_not_a_password(app, district, database):
    import html as html_lib
    import urllib.parse

    client = sign_in(app, "skinner", district.admin_password)
    sheet = bulk(client, "print_activation_qr", [district.manual_student])
    assert sheet.status_code == 200 and "works once" in sheet.text
    assert district.temporary not in sheet.text
    svg = urllib.parse.unquote(
        html_lib.unescape(re.search(r'src="(data:image/svg[^"]+)"', sheet.text).group(1))
    )
    assert svg.startswith("data:image/svg+xml")
    from sqlalchemy import select

    from server.db import ActivationToken

    with database.session() as session:
        assert len(session.scalars(select(ActivationToken)).all()) == 1
