"""Only a 201 carries ``Location``: RFC 7644 §3.3 gives it to the response of a creation, and
RFC 9110 §10.2.2 says it refers to the created resource for 201 (or redirects, which SCIM has
none of). An error saying "no resource was made" must not point at one."""

from __future__ import annotations

from typing import Any

from tests.scim.helpers import BULK, GROUP, PATCH, SEARCH, USER, IdP


def test_a_creation_answers_201_with_the_location_of_the_new_resource(idp: IdP) -> None:
    response = idp.post("/Users", {"schemas": [USER], "userName": "located"})
    assert response.status_code == 201
    assert response.headers["Location"] == response.json()["meta"]["location"]


def test_no_answer_but_a_201_carries_a_location_header(idp: IdP) -> None:
    user = idp.create_user("anchor")
    group = idp.create_group("Anchors", [user["id"]])
    etag = idp.get(f"/Users/{user['id']}").headers["ETag"]
    big = {"schemas": [USER], "userName": "big", "title": "x" * (1024 * 1024 + 1)}
    patch = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "T"}]}
    cases: list[tuple[str, str, Any, dict[str, str], int]] = [
        ("POST", "/Users", {"schemas": [USER], "userName": "has space"}, {}, 400),
        ("POST", "/Users", {"schemas": [USER]}, {}, 400),
        ("POST", "/Users", {"schemas": [USER], "userName": "ANCHOR"}, {}, 409),
        ("POST", "/Users", big, {}, 413),
        ("POST", "/Groups", {"schemas": [GROUP], "members": [{"value": "no"}]}, {}, 400),
        ("POST", "/Users/.search", {"schemas": [SEARCH], "filter": "userName zz 1"}, {}, 400),
        ("POST", "/Bulk", {"schemas": [BULK], "Operations": "no"}, {}, 400),
        ("GET", "/Users", None, {"Authorization": "Bearer wrong"}, 401),
        ("GET", "/Users", {"filter": "userName zz 1"}, {}, 400),
        ("GET", "/Users/nobody", None, {}, 404),
        ("GET", "/Schemas/urn:no", None, {}, 404),
        ("GET", "/Me", None, {}, 501),
        ("PUT", "/Users/nobody", {"schemas": [USER], "userName": "x"}, {}, 404),
        ("PATCH", f"/Users/{user['id']}", patch, {"If-Match": 'W/"99"'}, 412),
        ("PATCH", f"/Groups/{group['id']}", {"schemas": [PATCH]}, {}, 400),
        ("DELETE", "/Groups/nobody", None, {}, 404),
        ("DELETE", "/Users", None, {}, 405),
        ("GET", "/ResourceTypes/Nothing", None, {}, 404),
        ("POST", "/.search", {"schemas": [SEARCH], "filter": "("}, {}, 400),
        ("POST", "/Groups", None, {"Content-Type": "text/plain"}, 415),
        ("GET", f"/Users/{user['id']}", None, {}, 200),
        ("GET", f"/Users/{user['id']}", None, {"If-None-Match": etag}, 304),
        ("GET", "/Users", {"count": "1"}, {}, 200),
        ("GET", "/ServiceProviderConfig", None, {}, 200),
        ("PUT", f"/Users/{user['id']}", {"schemas": [USER], "userName": "anchor"}, {}, 200),
        ("PATCH", f"/Users/{user['id']}", patch, {}, 200),
        ("DELETE", f"/Groups/{group['id']}", None, {}, 204),
    ]
    for method, path, body, headers, status in cases:
        if method == "GET":
            response = idp.request(method, path, params=body, headers=headers)
        else:
            response = idp.request(method, path, json=body, headers=headers)
        assert response.status_code == status, (method, path, response.text)
        assert "Location" not in response.headers, (method, path, status)
