"""Replays of the request shapes Entra ID, Okta and Google Workspace really send.

The shapes follow recorded provisioning traffic (Entra's "Replace"/"False" quirks and its
member removal by value list, Okta's lookup-then-create and deactivation without DELETE,
Google's full-resource PUTs). Each identity provider talks through a connection with its
tolerance profile (``rollcall connection add … --profile entra``).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.db import Connection, User, new_id
from server.db.session import Database
from tests.scim.conftest import District, add_connection
from tests.scim.helpers import ENTERPRISE, GROUP, USER, IdP


@pytest.fixture
def entra(idp: IdP, database: Database, district: District) -> IdP:
    return IdP(idp.client, add_connection(database, district, "Entra", profile="entra"))


@pytest.fixture
def okta(idp: IdP, database: Database, district: District) -> IdP:
    return IdP(idp.client, add_connection(database, district, "Okta", profile="okta"))


@pytest.fixture
def google(idp: IdP, database: Database, district: District) -> IdP:
    return IdP(idp.client, add_connection(database, district, "Google", profile="google"))


def entra_user(user_name: str, external_id: str) -> dict:
    return {
        "schemas": [USER, ENTERPRISE],
        "externalId": external_id,
        "userName": user_name,
        "active": True,
        "displayName": "Ryan Leenay",
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Ryan Leenay", "familyName": "Leenay", "givenName": "Ryan"},
        "roles": [],
        ENTERPRISE: {"employeeNumber": "1234", "department": "Maths"},
    }


def okta_user() -> dict:
    """Okta's published create request (its SCIM 2.0 reference), the password made long enough."""
    return {
        "schemas": [USER],
        "userName": "isaac@example.com",
        "name": {"givenName": "Isaac", "familyName": "Brock"},
        "emails": [{"primary": True, "value": "isaac@example.com", "type": "work"}],
        "displayName": "Isaac Brock",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq-long-enough",
        "active": True,
    }


