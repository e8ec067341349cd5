"""Microsoft's documented Entra provisioning sequence, replayed on an ``entra`` connection.

Source of every request and expected response: MicrosoftDocs/entra-docs,
``docs/identity/app-provisioning/use-scim-to-provision-users-and-groups.md``, section
"SCIM protocol requests and responses" (User Operations, Group Operations, Schema discovery).
The bodies below are written after the shapes shown there; ids are the ones our server gives.

Accepted deviations, each allowed by the spec sentence quoted beside it:

1. Group PATCH answers 200 with the group where the page shows 204. RFC 7644 §3.5.2: "the
   server either MUST return a 200 OK response code and the entire resource within the
   response body ... or MAY return HTTP status code 204 (No Content)". The same page: "It
   isn't necessary to include the entire resource in the PATCH response." A client that wants
   no body gets 204 with ``Prefer: return=minimal`` (checked below).
2. A group created without members has no ``members`` where the page shows ``"members": []``.
   RFC 7643 §2.5: an empty array makes an attribute unassigned, and "unassigned attributes ...
   MAY be omitted for compactness".
3. ``itemsPerPage`` is the number of resources on the page (1 or 0) where the page shows 20.
   RFC 7644 §3.4.2: "itemsPerPage  The number of resources returned in a list response page."
4. The page's "Example 1" query ``filter=externalId eq jyoung`` (unquoted) is refused with 400
   ``invalidFilter``: RFC 7644 §3.4.2.2's grammar takes a string operand only as a JSON string
   (``compValue = false / null / true / number / string``), and the page marks the example
   "an example only"; the quoted form is checked too.
5. ``meta.resourceType`` of a disabled user is ``User`` where the page's example shows
   ``Users``: RFC 7643 §3.1 "resourceType  The name of the resource type of the resource",
   and the User resource type's name is "User" (RFC 7643 §6).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conformance.scim.conftest import LiveScim
from tests.wire import scim_error

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
# Entra's own group schema URN, sent beside the core one in "Create Group".
AD_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"

USER_NAME = "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
EMAIL = "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"
EXTERNAL_ID = "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"


@pytest.fixture(scope="module")
def entra(live_scim: LiveScim) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {live_scim.tokens['entra']}"}
    with httpx.Client(base_url=live_scim.url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    """Ids the sequence gives out, shared by its steps (run in file order)."""
    return {}


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def assert_documented_user(body: dict[str, Any], **values: Any) -> None:
    """The keys every documented User response has, with the values the sequence sent."""
    assert USER in body["schemas"]
    assert body["id"]
    assert body["meta"]["resourceType"] == "User"
    assert body["meta"]["created"] and body["meta"]["lastModified"]
    for key, value in values.items():
        assert body[key] == value, (key, body.get(key))


def assert_list(body: dict[str, Any], total: int) -> None:
    assert body["schemas"] == [LIST]
    assert body["totalResults"] == total
    assert body["startIndex"] == 1
    assert body["itemsPerPage"] == len(body["Resources"]) == total  # deviation 3


# -- User Operations ---------------------------------------------------------------------------


def test_create_user(entra: httpx.Client, state: dict[str, Any]) -> None:
    request = {
        "schemas": [USER, ENTERPRISE],
        "externalId": EXTERNAL_ID,
        "userName": USER_NAME,
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": EMAIL}],
        "meta": {"resourceType": "User"},
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName",
        },
        "roles": [],
    }
    response = entra.post("/Users", json=request)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert_documented_user(
        body,
        externalId=EXTERNAL_ID,
        userName=USER_NAME,
        active=True,
        name=request["name"],
        emails=[{"value": EMAIL, "type": "work", "primary": True}],
    )
    state["user"] = body["id"]


def test_get_user(entra: httpx.Client, state: dict[str, Any]) -> None:
    response = entra.get(f"/Users/{state['user']}")
    assert response.status_code == 200, response.text
    assert_documented_user(response.json(), userName=USER_NAME, active=True)


def test_get_user_not_found(entra: httpx.Client) -> None:
    scim_error(entra.get("/Users/5171a35d82074e068ce2"), 404)


def test_get_user_by_query(entra: httpx.Client, state: dict[str, Any]) -> None:
    response = entra.get("/Users", params={"filter": f'userName eq "{USER_NAME}"'})
    assert response.status_code == 200, response.text
    assert_list(response.json(), 1)
    found = response.json()["Resources"][0]
    assert_documented_user(found, id=state["user"], externalId=EXTERNAL_ID, active=True)
    by_email = entra.get("/Users", params={"filter": f'emails[type eq "work"].value eq "{EMAIL}"'})
    assert [r["id"] for r in by_email.json()["Resources"]] == [state["user"]]


def test_get_user_by_query_zero_results(entra: httpx.Client) -> None:
    response = entra.get("/Users", params={"filter": 'userName eq "non-existent user"'})
    assert response.status_code == 200, response.text
    assert_list(response.json(), 0)
    assert response.json()["Resources"] == []


def test_query_by_external_id_example(entra: httpx.Client, state: dict[str, Any]) -> None:
    unquoted = entra.get("/Users", params={"filter": "externalId eq jyoung"})
    scim_error(unquoted, 400, "invalidFilter")  # deviation 4
    quoted = entra.get("/Users", params={"filter": f'externalId eq "{EXTERNAL_ID}"'})
    assert [r["id"] for r in quoted.json()["Resources"]] == [state["user"]]


def test_update_user_multi_valued_properties(entra: httpx.Client, state: dict[str, Any]) -> None:
    response = entra.patch(
        f"/Users/{state['user']}",
        json=patch(
            {
                "op": "Replace",
                "path": 'emails[type eq "work"].value',
                "value": "updatedEmail@microsoft.com",
            },
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        ),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert_documented_user(
        body, emails=[{"value": "updatedEmail@microsoft.com", "type": "work", "primary": True}]
    )
    assert body["name"]["familyName"] == "updatedFamilyName"
    assert body["name"]["givenName"] == "givenName"


def test_update_user_single_valued_properties(entra: httpx.Client, state: dict[str, Any]) -> None:
    new_name = "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    response = entra.patch(
        f"/Users/{state['user']}",
        json=patch({"op": "Replace", "path": "userName", "value": new_name}),
    )
    assert response.status_code == 200, response.text
    assert_documented_user(response.json(), userName=new_name, active=True)


def test_disable_user(entra: httpx.Client, state: dict[str, Any]) -> None:
    body = {
        "Operations": [{"op": "Replace", "path": "active", "value": False}],
        "schemas": [PATCH_OP],
    }
    response = entra.patch(f"/Users/{state['user']}", json=body)
    assert response.status_code == 200, response.text
    assert_documented_user(response.json(), active=False)  # deviation 5: resourceType "User"
    # "The user object should be returned in a request whether or not the user is active."
    assert entra.get(f"/Users/{state['user']}").json()["active"] is False


# -- Group Operations --------------------------------------------------------------------------


def test_create_group(entra: httpx.Client, state: dict[str, Any]) -> None:
    request = {
        "schemas": [GROUP, AD_GROUP],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
        "meta": {"resourceType": "Group"},
    }
    response = entra.post("/Groups", json=request)
    assert response.status_code == 201, response.text
    body = response.json()
    assert GROUP in body["schemas"] and body["id"]
    assert body["externalId"] == request["externalId"]
    assert body["displayName"] == "displayName"
    assert body["meta"]["resourceType"] == "Group"
    assert body.get("members", []) == []  # deviation 2
    state["group"] = body["id"]


def test_get_group_without_members(entra: httpx.Client, state: dict[str, Any]) -> None:
    response = entra.get(f"/Groups/{state['group']}", params={"excludedAttributes": "members"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == state["group"] and body["displayName"] == "displayName"
    assert "members" not in body


def test_get_group_by_display_name(entra: httpx.Client, state: dict[str, Any]) -> None:
    response = entra.get(
        "/Groups",
        params={"excludedAttributes": "members", "filter": 'displayName eq "displayName"'},
    )
    assert response.status_code == 200, response.text
    assert_list(response.json(), 1)
    assert response.json()["Resources"][0]["id"] == state["group"]


def test_update_group_non_member_attributes(entra: httpx.Client, state: dict[str, Any]) -> None:
    name = "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    response = entra.patch(
        f"/Groups/{state['group']}",
        json=patch({"op": "Replace", "path": "displayName", "value": name}),
    )
    assert response.status_code == 200, response.text  # deviation 1
    assert response.json()["displayName"] == name
    minimal = entra.patch(
        f"/Groups/{state['group']}",
        json=patch({"op": "Replace", "path": "displayName", "value": "displayName"}),
        headers={"Prefer": "return=minimal"},
    )
    assert minimal.status_code == 204 and minimal.content == b""


def test_update_group_add_members(entra: httpx.Client, state: dict[str, Any]) -> None:
    body = patch(
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": state["user"]}]}
    )
    response = entra.patch(f"/Groups/{state['group']}", json=body)
    assert response.status_code == 200, response.text  # deviation 1
    assert [m["value"] for m in response.json()["members"]] == [state["user"]]
    groups = entra.get(f"/Users/{state['user']}").json()["groups"]
    assert [g["value"] for g in groups] == [state["group"]]


def test_update_group_remove_members(entra: httpx.Client, state: dict[str, Any]) -> None:
    body = patch(
        {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": state["user"]}]}
    )
    response = entra.patch(f"/Groups/{state['group']}", json=body)
    assert response.status_code == 200, response.text  # deviation 1
    assert "members" not in response.json()
    assert "members" not in entra.get(f"/Groups/{state['group']}").json()
    assert "groups" not in entra.get(f"/Users/{state['user']}").json()


def test_delete_group(entra: httpx.Client, state: dict[str, Any]) -> None:
    response = entra.delete(f"/Groups/{state['group']}")
    assert response.status_code == 204 and response.content == b""
    scim_error(entra.get(f"/Groups/{state['group']}"), 404)


def test_delete_user(entra: httpx.Client, state: dict[str, Any]) -> None:
    response = entra.delete(f"/Users/{state['user']}")
    assert response.status_code == 204 and response.content == b""
    scim_error(entra.get(f"/Users/{state['user']}"), 404)


# -- Schema discovery --------------------------------------------------------------------------


def test_discover_schema(entra: httpx.Client) -> None:
    response = entra.get("/Schemas")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["schemas"] == [LIST]
    schemas = {schema["id"]: schema for schema in body["Resources"]}
    assert {USER, GROUP, ENTERPRISE} <= set(schemas)

    def attribute(schema: str, name: str) -> dict[str, Any]:
        return next(a for a in schemas[schema]["attributes"] if a["name"] == name)

    # The characteristics the page lists for each attribute it shows.
    assert attribute(USER, "userName") | {"description": ""} == attribute(USER, "userName") | {
        "description": "",
        "type": "string",
        "multiValued": False,
        "required": True,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "server",
    }
    display_name = attribute(GROUP, "displayName")
    assert (display_name["type"], display_name["multiValued"]) == ("string", False)
    assert (display_name["mutability"], display_name["returned"]) == ("readWrite", "default")
    employee_number = attribute(ENTERPRISE, "employeeNumber")
    assert (employee_number["type"], employee_number["caseExact"]) == ("string", False)
    for schema in schemas.values():
        assert schema["meta"]["resourceType"] == "Schema"
        assert schema["meta"]["location"].endswith(f"/Schemas/{schema['id']}")
