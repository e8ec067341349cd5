"""A user pushed without an education role is served only once it has a role and a school.

Issue 10, defect 4. An Entra app-role assignment without the education extension, or Okta's
test user, arrives with no role and no school. OneRoster 1.2 requires ``roles`` with at least
one entry (1EdTech's OpenAPI document, ``minItems: 1``); serving ``roles: []``, or a 1.1
``role: "student"`` with ``orgs: []``, makes a third-party client reject the whole page. Such a
user is not served at all until the connection's default role and school complete it.
"""

from __future__ import annotations

from sqlalchemy import select

from server.db import Connection
from server.domain import completeness, connections
from server.domain.actors import system_actor
from tests.oneroster.conftest import V1P1, V1P2, bearer
from tests.wire import imsx_failure

# The user Okta's "SCIM 2.0 Spec Test" creates: core attributes only, no role, no school.
OKTA_TEST_USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "okta.test.user@example.org",
    "name": {"givenName": "Okta", "familyName": "Tester"},
    "emails": [{"primary": True, "value": "okta.test.user@example.org", "type": "work"}],
    "active": True,
}


def _scim_connection(database, district) -> str:
    with database.session() as session:
        system = system_actor(district.tenant_id, "test")
        return connections.create_connection(session, system, "Okta", "scim").token


def _set_defaults(database, district, **defaults) -> None:
    with database.session() as session:
        system = system_actor(district.tenant_id, "test")
        okta = session.scalars(select(Connection).where(Connection.name == "Okta")).one()
        completeness.set_defaults(session, system, okta, **defaults)


def _served(api, token: str, user_id: str) -> dict[str, object]:
    """What each version serves of the user: single reads, and presence in lists and counts."""
    seen: dict[str, object] = {}
    for version in (V1P1, V1P2):
        one = api.get(f"{version}/users/{user_id}", headers=bearer(token))
        listed = api.get(f"{version}/users", params={"limit": 1000}, headers=bearer(token))
        students = api.get(f"{version}/students", params={"limit": 1000}, headers=bearer(token))
        at_school = api.get(f"{version}/schools/north/students", headers=bearer(token))
        ids = {
            name: [u["sourcedId"] for u in response.json()["users"]]
            for name, response in (("users", listed), ("students", students), ("north", at_school))
        }
        assert int(listed.headers["X-Total-Count"]) == len(ids["users"])
        seen[version] = {
            "status": one.status_code,
            "user": one.json().get("user"),
            **{name: user_id in found for name, found in ids.items()},
        }
    return seen


def test_a_user_pushed_without_role_or_school_is_not_served_until_defaults_complete_it(
    api, database, district, reader
):
    token = reader()
    idp = {"Authorization": f"Bearer {_scim_connection(database, district)}"}
    created = api.post("/scim/v2/Users", json=OKTA_TEST_USER, headers=idp)
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    before = _served(api, token, user_id)
    for version in (V1P1, V1P2):
        assert before[version] == {
            "status": 404,
            "user": None,
            "users": False,
            "students": False,
            "north": False,
        }

    _set_defaults(database, district, role="student", school_sourced_id="north")
    again = api.put(f"/scim/v2/Users/{user_id}", json=OKTA_TEST_USER, headers=idp)
    assert again.status_code == 200, again.text
    after = _served(api, token, user_id)
    for version in (V1P1, V1P2):
        assert after[version]["status"] == 200
        assert after[version]["users"] and after[version]["students"] and after[version]["north"]
    assert after[V1P1]["user"]["role"] == "student"
    assert [org["sourcedId"] for org in after[V1P1]["user"]["orgs"]] == ["north"]
    roles = after[V1P2]["user"]["roles"]
    assert [(r["roleType"], r["role"], r["org"]["sourcedId"]) for r in roles] == [
        ("primary", "student", "north")
    ]


def test_the_role_a_push_names_wins_over_the_default_role(api, database, district, reader):
    token = reader()
    idp = {"Authorization": f"Bearer {_scim_connection(database, district)}"}
    _set_defaults(database, district, role="student", school_sourced_id="south")
    teacher = {**OKTA_TEST_USER, "userName": "t@example.org", "userType": "teacher"}
    user_id = api.post("/scim/v2/Users", json=teacher, headers=idp).json()["id"]
    served = api.get(f"{V1P2}/users/{user_id}", headers=bearer(token)).json()["user"]
    assert [(r["role"], r["org"]["sourcedId"]) for r in served["roles"]] == [("teacher", "south")]
    assert api.get(f"{V1P1}/teachers/{user_id}", headers=bearer(token)).status_code == 200


def test_a_default_role_without_a_default_school_still_leaves_the_user_unserved(
    api, database, district, reader
):
    token = reader()
    idp = {"Authorization": f"Bearer {_scim_connection(database, district)}"}
    _set_defaults(database, district, role="student")
    user_id = api.post("/scim/v2/Users", json=OKTA_TEST_USER, headers=idp).json()["id"]
    served = _served(api, token, user_id)
    assert served[V1P1]["status"] == served[V1P2]["status"] == 404
    with database.session() as session:
        counts = completeness.incomplete_counts(session, district.tenant_id)
        okta = session.scalars(select(Connection).where(Connection.name == "Okta")).one()
        assert counts == {okta.id: 1}


def test_a_oneroster_push_without_roles_takes_the_defaults_or_is_refused(
    api, database, district, reader
):
    with database.session() as session:
        system = system_actor(district.tenant_id, "test")
        hub = connections.create_connection(session, system, "Okta", "oneroster").token
    body = {"user": {"givenName": "No", "familyName": "Role", "username": "norole"}}
    refused = api.put(f"{V1P2}/users/no-role", json=body, headers=bearer(hub))
    assert (
        "default role and school" in imsx_failure(refused, 422, "invaliddata")["imsx_description"]
    )
    token = reader()
    imsx_failure(api.get(f"{V1P2}/users/no-role", headers=bearer(token)), 404, "unknownobject")
    _set_defaults(database, district, role="student", school_sourced_id="south")
    accepted = api.put(f"{V1P2}/users/no-role", json=body, headers=bearer(hub))
    assert accepted.status_code == 201, accepted.text
    served = api.get(f"{V1P1}/users/no-role", headers=bearer(token)).json()["user"]
    assert (served["role"], [o["sourcedId"] for o in served["orgs"]]) == ("student", ["south"])