class TestEntraID:
    def test_looks_up_by_username_and_external_id_then_creates(self, entra: IdP) -> None:
        lookup = entra.get("/Users", params={"filter": 'userName eq "Test_User_ab6490ee@x.org"'})
        assert lookup.status_code == 200 and lookup.json()["totalResults"] == 0
        created = entra.post("/Users", entra_user("Test_User_ab6490ee@x.org", "0a21f0f2-8d2a"))
        assert created.status_code == 201, created.text
        by_external = entra.get("/Users", params={"filter": 'externalId eq "0A21F0F2-8D2A"'})
        assert by_external.json()["totalResults"] == 1
        by_name = entra.get("/Users", params={"filter": 'userName eq "test_user_AB6490EE@x.org"'})
        assert by_name.json()["Resources"][0]["id"] == created.json()["id"]

    def test_capitalised_ops_string_booleans_and_dotted_path_less_replace(self, entra: IdP) -> None:
        created = entra.post("/Users", entra_user("ryan@x.org", "e1")).json()
        response = entra.patch(
            f"/Users/{created['id']}",
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "value": {"name.givenName": "Bryan", "title": "Coach"}},
            {"op": "Add", "path": 'emails[type eq "home"].value', "value": "ryan@home.org"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["active"] is False
        assert body["name"]["givenName"] == "Bryan" and body["title"] == "Coach"
        assert {"type": "home", "value": "ryan@home.org"} in body["emails"]

    def test_removes_only_the_listed_members_and_finds_groups_without_members(
        self, entra: IdP
    ) -> None:
        ids = [
            entra.post("/Users", entra_user(f"u{i}@x.org", f"e{i}")).json()["id"] for i in range(4)
        ]
        group = entra.post(
            "/Groups",
            {
                "schemas": [GROUP],
                "displayName": "Staff",
                "externalId": "g-1",
                "members": [{"value": i} for i in ids],
            },
        ).json()
        response = entra.patch(
            f"/Groups/{group['id']}",
            {"op": "Remove", "path": "members", "value": [{"value": ids[0]}, {"value": ids[2]}]},
        )
        assert response.status_code == 200, response.text
        assert sorted(m["value"] for m in response.json()["members"]) == sorted([ids[1], ids[3]])
        found = entra.get(
            "/Groups",
            params={"filter": 'displayName eq "staff"', "excludedAttributes": "members"},
        ).json()
        assert found["totalResults"] == 1 and "members" not in found["Resources"][0]

    def test_patches_a_group_with_thousands_of_members(
        self, entra: IdP, database: Database, district: District
    ) -> None:
        group = entra.post("/Groups", {"schemas": [GROUP], "displayName": "Everyone"}).json()
        with database.session() as session:
            connection = session.scalars(select(Connection).where(Connection.name == "Entra")).one()
            # Set up the 2,000 users directly: the domain's one-by-one create is not under test.
            members = [
                User(
                    id=new_id(),
                    tenant_id=district.tenant_id,
                    connection_id=connection.id,
                    username=f"m{i:04}",
                    username_folded=f"m{i:04}",
                )
                for i in range(2000)
            ]
            for member in members:
                member.sourced_id = member.id
            session.add_all(members)
            ids = [member.id for member in members]
        response = entra.patch(
            f"/Groups/{group['id']}",
            {"op": "Add", "path": "members", "value": [{"value": i} for i in ids]},
        )
        assert response.status_code == 200
        assert len(response.json()["members"]) == 2000
        removed = entra.patch(
            f"/Groups/{group['id']}",
            {"op": "Remove", "path": "members", "value": [{"value": ids[7]}]},
        )
        assert len(removed.json()["members"]) == 1999


class TestOkta:
    def test_looks_up_by_username_then_creates(self, okta: IdP) -> None:
        lookup = okta.get(
            "/Users",
            params={"filter": 'userName eq "isaac@example.com"', "startIndex": 1, "count": 100},
        )
        assert (
            lookup.json()
            == {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": 0,
                "startIndex": 1,
                "itemsPerPage": 0,
                "Resources": [],
            }
            or lookup.json()["totalResults"] == 0
        )
        created = okta.post("/Users", okta_user())
        assert created.status_code == 201, created.text
        assert "password" not in created.json()

    def test_deactivates_by_path_less_replace_and_by_put_and_accepts_a_no_op_patch(
        self, okta: IdP
    ) -> None:
        user = okta.post("/Users", {"schemas": [USER], "userName": "okta1", "active": True}).json()
        deactivated = okta.patch(
            f"/Users/{user['id']}", {"op": "replace", "value": {"active": False}}
        )
        assert deactivated.status_code == 200 and deactivated.json()["active"] is False
        reactivated = okta.put(
            f"/Users/{user['id']}", {"schemas": [USER], "userName": "okta1", "active": True}
        )
        assert reactivated.json()["active"] is True
        by_put = okta.put(
            f"/Users/{user['id']}", {"schemas": [USER], "userName": "okta1", "active": False}
        )
        assert by_put.status_code == 200 and by_put.json()["active"] is False
        version = by_put.headers["ETag"]
        no_op = okta.patch(f"/Users/{user['id']}", {"op": "replace", "value": {"active": False}})
        assert no_op.status_code == 200 and no_op.headers["ETag"] == version


class TestGoogleWorkspace:
    def test_updates_with_full_resource_puts(self, google: IdP) -> None:
        body = {
            "schemas": [USER],
            "userName": "ada@school.org",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "ada@school.org", "primary": True}],
            "active": True,
        }
        user = google.post("/Users", body).json()
        body["name"]["familyName"] = "King"
        body["title"] = "Countess"
        replaced = google.put(f"/Users/{user['id']}", body)
        assert replaced.status_code == 200
        assert replaced.json()["name"]["familyName"] == "King"
        assert replaced.json()["title"] == "Countess"
        again = google.put(f"/Users/{user['id']}", body)
        assert again.headers["ETag"] == replaced.headers["ETag"]


def test_the_strict_profile_refuses_entra_shapes_with_clear_errors(idp: IdP) -> None:
    # Member removal by value list is accepted on every profile (tests/scim/test_group_members);
    # a removal by value of any other attribute stays an Entra-only tolerance.
    user = idp.post(
        "/Users",
        {"schemas": [USER], "userName": "strict", "emails": [{"value": "s@x.org", "type": "work"}]},
    ).json()
    response = idp.patch(
        f"/Users/{user['id']}",
        {"op": "remove", "path": "emails", "value": [{"value": "s@x.org"}]},
    )
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    assert idp.get(f"/Users/{user['id']}").json()["emails"][0]["value"] == "s@x.org"
