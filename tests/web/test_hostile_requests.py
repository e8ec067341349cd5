"""Malformed and probing requests to the admin API and pages get a specific 4xx, never a 500
(issue 11 defects 7 and 8: found by hand and by fresh-seed Schemathesis runs)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from tests.web.conftest import csrf_of, sign_in
from tests.web.test_admin_api import api

A_USER = {"given_name": "Ralph", "family_name": "Wiggum", "schools": ["lincoln"]}


@pytest.mark.parametrize(
    "body",
    [
        {**A_USER, "given_name": 5},
        {**A_USER, "given_name": ["Ralph"]},
        {**A_USER, "schools": [{}]},  # a fresh-seed Schemathesis find
        {**A_USER, "schools": "lincoln"},
        {**A_USER, "grades": [2]},
        {**A_USER, "temporary": "no"},
        {**A_USER, "nickname": "Ralphie"},
        {**A_USER, "primary_role": None},  # a fresh-seed Schemathesis find (issue 11)
    ],
)
def test_a_malformed_new_user_gets_400_naming_the_field(app, district, body):
    response = api(app, district.api_token).post("/admin/api/users", json=body)
    assert response.status_code == 400, response.text
    bad = next(k for k, v in body.items() if k not in A_USER or A_USER[k] != v)
    assert response.json()["field"] == bad


@pytest.mark.parametrize(
    "body",
    [
        {"given_name": 5},
        {"given_name": {"a": 1}},
        {"active": "yes"},
        {"nickname": "Bartman"},
        {"primary_role": None},
    ],
)
def test_a_malformed_or_unknown_change_gets_400_and_changes_nothing(app, district, body):
    client = api(app, district.api_token)
    before = client.get(f"/admin/api/users/{district.manual_student}").json()
    response = client.patch(f"/admin/api/users/{district.manual_student}", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == next(iter(body))
    assert client.get(f"/admin/api/users/{district.manual_student}").json() == before


def test_a_change_answers_the_user_as_get_shows_it(app, district):
    client = api(app, district.api_token)
    changed = client.patch(
        f"/admin/api/users/{district.manual_student}", json={"email": "bart@example.org"}
    )
    assert changed.status_code == 200, changed.text
    shown = client.get(f"/admin/api/users/{district.manual_student}").json()
    assert changed.json()["user"] == shown and shown["classes"] == ["Maths 4B"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Okta", "kind": "scim", "schools": 5},  # a fresh-seed Schemathesis find
        {"name": "Okta", "kind": "scim", "schools": [{}]},
        {"name": 7, "kind": "scim"},
        {"name": "Okta", "kind": "scim", "sso_provider": ["Okta"]},
        {"name": "Okta", "kind": "scim", "colour": "blue"},
    ],
)
def test_a_malformed_new_connection_gets_400(app, district, body):
    client = api(app, district.api_token)
    response = client.post("/admin/api/connections", json=body)
    assert response.status_code == 400, response.text
    names = [c["name"] for c in client.get("/admin/api/connections").json()["connections"]]
    assert "Okta" not in names


@pytest.mark.parametrize(
    "action",
    ["print", "print_badges", "print_activation_qr", "pdf", "pdf_per_page", "pdf_paper_saver"],
)
@pytest.mark.parametrize("who", ["unknown", "out_of_scope"])
def test_bulk_printing_an_unknown_or_hidden_user_is_refused_cleanly(app, district, action, who):
    client = sign_in(app, "chalmers", district.school_admin_password)  # Lincoln only
    csrf = csrf_of(client.get("/admin/users").text)
    user_id = "no-such-user" if who == "unknown" else district.other_student
    response = client.post(
        "/admin/users/bulk",
        data={"csrf_token": csrf, "action": action, "user_id": [district.manual_student, user_id]},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    done = parse_qs(urlsplit(response.headers["location"]).query)["done"][0]
    assert done == "No such user."


def test_the_staff_sign_in_page_names_no_district(app, district, database):
    # Issue 11 defect 8: /admin/login listed every tenant's name to anyone.
    from server.domain.actors import system_actor
    from server.domain.staff import create_staff
    from server.domain.tenants import create_tenant

    with database.session() as session:
        other = create_tenant(session, "Shelbyville Schools")
        staff = create_staff(session, system_actor(other.id), "lindsey", "district_admin")
    client = TestClient(app)
    page = client.get("/admin/login")
    assert page.status_code == 200
    assert "Springfield" not in page.text and "Shelbyville" not in page.text
    refused = client.post("/admin/login", data={"username": "lindsey", "password": "wrong"})
    assert "Shelbyville" not in refused.text
    # staff of another district type its name
    signed = client.post(
        "/admin/login",
        data={"username": "lindsey", "password": staff.password, "tenant": "Shelbyville Schools"},
        follow_redirects=False,
    )
    assert signed.status_code == 303


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,  # json.loads itself raised RecursionError: 500
        '{"given_name": ' + "[" * 900 + "]" * 900 + "}",  # parsed, then too deep to walk: 500
        '{"given_name": "Ralph\\ud800"}',  # a lone surrogate: no database stores it, 500
    ],
    ids=["100000-deep", "900-deep", "lone-surrogate"],
)
def test_json_nested_too_deep_or_not_text_gets_400(app, district, body):
    client = api(app, district.api_token)
    for method, path in (
        ("POST", "/admin/api/users"),
        ("PATCH", f"/admin/api/users/{district.manual_student}"),
    ):
        response = client.request(
            method, path, content=body.encode(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert "not valid JSON" in response.json()["detail"]


def test_a_damaged_apply_form_with_deeply_nested_json_is_refused_cleanly(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    csrf = csrf_of(client.get("/admin/import").text)
    response = client.post(
        "/admin/import/apply",
        data={"csrf_token": csrf, "choice": "[" * 100_000, "content": "", "signature": "x"},
    )
    assert response.status_code == 400 and "damaged" in response.text


@pytest.mark.parametrize("path", ["/admin/api/users", "/admin/api/audit"])
def test_listing_pages_take_whole_numbers_and_any_offset(app, district, path):
    # Found by hand (issue 11 re-check): limit=abc on the audit log, and any offset past
    # SQLite's 64-bit integers on either listing, answered 500.
    client = api(app, district.api_token)
    for query in ("limit=abc", "offset=abc", "offset=1.5"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400, (query, response.text)
        assert "whole numbers" in response.json()["detail"]
    for query in ("offset=" + "9" * 23, "offset=-5", "limit=" + "9" * 23, "limit=-1"):
        assert client.get(f"{path}?{query}").status_code == 200, query
    beyond = client.get(f"{path}?offset={10**23}").json()
    assert beyond.get("users", beyond.get("events")) == []


def test_search_text_longer_than_any_name_gets_400(app, district):
    # SQLite refuses LIKE patterns over 50,000 bytes: a 60,000-character search was a 500.
    client = api(app, district.api_token)
    response = client.get("/admin/api/users", params={"q": "a" * 60_000})
    assert response.status_code == 400 and response.json()["field"] == "search"
    assert client.get("/admin/api/users", params={"q": "a" * 500}).status_code == 200
