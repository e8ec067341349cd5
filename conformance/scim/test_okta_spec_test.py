"""Okta's "SCIM 2.0 Spec Test" (the OIN SCIM test suite), replayed on an ``okta`` connection,
then the group push Okta sends once the app is in the OIN.

Sources of the facts (request shapes, headers, asserted status codes and fields):

- the Runscope export "Okta SCIM 2.0 SPEC Test" that Okta's guide "Test your SCIM API"
  (developer.okta.com/docs/guides/build-provisioning-integration/test-scim-api) has you
  download; read from the copy in BerriAI/litellm ``tests/scim_tests/scim_e2e_test.json``.
  Its steps run in this order; each test below is one step, named after the step's note;
- recorded Okta requests in elimity-com/scim ``internal/idp_test/testdata/okta/``
  (``create_user``, ``update_user`` (PUT), ``update_user_patch``, ``create_group``,
  ``update_group_name``, ``update_group_membership``).

Not replayed: the suite's pauses between steps, and its one timed assertion ("Verify Groups
endpoint" answers in under 600 ms): timings belong in ``bench/``, not in a pass/fail test.

One accepted deviation: the recordings' addresses ``test.user@okta.local`` are sent here as
``test.user@okta.example``. ``.local`` is reserved for multicast DNS (RFC 6762 §3, listed in
RFC 6761's special-use names), and scim2-models validates ``emails.value`` with
email-validator, which refuses special-use domains; such an address gets a clear 400
``invalidValue`` (RFC 7644 §3.12: "the value specified was not compatible with the operation
or attribute type"), checked by ``test_a_special_use_mail_domain_is_refused_clearly``.
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
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
# The suite's headers on its reads; its creations send Content-Type application/json.
OKTA_HEADERS = {
    "Accept-Charset": "utf-8",
    "Content-Type": "application/scim+json; charset=utf-8",
    "Accept": "application/scim+json",
    "User-Agent": "OKTA SCIM Integration",
}
# The suite's {{random…}} variables, fixed here.
GIVEN, FAMILY = "Okta", "Runscope"
USERNAME = "okta.runscope@example.com"
RANDOM_EMAIL = "okta.runscope.mail@example.com"


@pytest.fixture(scope="module")
def okta(live_scim: LiveScim) -> Iterator[httpx.Client]:
    headers = {**OKTA_HEADERS, "Authorization": f"Bearer {live_scim.tokens['okta']}"}
    with httpx.Client(base_url=live_scim.url, headers=headers, timeout=30) as client:
        # The suite runs against an app that already has users: one assigned before it starts,
        # shaped as in elimity-com/scim okta/create_user.json (its 8-character password too).
        seeded = client.post(
            "/Users",
            json={
                "schemas": [USER],
                "userName": "test.user@okta.example",
                "name": {"givenName": "Test", "familyName": "User"},
                "emails": [{"primary": True, "value": "test.user@okta.example", "type": "work"}],
                "displayName": "Test User",
                "locale": "en-US",
                "externalId": "00ujl29u0le5T6Aj10h7",
                "groups": [],
                "password": "1mz050nq",
                "active": True,
            },
            headers={"Content-Type": "application/json"},
        )
        assert seeded.status_code == 201, seeded.text
        assert "password" not in seeded.json() and seeded.json()["active"] is True
        yield client


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    return {}


def assert_user_fields(user: dict[str, Any]) -> None:
    """The fields the suite asserts "not_empty" on a user."""
    assert user["id"] and user["userName"]
    assert user["name"]["familyName"] and user["name"]["givenName"]
    assert user["active"] is True
    assert user["emails"][0]["value"]


def test_required_test_users_endpoint(okta: httpx.Client, state: dict[str, Any]) -> None:
    response = okta.get("/Users", params={"count": 1, "startIndex": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    assert LIST in body["schemas"] and body["Resources"]
    for key in ("itemsPerPage", "startIndex", "totalResults"):
        assert isinstance(body[key], int), key
    assert_user_fields(body["Resources"][0])
    state["isv_user"] = body["Resources"][0]["id"]


def test_required_get_user_by_id(okta: httpx.Client, state: dict[str, Any]) -> None:
    response = okta.get(f"/Users/{state['isv_user']}")
    assert response.status_code == 200, response.text
    assert_user_fields(response.json())
    assert response.json()["id"] == state["isv_user"]


def test_required_invalid_user_by_username(okta: httpx.Client) -> None:
    response = okta.get("/Users", params={"filter": 'userName eq "invalid.user@example.com"'})
    assert response.status_code == 200, response.text
    assert LIST in response.json()["schemas"] and response.json()["totalResults"] == 0


def test_required_invalid_user_by_id(okta: httpx.Client) -> None:
    scim_error(okta.get("/Users/010101010101010101010101"), 404)


def test_required_random_user_does_not_exist(okta: httpx.Client) -> None:
    response = okta.get("/Users", params={"filter": f'userName eq "{RANDOM_EMAIL}"'})
    assert response.status_code == 200, response.text
    assert LIST in response.json()["schemas"] and response.json()["totalResults"] == 0


def user_body(email: str) -> dict[str, Any]:
    return {
        "schemas": [USER],
        "userName": USERNAME,
        "name": {"givenName": GIVEN, "familyName": FAMILY},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": f"{GIVEN} {FAMILY}",
        "active": True,
    }


def test_required_create_user_with_realistic_values(
    okta: httpx.Client, state: dict[str, Any]
) -> None:
    response = okta.post(
        "/Users", json=user_body(RANDOM_EMAIL), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["active"] is True and body["id"]
    assert body["name"] == {"givenName": GIVEN, "familyName": FAMILY}
    assert USER in body["schemas"] and body["userName"] == USERNAME
    assert body["emails"][0]["value"] == RANDOM_EMAIL
    state["user_one"] = body["id"]


def test_required_verify_user_was_created(okta: httpx.Client, state: dict[str, Any]) -> None:
    response = okta.get(f"/Users/{state['user_one']}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["userName"] == USERNAME
    assert (body["name"]["familyName"], body["name"]["givenName"]) == (FAMILY, GIVEN)


def test_required_recreating_the_same_user_fails(okta: httpx.Client) -> None:
    response = okta.post(
        "/Users", json=user_body(USERNAME), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 409, response.text
    assert response.json()["scimType"] == "uniqueness"


def test_required_username_case_sensitivity(okta: httpx.Client, state: dict[str, Any]) -> None:
    response = okta.get("/Users", params={"filter": f'userName eq "{USERNAME.upper()}"'})
    assert response.status_code == 200, response.text
    # userName is caseExact false (RFC 7643 §4.1.1), so the upper-cased name finds the user.
    assert [r["id"] for r in response.json()["Resources"]] == [state["user_one"]]


def test_optional_verify_groups_endpoint(okta: httpx.Client) -> None:
    response = okta.get("/Groups")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["totalResults"] == 0 or isinstance(body["Resources"], list)


def test_required_status_401(live_scim: LiveScim) -> None:
    headers = {**OKTA_HEADERS, "Authorization": "non-token"}
    with httpx.Client(base_url=live_scim.url, headers=headers, timeout=30) as anonymous:
        response = anonymous.get("/Users", params={"filter": f'userName eq "{USERNAME.upper()}"'})
    scim_error(response, 401)


def test_required_status_404(okta: httpx.Client) -> None:
    scim_error(okta.get("/Users/00919288221112222"), 404)


# -- After the suite: what Okta sends in production (elimity-com/scim recordings) --------------


def test_okta_updates_a_user_with_a_full_put(okta: httpx.Client, state: dict[str, Any]) -> None:
    body = {
        "schemas": [USER],
        "id": state["isv_user"],
        "userName": "test.user@okta.example",
        "name": {"givenName": "Another", "middleName": "Excited", "familyName": "User"},
        "emails": [
            {
                "primary": True,
                "value": "test.user@okta.example",
                "type": "work",
                "display": "test.user@okta.example",
            }
        ],
        "active": True,
        "groups": [],
        "meta": {"resourceType": "User"},
    }
    response = okta.put(f"/Users/{state['isv_user']}", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["name"]["middleName"] == "Excited"
    assert response.json()["active"] is True


def test_okta_deactivates_with_a_path_less_replace(
    okta: httpx.Client, state: dict[str, Any]
) -> None:
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]}
    response = okta.patch(f"/Users/{state['user_one']}", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False
    assert okta.get(f"/Users/{state['user_one']}").json()["active"] is False


def test_okta_pushes_a_group_renames_it_and_changes_its_members(
    okta: httpx.Client, state: dict[str, Any]
) -> None:
    created = okta.post(
        "/Groups", json={"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []}
    )
    assert created.status_code == 201, created.text
    group = created.json()["id"]
    rename = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "value": {"id": group, "displayName": "Test SCIMv20"}}],
    }
    renamed = okta.patch(f"/Groups/{group}", json=rename)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["displayName"] == "Test SCIMv20" and renamed.json()["id"] == group
    one, two = state["isv_user"], state["user_one"]
    okta.patch(
        f"/Groups/{group}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": two}]}],
        },
    )
    membership = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "remove", "path": f'members[value eq "{two}"]'},
            {"op": "add", "path": "members", "value": [{"value": one, "display": "test.user"}]},
            {
                "op": "replace",
                "path": "members",
                "value": [{"value": one, "display": "test.user"}, {"value": two, "display": "t"}],
            },
        ],
    }
    response = okta.patch(f"/Groups/{group}", json=membership)
    assert response.status_code == 200, response.text
    assert sorted(m["value"] for m in response.json()["members"]) == sorted([one, two])
    for user in (one, two):
        groups = okta.get(f"/Users/{user}").json()["groups"]
        assert [g["value"] for g in groups] == [group]


def test_a_special_use_mail_domain_is_refused_clearly(okta: httpx.Client) -> None:
    body = {
        "schemas": [USER],
        "userName": "local.user",
        "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
    }
    response = okta.post("/Users", json=body)
    scim_error(response, 400)
    assert response.json()["scimType"] == "invalidValue"
    assert "special-use" in response.json()["detail"]
    assert (
        okta.get("/Users", params={"filter": 'userName eq "local.user"'}).json()["totalResults"]
        == 0
    )
