"""A hub that pushes record by record over REST (our extension): PUT upserts, DELETE deactivates."""

from __future__ import annotations

import pytest

from server.domain.actors import system_actor
from server.domain.connections import create_connection
from tests.oneroster.conftest import V1P2, bearer
from tests.wire import imsx_failure


@pytest.fixture
def hub(database, district) -> str:
    with database.session() as session:
        issued = create_connection(session, system_actor(district.tenant_id), "Hub", "oneroster")
        return issued.token


def _ref(sourced_id: str, kind: str = "org") -> dict[str, str]:
    return {"href": f"https://hub.example/{sourced_id}", "sourcedId": sourced_id, "type": kind}


def _push_school_year(api, hub):
    headers = bearer(hub)
    pushes = [
        (
            "orgs/east",
            {
                "org": {
                    "name": "East High",
                    "type": "school",
                    "identifier": "EHS",
                    "parent": _ref("district"),
                }
            },
        ),
        (
            "academicSessions/east-fall",
            {
                "academicSession": {
                    "title": "Fall East",
                    "type": "term",
                    "startDate": "2026-08-24",
                    "endDate": "2026-12-18",
                    "schoolYear": "2027",
                }
            },
        ),
        (
            "courses/east-chem",
            {
                "course": {
                    "title": "Chemistry",
                    "courseCode": "CHEM",
                    "org": _ref("east"),
                    "grades": ["10"],
                }
            },
        ),
        (
            "classes/east-chem-1",
            {
                "class": {
                    "title": "Chemistry 1",
                    "classCode": "CH1",
                    "classType": "scheduled",
                    "school": _ref("east"),
                    "course": _ref("east-chem", "course"),
                    "terms": [_ref("east-fall", "academicSession")],
                    "periods": ["3"],
                }
            },
        ),
        (
            "users/east-s1",
            {
                "user": {
                    "sourcedId": "east-s1",
                    "status": "active",
                    "enabledUser": "true",
                    "givenName": "Eve",
                    "familyName": "Easton",
                    "username": "eve.easton",
                    "roles": [{"roleType": "primary", "role": "student", "org": _ref("east")}],
                    "grades": ["10"],
                    "pronouns": "she/her",
                }
            },
        ),
        (
            "enrollments/east-e1",
            {
                "enrollment": {
                    "user": _ref("east-s1", "user"),
                    "class": _ref("east-chem-1", "class"),
                    "school": _ref("east"),
                    "role": "student",
                    "primary": "false",
                }
            },
        ),
    ]
    return [(path, api.put(f"{V1P2}/{path}", json=body, headers=headers)) for path, body in pushes]


def test_a_hub_pushes_a_school_record_by_record_and_apps_read_it(api, hub, reader):
    for path, response in _push_school_year(api, hub):
        assert response.status_code == 201, (path, response.text)
    token = reader()
    user = api.get(f"{V1P2}/users/east-s1", headers=bearer(token)).json()["user"]
    assert user["username"] == "eve.easton"
    assert user["pronouns"] == "she/her"
    assert user["roles"][0]["org"]["sourcedId"] == "east"
    students = api.get(f"{V1P2}/classes/east-chem-1/students", headers=bearer(token)).json()
    assert [u["sourcedId"] for u in students["users"]] == ["east-s1"]
    klass = api.get(f"{V1P2}/classes/east-chem-1", headers=bearer(token)).json()["class"]
    assert klass["terms"][0]["sourcedId"] == "east-fall"


def test_pushing_the_same_records_again_changes_nothing(api, hub, reader, database):
    _push_school_year(api, hub)
    before = api.get(f"{V1P2}/users/east-s1", headers=bearer(reader())).json()["user"]
    again = _push_school_year(api, hub)
    assert [r.status_code for _, r in again] == [200] * 6
    after = api.get(f"{V1P2}/users/east-s1", headers=bearer(reader())).json()["user"]
    assert after["dateLastModified"] == before["dateLastModified"]


def test_delete_marks_tobedeleted_and_put_with_status_active_brings_it_back(api, hub, reader):
    _push_school_year(api, hub)
    assert api.delete(f"{V1P2}/users/east-s1", headers=bearer(hub)).status_code == 204
    user = api.get(f"{V1P2}/users/east-s1", headers=bearer(reader())).json()["user"]
    assert (user["status"], user["enabledUser"]) == ("tobedeleted", "false")
    assert api.delete(f"{V1P2}/enrollments/east-e1", headers=bearer(hub)).status_code == 204
    students = api.get(f"{V1P2}/classes/east-chem-1/students", headers=bearer(reader())).json()
    assert students["users"] == []
    back = api.put(
        f"{V1P2}/users/east-s1",
        json={
            "user": {
                "status": "active",
                "givenName": "Eve",
                "familyName": "Easton",
                "roles": [{"roleType": "primary", "role": "student", "org": _ref("east")}],
            }
        },
        headers=bearer(hub),
    )
    assert back.status_code == 200
    assert back.json()["user"]["status"] == "active"
    imsx_failure(api.delete(f"{V1P2}/users/nobody", headers=bearer(hub)), 404, "unknownobject")


def test_pushes_need_a_connection_token(api, reader, district):
    response = api.put(f"{V1P2}/orgs/x", json={"org": {"name": "X"}})
    imsx_failure(response, 401, "unauthorisedrequest")
    app_token = api.put(f"{V1P2}/orgs/x", json={"org": {"name": "X"}}, headers=bearer(reader()))
    imsx_failure(app_token, 401, "unauthorisedrequest")


