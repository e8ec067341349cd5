"""Our own checks of what scim2-tester does not cover, over real HTTP against a live Rollcall:
filter operators (RFC 7644 §3.4.2.2), sorting (§3.4.2.3), index and cursor paging (§3.4.2.4,
RFC 9865), Bulk with bulkId references (§3.7) and ETags with If-Match (§3.14)."""

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
EDU = "urn:rollcall:params:scim:schemas:extension:education:2.0:User"
PEOPLE = [
    {
        "userName": "cf.alice",
        "title": "Boss",
        "name": {"givenName": "Alice", "familyName": "Liddell"},
        "emails": [
            {"value": "alice@home.example", "type": "home"},
            {"value": "alice@work.example", "type": "work", "primary": True},
        ],
        ENTERPRISE: {"employeeNumber": "100"},
        EDU: {"grades": ["05"]},
    },
    {
        "userName": "cf.Bob",
        "active": False,
        "emails": [{"value": "bob@work.example", "type": "work"}],
    },
    {
        "userName": "cf.carol",
        "title": "",
        "name": {"familyName": "smith"},
        ENTERPRISE: {"employeeNumber": "2"},
    },
    {"userName": "cf.dave_x", "title": "50% off", "emails": [{"value": "dave@home.example"}]},
]


@pytest.fixture(scope="module")
def scim(live_scim: LiveScim) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {live_scim.token}"}
    with httpx.Client(base_url=live_scim.url, headers=headers, timeout=30) as client:
        for person in PEOPLE:
            response = client.post("/Users", json={"schemas": [USER], **person})
            assert response.status_code == 201, response.text
        yield client


def names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["userName"] for r in response.json()["Resources"]]


@pytest.mark.parametrize(
    ("scim_filter", "expected"),
    [
        ('userName eq "CF.ALICE"', ["cf.alice"]),
        ('userName sw "cf.dave_"', ["cf.dave_x"]),
        ('userName ew "_x"', ["cf.dave_x"]),
        ('userName co "b" and userName sw "cf."', ["cf.Bob"]),
        ('userName gt "cf.c" and userName lt "cf.d"', ["cf.carol"]),
        ('title co "%"', ["cf.dave_x"]),
        ("title pr", ["cf.alice", "cf.dave_x"]),
        ('not (title eq "boss") and userName sw "cf."', ["cf.Bob", "cf.carol", "cf.dave_x"]),
        ('name.familyName eq "SMITH"', ["cf.carol"]),
        ("active eq false", ["cf.Bob"]),
        ('emails[type eq "work" and value co "alice"]', ["cf.alice"]),
        ('emails co "HOME"', ["cf.alice", "cf.dave_x"]),
        ('emails.type eq "work" and not (emails.value sw "alice")', ["cf.Bob"]),
        (f'{ENTERPRISE}:employeeNumber eq "2"', ["cf.carol"]),
        (f'{EDU}:grades eq "05"', ["cf.alice"]),
        ('(title eq "Boss" or userName eq "cf.bob") and userName sw "cf"', ["cf.alice", "cf.Bob"]),
        ('meta.created gt "2000-01-01T00:00:00Z" and userName eq "cf.carol"', ["cf.carol"]),
    ],
)
def test_filter_operators(scim: httpx.Client, scim_filter: str, expected: list[str]) -> None:
    # Scoped to this module's users: scim2-tester's users share the server.
    scoped = f'({scim_filter}) and userName sw "cf."'
    response = scim.get("/Users", params={"filter": scoped, "sortBy": "userName"})
    assert sorted(names(response)) == sorted(expected)
    assert response.json()["totalResults"] == len(expected)


def test_sort_ascending_and_descending_with_missing_values(scim: httpx.Client) -> None:
    query = {"filter": 'userName sw "cf."', "sortBy": "title"}
    ascending = names(scim.get("/Users", params=query))
    assert ascending == ["cf.carol", "cf.dave_x", "cf.alice", "cf.Bob"]  # "", "50%…", "boss", none
    descending = names(scim.get("/Users", params={**query, "sortOrder": "descending"}))
    assert descending == list(reversed(ascending))


def test_index_paging(scim: httpx.Client) -> None:
    query = {"filter": 'userName sw "cf."', "sortBy": "userName", "count": 2}
    first = scim.get("/Users", params={**query, "startIndex": 1}).json()
    second = scim.get("/Users", params={**query, "startIndex": 3}).json()
    assert (first["totalResults"], first["itemsPerPage"], second["startIndex"]) == (4, 2, 3)
    pages = [r["userName"] for r in first["Resources"] + second["Resources"]]
    assert pages == ["cf.alice", "cf.Bob", "cf.carol", "cf.dave_x"]


def test_cursor_paging_forward_and_back(scim: httpx.Client) -> None:
    query: dict[str, Any] = {"filter": 'userName sw "cf."', "sortBy": "userName", "count": 3}
    first = scim.get("/Users", params={**query, "cursor": ""}).json()
    assert [r["userName"] for r in first["Resources"]] == ["cf.alice", "cf.Bob", "cf.carol"]
    second = scim.get("/Users", params={**query, "cursor": first["nextCursor"]}).json()
    assert [r["userName"] for r in second["Resources"]] == ["cf.dave_x"]
    assert "nextCursor" not in second
    back = scim.get("/Users", params={**query, "cursor": second["previousCursor"]}).json()
    assert [r["userName"] for r in back["Resources"]] == ["cf.alice", "cf.Bob", "cf.carol"]
    bad = scim.get("/Users", params={**query, "cursor": "not-a-cursor"})
    assert bad.status_code == 400 and bad.json()["scimType"] == "invalidCursor"


def test_bulk_with_bulk_id_references_and_fail_on_errors(scim: httpx.Client) -> None:
    response = scim.post(
        "/Bulk",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "failOnErrors": 1,
            "Operations": [
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": "a",
                    "data": {"schemas": [USER], "userName": "cf.bulk"},
                },
                {
                    "method": "POST",
                    "path": "/Groups",
                    "bulkId": "g",
                    "data": {
                        "schemas": [GROUP],
                        "displayName": "cf bulk",
                        "members": [{"value": "bulkId:a"}],
                    },
                },
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": "c",
                    "data": {"schemas": [USER], "userName": "CF.BULK"},
                },
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": "d",
                    "data": {"schemas": [USER], "userName": "cf.never"},
                },
            ],
        },
    )
    assert response.status_code == 200, response.text
    statuses = [op["status"] for op in response.json()["Operations"]]
    assert statuses == ["201", "201", "409"]  # failOnErrors=1 stops after the first error
    assert names(scim.get("/Users", params={"filter": 'userName eq "cf.never"'})) == []


def test_etags_and_if_match(scim: httpx.Client) -> None:
    created = scim.post("/Users", json={"schemas": [USER], "userName": "cf.etag"})
    etag, location = created.headers["ETag"], created.json()["id"]
    assert scim.get(f"/Users/{location}", headers={"If-None-Match": etag}).status_code == 304
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "New"}],
    }
    changed = scim.patch(f"/Users/{location}", json=patch, headers={"If-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    stale = scim.patch(f"/Users/{location}", json=patch, headers={"If-Match": etag})
    scim_error(stale, 412)  # RFC 7644 section 3.14
    scim_error(scim.delete(f"/Users/{location}", headers={"If-Match": etag}), 412)
    fresh = changed.headers["ETag"]
    assert scim.delete(f"/Users/{location}", headers={"If-Match": fresh}).status_code == 204
