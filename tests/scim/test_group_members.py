"""Members of groups and classes are matched by their ``value`` alone.

Entra removes members with a value list whose entries carry ``"$ref": null`` (Microsoft's
documented request, MicrosoftDocs/entra-docs ``use-scim-to-provision-users-and-groups.md``,
"Update Group [Remove Members]"); other clients send ``display``, ``type`` or a full ``$ref``
URL beside the id. RFC 7643 §4.2 makes ``value`` the member's identifier, so whatever else an
entry says, it names the member with that ``value``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.scim.helpers import EDU_GROUP, GROUP, IdP


def _members(idp: IdP, group_id: str) -> list[str]:
    response = idp.get(f"/Groups/{group_id}")
    assert response.status_code == 200, response.text
    return sorted(m["value"] for m in response.json().get("members") or [])


def _group(idp: IdP, ids: list[str], kind: str) -> dict[str, Any]:
    if kind == "class":
        return idp.create_group(
            "7B Science",
            ids,
            schemas=[GROUP, EDU_GROUP],
            **{EDU_GROUP: {"classCode": "7B-SC", "school": "sch-1"}},
        )
    return idp.create_group("Chess Club", ids)


@pytest.mark.parametrize("kind", ["group", "class"])
def test_a_member_removal_by_value_list_removes_exactly_the_listed_members(
    profiled: IdP, kind: str
) -> None:
    ids = [profiled.create_user(f"member{i}")["id"] for i in range(5)]
    group = _group(profiled, ids, kind)
    entries = [
        {"$ref": None, "value": ids[0]},  # Microsoft's documented shape
        {"value": ids[1], "display": "Member One"},
        {"value": ids[2], "type": "User"},
        {"value": ids[3], "$ref": f"http://testserver/scim/v2/Users/{ids[3]}"},
    ]
    response = profiled.patch(
        f"/Groups/{group['id']}", {"op": "Remove", "path": "members", "value": entries}
    )
    assert response.status_code == 200, response.text
    assert [m["value"] for m in response.json()["members"]] == [ids[4]]
    assert _members(profiled, group["id"]) == [ids[4]]


def test_a_removal_naming_a_non_member_removes_nothing_else(profiled: IdP) -> None:
    ids = [profiled.create_user(f"keep{i}")["id"] for i in range(2)]
    stranger = profiled.create_user("stranger")["id"]
    group = profiled.create_group("Choir", ids)
    response = profiled.patch(
        f"/Groups/{group['id']}",
        {"op": "remove", "path": "members", "value": [{"$ref": None, "value": stranger}]},
    )
    assert response.status_code == 200, response.text
    assert _members(profiled, group["id"]) == sorted(ids)


def test_a_removal_entry_without_a_value_is_refused_and_changes_nothing(profiled: IdP) -> None:
    ids = [profiled.create_user(f"solo{i}")["id"] for i in range(2)]
    group = profiled.create_group("Band", ids)
    response = profiled.patch(
        f"/Groups/{group['id']}",
        {"op": "remove", "path": "members", "value": [{"display": "Solo Zero"}]},
    )
    assert response.status_code == 400, response.text
    assert response.json()["scimType"] in ("invalidValue", "noTarget")
    assert _members(profiled, group["id"]) == sorted(ids)


@pytest.mark.parametrize("kind", ["group", "class"])
def test_adding_a_member_again_with_other_keys_keeps_one_membership(
    profiled: IdP, kind: str
) -> None:
    ids = [profiled.create_user(f"again{i}")["id"] for i in range(2)]
    group = _group(profiled, ids[:1], kind)
    response = profiled.patch(
        f"/Groups/{group['id']}",
        {
            "op": "Add",
            "path": "members",
            "value": [
                {"$ref": None, "value": ids[0], "display": "Again Zero"},
                {"$ref": None, "value": ids[1]},
            ],
        },
    )
    assert response.status_code == 200, response.text
    assert sorted(m["value"] for m in response.json()["members"]) == sorted(ids)
    assert _members(profiled, group["id"]) == sorted(ids)
