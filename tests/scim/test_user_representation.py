"""What a User says about itself: the effective ``active`` and the read-only ``groups``.

- ``active`` absent from a creation means active (SPEC §4), and every representation says so;
- ``groups`` (RFC 7643 §4.1.2: read-only, ``value``/``$ref``/``display``/``type``; "direct"
  for a direct membership) lists the user's groups and classes, and ``groups.value`` filters.
"""

from __future__ import annotations

from typing import Any

from server.db.session import Database
from tests.scim.conftest import District, add_connection
from tests.scim.helpers import EDU_GROUP, GROUP, SEARCH, USER, IdP, statements


def test_a_user_created_without_active_says_active_true_everywhere(idp: IdP) -> None:
    created = idp.post("/Users", {"schemas": [USER], "userName": "quiet.one"})
    assert created.status_code == 201 and created.json()["active"] is True
    user_id = created.json()["id"]
    assert idp.get(f"/Users/{user_id}").json()["active"] is True
    listed = idp.get("/Users", params={"filter": 'userName eq "quiet.one"'}).json()
    assert listed["Resources"][0]["active"] is True
    searched = idp.post("/Users/.search", {"schemas": [SEARCH], "filter": "active eq true"})
    assert [r["id"] for r in searched.json()["Resources"]] == [user_id]
    patched = idp.patch(f"/Users/{user_id}", {"op": "replace", "path": "title", "value": "Dr"})
    assert patched.status_code == 200 and patched.json()["active"] is True
    replaced = idp.put(f"/Users/{user_id}", {"schemas": [USER], "userName": "quiet.one"})
    assert replaced.status_code == 200 and replaced.json()["active"] is True
    inactive = idp.get("/Users", params={"filter": "active eq false"}).json()
    assert inactive["totalResults"] == 0


def _school_class(idp: IdP, title: str, members: list[str]) -> dict[str, Any]:
    return idp.create_group(
        title, members, schemas=[GROUP, EDU_GROUP], **{EDU_GROUP: {"school": "sch-1"}}
    )


def test_a_user_lists_its_groups_and_classes(idp: IdP) -> None:
    pupil = idp.create_user("pupil")
    other = idp.create_user("other")
    club = idp.create_group("Chess Club", [pupil["id"]])
    klass = _school_class(idp, "7B Science", [pupil["id"], other["id"]])
    body = idp.get(f"/Users/{pupil['id']}").json()
    assert sorted(body["groups"], key=lambda g: g["display"]) == [
        {
            "value": group["id"],
            "$ref": f"http://testserver/scim/v2/Groups/{group['id']}",
            "display": name,
            "type": "direct",
        }
        for group, name in ((klass, "7B Science"), (club, "Chess Club"))
    ]
    listed = idp.get("/Users", params={"filter": 'userName eq "other"'}).json()
    assert [g["value"] for g in listed["Resources"][0]["groups"]] == [klass["id"]]
    idp.patch(
        f"/Groups/{club['id']}", {"op": "remove", "path": f'members[value eq "{pupil["id"]}"]'}
    )
    assert [g["value"] for g in idp.get(f"/Users/{pupil['id']}").json()["groups"]] == [klass["id"]]


def test_groups_filter_and_projection(idp: IdP) -> None:
    ids = [idp.create_user(f"kid{i}")["id"] for i in range(3)]
    club = idp.create_group("Robotics", ids[:2])
    klass = _school_class(idp, "8C Art", ids[1:])

    def found(scim_filter: str) -> list[str]:
        response = idp.get("/Users", params={"filter": scim_filter})
        assert response.status_code == 200, response.text
        return sorted(r["id"] for r in response.json()["Resources"])

    assert found(f'groups.value eq "{club["id"]}"') == sorted(ids[:2])
    assert found(f'groups.value eq "{klass["id"]}"') == sorted(ids[1:])
    assert found(f'groups[value eq "{klass["id"]}" and type eq "direct"]') == sorted(ids[1:])
    assert found('groups.display eq "robotics"') == sorted(ids[:2])
    assert found(f'groups.value ne "{club["id"]}"') == [ids[2]]
    assert found("groups pr") == sorted(ids)
    loner = idp.create_user("loner")["id"]
    assert found("not (groups pr)") == [loner]
    projected = idp.get(f"/Users/{ids[1]}", params={"attributes": "groups"}).json()
    assert set(projected) == {"schemas", "id", "groups"}
    assert sorted(g["value"] for g in projected["groups"]) == sorted([club["id"], klass["id"]])
    excluded = idp.get(f"/Users/{ids[1]}", params={"excludedAttributes": "groups"}).json()
    assert "groups" not in excluded and excluded["userName"] == "kid1"


def test_a_connection_sees_only_its_own_groups_on_a_user(
    idp: IdP, database: Database, district: District
) -> None:
    pupil = idp.create_user("shared.pupil")
    other = IdP(idp.client, add_connection(database, district, "Other IdP"))
    other.create_group("Other Club", [pupil["id"]])
    assert "groups" not in idp.get(f"/Users/{pupil['id']}").json()


def test_a_page_of_users_reads_their_memberships_in_a_fixed_number_of_queries(
    idp: IdP, database: Database
) -> None:
    ids = [idp.create_user(f"crowd{i:02}")["id"] for i in range(12)]
    idp.create_group("Crowd", ids)
    _school_class(idp, "Crowd Class", ids)
    membership_reads = []
    for count in (2, 12):
        with statements(database) as seen:
            page = idp.get("/Users", params={"count": count, "filter": 'userName sw "crowd"'})
        assert all(len(r["groups"]) == 2 for r in page.json()["Resources"])
        membership_reads.append(
            len([s for s in seen if "group_members" in s or "FROM enrollments" in s])
        )
    assert membership_reads[0] == membership_reads[1] <= 2
