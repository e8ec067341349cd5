"""The admin JSON API as a district's script uses it, with a staff bearer token."""

from __future__ import annotations

from starlette.testclient import TestClient

from server.web.bodies import check_body
from tests.web.conftest import csrf_of, sign_in
from tests.wire import admin_error


def api(app, token: str) -> TestClient:
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


def test_api_needs_a_staff_token(app, district):
    response = TestClient(app).get("/admin/api/users")
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    assert (
        TestClient(app, headers={"Authorization": "Bearer rc_nope"})
        .get("/admin/api/users")
        .status_code
        == 401
    )


def test_search_create_update_and_reset_through_the_api(app, district):
    client = api(app, district.api_token)
    found = client.get("/admin/api/users", params={"q": "simpson"}).json()
    assert found["total"] == 2
    created = client.post(
        "/admin/api/users",
        json={
            "given_name": "Ralph",
            "family_name": "Wiggum",
            "schools": ["lincoln"],
            "grades": ["02"],
            "issue_password": True,
        },
    )
    assert created.status_code == 201
    body = created.json()
    assert body["username"] == "ralphwiggum" and body["credential_state"] == "issued"
    assert body["password"].count("-") == 2  # a young student gets a word password
    user = client.get(f"/admin/api/users/{body['id']}")
    changed = client.patch(
        f"/admin/api/users/{body['id']}",
        json={"email": "ralph@example.org"},
        headers={"If-Match": user.headers["etag"]},
    )
    assert changed.json()["changes"] == {"email": [None, "ralph@example.org"]}
    stale = client.patch(
        f"/admin/api/users/{body['id']}",
        json={"email": "x@example.org"},
        headers={"If-Match": user.headers["etag"]},
    )
    assert stale.status_code == 412
    reset = client.post(f"/admin/api/users/{body['id']}/password", json={"temporary": False})
    assert reset.status_code == 200 and reset.json()["user"]["credential_state"] == "active"


def test_api_refuses_sso_password_changes_with_409_and_the_reason(app, district):
    client = api(app, district.api_token)
    response = client.post(f"/admin/api/users/{district.clever_student}/password", json={})
    assert response.status_code == 409
    assert response.json()["code"] == "R107"
    assert "managed by Clever" in response.json()["detail"]


def test_bad_input_gets_a_specific_error_not_a_500(app, district):
    client = api(app, district.api_token)
    admin_error(client.post("/admin/api/users", content=b"not json"), 400, "InvalidValue")
    bad_grade = client.post(
        "/admin/api/users", json={"given_name": "A", "family_name": "B", "grades": ["Year 99"]}
    )
    assert bad_grade.status_code == 400 and bad_grade.json()["field"] == "grades"
    taken = client.post(
        "/admin/api/users", json={"given_name": "A", "family_name": "B", "username": "BARTSIMPSON"}
    )
    assert taken.status_code == 409 and taken.json()["code"] == "R104"
    admin_error(client.get("/admin/api/users/nope"), 404, "NotFound")


def test_connections_and_audit_and_openapi(app, district):
    client = api(app, district.api_token)
    created = client.post(
        "/admin/api/connections", json={"name": "Okta", "kind": "scim", "profile": "okta"}
    )
    assert created.status_code == 201 and created.json()["token"].startswith("rc_")
    names = [c["name"] for c in client.get("/admin/api/connections").json()["connections"]]
    assert names == ["Manual", "Clever", "Okta"]
    events = client.get("/admin/api/audit", params={"action": "connection."}).json()["events"]
    assert events[0]["action"] == "connection.create" and events[0]["target"] == "Okta"
    spec = client.get("/admin/api/openapi.json").json()
    assert spec["openapi"].startswith("3.1") and "/users/{user_id}/password" in spec["paths"]


