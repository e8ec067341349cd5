"""A connection's default role and school in the staff app and the admin API, and users marked
"incomplete — no role/school" until they have both (issue 10, defect 4)."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.web.conftest import csrf_of, sign_in

# Okta's "SCIM 2.0 Spec Test" user: no role, no school.
OKTA_USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "okta.spec@example.org",
    "name": {"givenName": "Spec", "familyName": "Tester"},
    "active": True,
}
INCOMPLETE = "incomplete — no role/school"


def _okta_user(app, admin: TestClient) -> str:
    token = admin.post("/admin/api/connections", json={"name": "Okta", "kind": "scim"}).json()
    pushed = TestClient(app, headers={"Authorization": f"Bearer {token['token']}"}).post(
        "/scim/v2/Users", json=OKTA_USER
    )
    assert pushed.status_code == 201, pushed.text
    return pushed.json()["id"]


def test_incomplete_users_are_marked_and_counted_until_the_defaults_complete_them(app, district):
    with TestClient(app, headers={"Authorization": f"Bearer {district.api_token}"}) as admin:
        user_id = _okta_user(app, admin)
        listed = {c["name"]: c for c in admin.get("/admin/api/connections").json()["connections"]}
        assert (listed["Okta"]["incomplete"], listed["Clever"]["incomplete"]) == (1, 0)
        staff = sign_in(app, "skinner", district.admin_password)
        row = staff.get("/admin/users", params={"q": "tester"}).text
        assert INCOMPLETE in row
        assert INCOMPLETE in staff.get(f"/admin/users/{user_id}").text
        assert "1</strong> user(s) incomplete" in staff.get("/admin/connections").text
        assert INCOMPLETE not in staff.get("/admin/users", params={"q": "simpson"}).text

        changed = admin.patch(
            "/admin/api/connections/Okta",
            json={"default_role": "student", "default_school": "lincoln"},
        )
        assert changed.status_code == 200, changed.text
        body = changed.json()
        assert body["changes"]["default_role"] == [None, "student"]
        assert (body["connection"]["default_school"], body["connection"]["incomplete"]) == (
            "lincoln",
            0,
        )
        assert INCOMPLETE not in staff.get(f"/admin/users/{user_id}").text
        assert admin.get(f"/admin/api/users/{user_id}").json()["role"] == "student"


def test_bad_defaults_get_specific_json_errors(app, district):
    with TestClient(app, headers={"Authorization": f"Bearer {district.api_token}"}) as admin:
        admin.post("/admin/api/connections", json={"name": "Okta", "kind": "scim"})
        cases = [
            ({"default_role": "wizard"}, 400, "Unknown role 'wizard'"),
            ({"default_school": "nope"}, 400, "No school with sourcedId 'nope'."),
            ({"default_school": 7}, 400, "default_school must be a string or null"),
            ({"colour": "red"}, 400, "Unknown field 'colour'"),
        ]
        for body, status, detail in cases:
            response = admin.patch("/admin/api/connections/Okta", json=body)
            assert response.status_code == status and detail in response.json()["detail"], body
        assert admin.patch("/admin/api/connections/Nope", json={}).status_code == 404
        made = admin.post(
            "/admin/api/connections",
            json={"name": "Entra", "kind": "scim", "default_role": "wizard"},
        )
        assert made.status_code == 400
        names = [c["name"] for c in admin.get("/admin/api/connections").json()["connections"]]
        assert "Entra" not in names  # refused as a whole


def test_connections_page_sets_the_defaults(app, district):
    staff = sign_in(app, "skinner", district.admin_password)
    page = staff.get("/admin/connections").text
    saved = staff.post(
        "/admin/connections/Clever/defaults",
        data={"csrf_token": csrf_of(page), "default_role": "teacher", "default_school": "other"},
    )
    assert saved.status_code == 200 and "Defaults of Clever saved." in saved.text
    assert '<option value="other" selected>' in saved.text
    refused = staff.post(
        "/admin/connections/Clever/defaults",
        data={"csrf_token": csrf_of(page), "default_role": "teacher", "default_school": "gone"},
    )
    assert refused.status_code == 400 and "No school with sourcedId" in refused.text
