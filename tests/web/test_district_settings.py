"""District settings (issue 14, item 7): a page for district admins, the admin API and
``rollcall tenant set``, all through one audited domain call."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.web.conftest import csrf_of, sign_in


def test_district_admin_enables_badges_for_grade_four_and_it_is_audited(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    form_page = client.get("/admin/settings")
    assert form_page.status_code == 200 and "District settings" in form_page.text
    saved = client.post(
        "/admin/settings",
        data={
            "csrf_token": csrf_of(form_page.text),
            "badge_grades": ["KG", "01", "04"],
            "username_pattern": "{first}.{last}",
            "password_policy": "classic",
            "shrink_percent": "25",
            "retention_days": "60",
        },
    )
    assert "Saved: badge grades, username pattern, password policy" in saved.text
    assert 'value="04" checked' in saved.text and 'value="02" checked' not in saved.text
    audit = client.get("/admin/audit", params={"action": "settings.change"}).text
    assert "settings.change" in audit and "badge_grades" in audit
    page = client.get(f"/admin/users/{district.manual_student}").text  # Bart is in grade 04
    assert "not enabled for this grade" not in page


def test_bad_values_are_refused_with_the_reason_and_nothing_is_saved(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    csrf = csrf_of(client.get("/admin/settings").text)
    refused = client.post(
        "/admin/settings",
        data={
            "csrf_token": csrf,
            "badge_grades": ["04"],
            "username_pattern": "{first}{last}",
            "password_policy": "default",
            "shrink_percent": "250",
            "retention_days": "30",
        },
    )
    assert refused.status_code == 400 and "between 0 and 1" in refused.text
    assert 'value="04" checked' not in client.get("/admin/settings").text


def test_only_district_admins_see_the_settings(app, district):
    school_admin = sign_in(app, "chalmers", district.school_admin_password)
    assert school_admin.get("/admin/settings").status_code == 403
    assert "/admin/settings" not in school_admin.get("/admin/users").text


def test_the_api_reads_and_patches_the_settings(app, district):
    headers = {"Authorization": f"Bearer {district.api_token}"}
    with TestClient(app) as client:
        current = client.get("/admin/api/settings", headers=headers).json()
        assert current["password_policy"] == "default" and current["retention_days"] == 30
        changed = client.patch(
            "/admin/api/settings", json={"badge_grades": ["3", "KG"]}, headers=headers
        )
        assert changed.status_code == 200
        assert changed.json()["badge_grades"] == ["KG", "03"]
        assert changed.json()["changed"]["badge_grades"][1] == ["KG", "03"]
        unknown = client.patch("/admin/api/settings", json={"colour": "red"}, headers=headers)
        assert unknown.status_code == 400 and "Unknown field 'colour'" in unknown.json()["detail"]
        bad = client.patch("/admin/api/settings", json={"password_policy": "weak"}, headers=headers)
        assert bad.status_code == 400 and bad.json()["field"] == "password_policy"
        spec = client.get("/admin/api/openapi.json").json()
        assert set(spec["paths"]["/settings"]) >= {"get", "patch"}


KEEP = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"


def test_the_kept_provider_attributes_are_set_by_api_and_page(app, district):
    # issue 12 item 1: the per-tenant allow-list of provider attributes
    headers = {"Authorization": f"Bearer {district.api_token}"}
    with TestClient(app) as client:
        assert (
            client.get("/admin/api/settings", headers=headers).json()["keep_provider_attributes"]
            == []
        )
        changed = client.patch(
            "/admin/api/settings",
            json={"keep_provider_attributes": ["title", KEEP, "title"]},
            headers=headers,
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["keep_provider_attributes"] == ["title", KEEP]
        bad = client.patch(
            "/admin/api/settings",
            json={"keep_provider_attributes": ["phone numbers!"]},
            headers=headers,
        )
        assert bad.status_code == 400 and bad.json()["field"] == "keep_provider_attributes"
    admin = sign_in(app, "skinner", district.admin_password)
    form = admin.get("/admin/settings").text
    assert f'value="title, {KEEP}"' in form
    saved = admin.post(
        "/admin/settings",
        data={
            "csrf_token": csrf_of(form),
            "badge_grades": ["PK", "KG", "01", "02"],
            "username_pattern": "{first}{last}",
            "password_policy": "default",
            "shrink_percent": "20",
            "retention_days": "30",
            "keep_provider_attributes": "metadata.homeAddress, title",
        },
    )
    assert "Saved: kept provider attributes." in saved.text
    assert 'value="metadata.homeAddress, title"' in saved.text