def test_a_hub_cannot_change_what_another_source_owns(api, hub):
    response = api.put(
        f"{V1P2}/users/north-s1-1",
        json={
            "user": {
                "givenName": "Hacked",
                "familyName": "X",
                "roles": [{"roleType": "primary", "role": "student", "org": _ref("north")}],
            }
        },
        headers=bearer(hub),
    )
    assert "R109" in imsx_failure(response, 409, "invaliddata")["imsx_description"]
    deleting = api.delete(f"{V1P2}/classes/north-bio-1", headers=bearer(hub))
    assert "R109" in imsx_failure(deleting, 409, "invaliddata")["imsx_description"]


def test_bad_bodies_and_unknown_references_are_invaliddata(api, hub):
    cases = [
        ("orgs/y", b"not json", 400),
        ("orgs/y", {"organisation": {}}, 422),
        ("orgs/y", {"org": {"type": "school"}}, 422),
        ("orgs/y", {"org": {"name": "Y", "type": "castle"}}, 422),
        ("classes/z", {"class": {"title": "Z", "school": _ref("nowhere")}}, 422),
        ("users/q", {"user": {"givenName": "Q", "familyName": "Q", "roles": []}}, 422),
        ("users/q", {"user": {"sourcedId": "other", "roles": []}}, 422),
        ("users/q", {"user": {"givenName": "Q", "roles": [{"role": "student"}]}}, 422),
        ("users/q", {"user": {"givenName": 7, "roles": [{"role": "student"}]}}, 422),
        ("enrollments/q", {"enrollment": {"user": _ref("north-s1-1", "user")}}, 422),
    ]
    for path, body, status in cases:
        if isinstance(body, bytes):
            response = api.put(f"{V1P2}/{path}", content=body, headers=bearer(hub))
        else:
            response = api.put(f"{V1P2}/{path}", json=body, headers=bearer(hub))
        assert response.status_code == status, (path, body, response.text)
        assert (
            response.json()["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"]
            == "invaliddata"
        )


def _student(username: str, given: str = "Kid") -> dict:
    roles = [{"roleType": "primary", "role": "student", "org": _ref("north")}]
    return {"user": {"username": username, "givenName": given, "familyName": "X", "roles": roles}}


def test_a_hub_set_to_adopt_takes_over_manual_accounts_but_never_sso_ones(api, database, district):
    # Issue 11 defect 2 over the OneRoster push: adoption goes through the same SSO guard.
    with database.session() as session:
        system = system_actor(district.tenant_id)
        clever = create_connection(session, system, "Clever", "oneroster", sso_provider="Clever")
        adopter = create_connection(session, system, "Adopter", "oneroster", adopt_by="username")
        from server.domain import users

        users.create_user(session, system, {"given_name": "Man", "username": "manual.kid"})
    made = api.put(f"{V1P2}/users/c-1", json=_student("clever.kid"), headers=bearer(clever.token))
    assert made.status_code == 201, made.text
    refused = api.put(
        f"{V1P2}/users/a-1", json=_student("CLEVER.KID"), headers=bearer(adopter.token)
    )
    assert refused.status_code == 409 and "Clever" in refused.json()["imsx_description"]
    adopted = api.put(
        f"{V1P2}/users/a-2", json=_student("manual.kid", "Adopted"), headers=bearer(adopter.token)
    )
    assert adopted.status_code == 200, adopted.text
    assert adopted.json()["user"]["sourcedId"] == "a-2"
    assert adopted.json()["user"]["givenName"] == "Adopted"


def test_an_aide_enrollment_is_refused_over_12_with_the_roles_12_knows(api, hub, reader):
    """The 1.2 enrollment role vocabulary is administrator, proctor, student, teacher
    (``EnrollmentDType.role`` in 1EdTech's 1.2 OpenAPI; 1.1 still had ``aide``)."""
    _push_school_year(api, hub)
    body = {
        "enrollment": {
            "user": _ref("east-s1", "user"),
            "class": _ref("east-chem-1", "class"),
            "role": "aide",
        }
    }
    response = api.put(f"{V1P2}/enrollments/east-aide", json=body, headers=bearer(hub))
    assert response.status_code == 422, response.text
    status = response.json()
    assert status["imsx_codeMajor"] == "failure"
    assert "administrator, proctor, student, teacher" in status["imsx_description"]
    aide = api.get(f"{V1P2}/enrollments/east-aide", headers=bearer(reader()))
    imsx_failure(aide, 404, "unknownobject")


def test_a_pushed_primary_org_is_served_as_pushed(api, hub, reader):
    """``primaryOrg`` of ``UserDType`` is its own field, not "the first primary role"."""
    _push_school_year(api, hub)
    roles = [
        {"roleType": "primary", "role": "student", "org": _ref("east")},
        {"roleType": "secondary", "role": "student", "org": _ref("north")},
    ]
    body = {
        "user": {
            "givenName": "Pat",
            "familyName": "Twoschools",
            "roles": roles,
            "primaryOrg": _ref("north"),
        }
    }
    assert api.put(f"{V1P2}/users/east-s2", json=body, headers=bearer(hub)).status_code == 201
    user = api.get(f"{V1P2}/users/east-s2", headers=bearer(reader())).json()["user"]
    assert user["primaryOrg"]["sourcedId"] == "north"
    body["user"]["primaryOrg"] = _ref("nowhere")
    refused = api.put(f"{V1P2}/users/east-s2", json=body, headers=bearer(hub))
    assert refused.status_code == 422 and "nowhere" in refused.json()["imsx_description"]