def test_imports_api_takes_a_staff_session_with_its_csrf_header(app, district):
    import re

    from tests.web.conftest import sign_in

    client = sign_in(app, "skinner", district.admin_password)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/users").text).group(1)
    csv = b"Student Full Name,Username,Year Group,Class,Gender\nRalph Wiggum,,2,Maths 4B,M\n"
    files = {"file": ("students.csv", csv, "text/csv")}
    data = {"dry_run": "true", "school": "lincoln"}
    assert client.post("/admin/api/imports", files=files, data=data).status_code == 401
    trial = client.post(
        "/admin/api/imports", files=files, data=data, headers={"X-CSRF-Token": csrf}
    )
    assert trial.status_code == 200, trial.text
    assert trial.json()["outcomes"] == {"created": 1}


def test_nul_characters_are_refused_with_400_on_every_database(app, district):
    client = api(app, district.api_token)
    made = client.post("/admin/api/connections", json={"name": "\x00", "kind": "csv"})
    assert made.status_code == 400 and "NUL" in made.json()["detail"]
    admin_error(client.get("/admin/api/users", params={"q": "a\x00"}), 400, "InvalidValue")
    admin_error(client.get("/admin/api/users/%00"), 404, "NotFound")  # no id holds a NUL
    school = client.post(
        "/admin/api/users", json={"given_name": "A", "family_name": "B", "schools": ["x\x00"]}
    )
    admin_error(school, 400, "InvalidValue")


def test_district_admin_registers_clients_through_the_api(app, district):
    client = api(app, district.api_token)
    rp = client.post(
        "/admin/api/clients",
        json={"name": "Reading Quest", "redirect_uris": ["https://quest.example/callback"]},
    )
    assert rp.status_code == 201 and rp.json()["client_secret"]
    app_client = client.post(
        "/admin/api/clients", json={"name": "Gradebook", "kind": "api", "schools": ["lincoln"]}
    )
    assert app_client.status_code == 201
    assert any("roster-core.readonly" in s for s in app_client.json()["scopes"])
    listed = client.get("/admin/api/clients").json()["clients"]
    assert [c["name"] for c in listed] == ["Reading Quest", "Gradebook"]
    assert all("client_secret" not in c for c in listed)
    missing = client.post("/admin/api/clients", json={"name": "No Redirect"})
    assert missing.status_code == 400 and "redirect URI" in missing.json()["detail"]
    token = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(app_client.json()["client_id"], app_client.json()["client_secret"]),
    )
    assert token.status_code == 200


def test_classes_api_shows_a_teacher_their_classes_and_students(app, district, database):
    from server.domain.staff import create_staff_token, find_staff
    from server.domain.tenants import get_tenant

    with database.session() as session:
        edna = find_staff(session, get_tenant(session, "Springfield").id, "edna")
        token = create_staff_token(session, edna, "tests")
    teacher = api(app, token)
    classes = teacher.get("/admin/api/classes").json()["classes"]
    assert [c["title"] for c in classes] == ["Maths 4B"]
    students = teacher.get(f"/admin/api/classes/{district.maths}/students").json()["students"]
    assert sorted(s["given_name"] for s in students) == ["Bart", "Milhouse"]
    assert teacher.get("/admin/api/clients").status_code == 403


def test_a_refusal_says_the_same_on_the_page_and_in_the_api(app, district):
    """One exception handler answers domain errors for both admin surfaces (issue 16 item 3):
    the page shows the message at the error's status, the API the documented Error body."""
    teacher = sign_in(app, "edna", district.teacher_password)
    refused_page = teacher.get("/admin/connections")
    assert refused_page.status_code == 403
    message = "Only district admins manage connections, tokens and clients."
    assert message in refused_page.text
    csrf = csrf_of(teacher.get("/admin/users").text)
    refused = teacher.get("/admin/api/connections", headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403
    check_body(refused.json(), "Error")
    assert refused.json() == {"error": "NotAllowed", "detail": message, "code": None, "field": None}
    missing = api(app, district.api_token).get("/admin/api/users/nobody")
    assert missing.status_code == 404 and missing.json()["error"] == "NotFound"
