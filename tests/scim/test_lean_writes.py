"""Issue 15, third round: a created user and a PATCH of ``active`` are answered from the view
of the user as stored (:func:`scim.lookups.user_response`), not from a pydantic resource
validated again and dumped, and a PATCH of ``active`` rewrites only the ``active`` index row.

Both must say exactly what the engine says: each answer is compared, field for field and
header for header, with the engine's read of the same user (a conditional GET is served by
the engine), and the index rows with those a full re-index of the user writes.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
from typing import Any

from sqlalchemy import select, text
from starlette.testclient import TestClient

from server.app import create_app
from server.db import AuditEvent
from server.db.session import Database
from server.domain import scim_index, users
from server.domain.actors import system_actor
from tests.scim.conftest import District
from tests.scim.helpers import EDU_USER, ENTERPRISE, PATCH, USER, IdP
from tests.scim.test_lookups import _varied_users

INDEX = "SELECT path, element, lead, present, text, number FROM scim_values WHERE resource_id = :r"


def _engine_read(idp: IdP, user_id: str) -> Any:
    """The user as scim2-server's engine answers a read (a conditional GET takes that path)."""
    answer = idp.get(f"/Users/{user_id}", headers={"If-None-Match": 'W/"0"'})
    assert answer.status_code == 200, answer.text
    return answer


def _assert_same_as_engine(idp: IdP, answer: Any) -> None:
    engine = _engine_read(idp, answer.json()["id"])
    assert answer.json() == engine.json()
    assert answer.headers["etag"] == engine.headers["etag"] == answer.json()["meta"]["version"]
    assert answer.headers["content-location"] == engine.headers["content-location"]
    assert answer.headers["content-type"] == engine.headers["content-type"]


def _index_rows(database: Database, resource_id: str) -> list[tuple[Any, ...]]:
    with database.session(read_only=True) as session:
        rows = session.execute(text(INDEX), {"r": resource_id})
        return sorted((tuple(row) for row in rows), key=repr)


def _assert_index_as_a_full_reindex(
    idp: IdP, database: Database, district: District, user_id: str
) -> None:
    """The user's index rows are those the generic path writes when it indexes the whole
    user again (a record marked stale is re-indexed by the next search)."""
    written = _index_rows(database, user_id)
    with database.session() as session:
        scim_index.mark_stale(session, district.tenant_id, "User", user_id)
    assert idp.get("/Users", params={"filter": "userName pr", "count": 1}).status_code == 200
    assert written == _index_rows(database, user_id)


CREATIONS: list[dict[str, Any]] = [
    {"userName": "plain.pupil"},
    {
        "userName": "full.pupil@school.example",
        "externalId": "sis-1001",
        "name": {"givenName": "Lisa", "familyName": "Simpson", "middleName": "Marie"},
        "displayName": "Lisa Simpson",
        "title": "Pupil",
        "emails": [
            {"value": "lisa@school.example", "type": "work", "primary": True},
            {"value": "lisa@home.example", "type": "home"},
        ],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
        "schemas": [USER, ENTERPRISE, EDU_USER],
        ENTERPRISE: {"employeeNumber": "E-1", "department": "Year 7"},
        EDU_USER: {
            "roles": [{"role": "student", "school": "sch-1", "roleType": "primary"}],
            "grades": ["08", "07"],
            "sisIdentifier": "SIS-1001",
            "birthDate": "2013-04-01",
            "sourcedId": "src-1001",
        },
    },
    {"userName": "core.teacher", "externalId": "T-1", "userType": "Teacher"},
    {"userName": "gone.pupil", "externalId": "sis-gone", "active": False},
    {"userName": "Mixed.Case", "externalId": "Ext-MiXeD", "password": "Correct-Horse-9-Staple"},
]


def test_a_creation_answers_and_indexes_as_the_engine_for_every_kind_of_user(
    idp: IdP, database: Database, district: District
) -> None:
    for attributes in CREATIONS:
        created = idp.post("/Users", {"schemas": [USER], **attributes})
        assert created.status_code == 201, created.text
        _assert_same_as_engine(idp, created)
        # RFC 7644 §3.3: the new resource's URI in Location, as the engine gives it
        assert created.headers["location"] == created.json()["meta"]["location"]
        _assert_index_as_a_full_reindex(idp, database, district, created.json()["id"])
    # re-created by its externalId within the retention period: the deleted user restored
    gone = idp.get("/Users", params={"filter": 'externalId eq "T-1"'}).json()["Resources"][0]
    assert idp.delete(f"/Users/{gone['id']}").status_code == 204
    again = {"schemas": [USER], "userName": "core.teacher", "externalId": "T-1"}
    restored = idp.post("/Users", again)
    assert restored.status_code == 201 and restored.json()["id"] == gone["id"], restored.text
    _assert_same_as_engine(idp, restored)
    _assert_index_as_a_full_reindex(idp, database, district, gone["id"])


def _set_active(idp: IdP, user_id: str, active: bool) -> Any:
    operation = {"op": "replace", "path": "active", "value": active}
    body = {"schemas": [PATCH], "Operations": [operation]}
    answer = idp.request("PATCH", f"/Users/{user_id}", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["active"] is active
    assert "location" not in answer.headers
    return answer


def _actions(database: Database, user_id: str) -> list[str]:
    with database.session(read_only=True) as session:
        query = select(AuditEvent.action).where(AuditEvent.target_id == user_id)
        return list(session.scalars(query.order_by(AuditEvent.id)))


def test_a_patch_of_active_answers_and_indexes_as_the_engine_for_every_kind_of_user(
    idp: IdP, database: Database, district: District
) -> None:
    # with groups, classes, roles at two schools, a manager, inactive, and one user that came
    # by an import and has no index rows yet (indexed whole by its first PATCH, as before)
    for user in _varied_users(idp, database, district):
        before = _actions(database, user["id"])
        for active in (False, True):
            _assert_same_as_engine(idp, _set_active(idp, user["id"], active))
            _assert_index_as_a_full_reindex(idp, database, district, user["id"])
        changes = _actions(database, user["id"])[len(before) :]
        assert changes == ["user.deactivate", "user.reactivate"][-len(changes) :], changes
        assert len(changes) == (1 if before[-1:] == ["user.deactivate"] else 2), before
        found = idp.get("/Users", params={"filter": f'id eq "{user["id"]}" and active eq true'})
        assert found.json()["totalResults"] == 1


def test_a_patch_of_active_after_a_staff_change_leaves_the_reindex_to_the_next_search(
    idp: IdP, database: Database, district: District
) -> None:
    # A staff override leaves the user's index marked stale (one marker row). The lean PATCH
    # wrote the whole index then (it found no `active` row to rewrite); the index holds no
    # `active` now (scim.values.STATUS_PATHS), so the PATCH writes none of it and the next
    # search re-indexes the user first, as after any staff change.
    pupil = idp.create_user("renamed.pupil", name={"givenName": "Old", "familyName": "Name"})
    with database.session() as session:  # as tests/scim/test_override_reindex.py overrides
        user = users.find_by_username(session, district.tenant_id, "renamed.pupil")
        system = system_actor(district.tenant_id)
        users.update_user(session, system, user, {"given_name": "New"}, override=True)
    assert [row[0] for row in _index_rows(database, pupil["id"])] == [scim_index.STALE]
    _assert_same_as_engine(idp, _set_active(idp, pupil["id"], False))
    assert [row[0] for row in _index_rows(database, pupil["id"])] == [scim_index.STALE]
    found = idp.get("/Users", params={"filter": 'name.givenName eq "New" and active eq false'})
    assert [r["id"] for r in found.json()["Resources"]] == [pupil["id"]]
    rows = _index_rows(database, pupil["id"])
    assert not any(row[0] == scim_index.STALE for row in rows), rows
    _assert_index_as_a_full_reindex(idp, database, district, pupil["id"])


# The PATCHes identity providers send besides `active` (Entra ID replaces several attributes
# in one operation without a path, RFC 7644 §3.5.2.3; REFERENCES.md), served by the engine
# and answered from the view of the user as stored.
PATCHES: list[list[dict[str, Any]]] = [
    [{"op": "replace", "path": "name.givenName", "value": "Renamed"}],
    [
        {
            "op": "replace",
            "value": {
                "name.familyName": "Moved",
                "title": "Prefect",
                "displayName": "Renamed Moved",
            },
        }
    ],
    [
        {"op": "add", "path": "emails", "value": [{"value": "new@school.example", "type": "home"}]},
        {"op": "remove", "path": "title"},
    ],
    [{"op": "replace", "path": "userName", "value": "renamed.pupil.{n}"}],
    [
        {"op": "replace", "path": "active", "value": False},
        {"op": "replace", "path": "title", "value": "Left"},
    ],
    [{"op": "replace", "path": "title", "value": "Left"}],  # changes nothing: writes nothing
]


def test_a_patch_answers_with_the_stored_user_as_the_engine_reads_it(
    idp: IdP, database: Database, district: District
) -> None:
    for n, user in enumerate(_varied_users(idp, database, district)):
        for operations in PATCHES:
            unique = json.loads(json.dumps(operations).replace("{n}", str(n)))
            body = {"schemas": [PATCH], "Operations": unique}
            answer = idp.request("PATCH", f"/Users/{user['id']}", json=body)
            assert answer.status_code == 200, (operations, answer.text)
            _assert_same_as_engine(idp, answer)
        _assert_index_as_a_full_reindex(idp, database, district, user["id"])
        # a representation asked for (RFC 7644 §3.9) is still the engine's
        body = {"schemas": [PATCH], "Operations": PATCHES[0]}
        projected = idp.request(
            "PATCH", f"/Users/{user['id']}", json=body, params={"attributes": "userName"}
        )
        assert set(projected.json()) == {"schemas", "id", "userName"}, projected.text


def _dumps(
    settings: Any, database: Database, district: District, send: Any, names: Any = ("model_dump",)
) -> int:
    """How often scim2-models dumps a resource to JSON (or calls ``names``) while the app
    serves ``send(idp)`` (every thread of the app, as tests/scim/test_active_patch.py counts)."""
    dumped, counting = 0, False

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal dumped
        code = frame.f_code
        if counting and event == "call" and code.co_name in names:
            dumped += "scim2_models" in code.co_filename

    threading.setprofile(count)
    try:
        with TestClient(create_app(settings, database=database)) as client:
            idp = IdP(client, district.token)
            known = idp.get("/Users", params={"filter": 'externalId eq "sis-counted"'}).json()
            if not known["totalResults"]:
                idp.create_user("counted.pupil", externalId="sis-counted")
            for _ in range(2):  # the second time: every worker thread already started
                dumped, counting = 0, True
                sys.setprofile(count)
                answer = send(idp)
                sys.setprofile(None)
                counting = False
                assert answer.status_code < 300, answer.text
    finally:
        threading.setprofile(None)
    return dumped


def test_a_write_dumps_the_users_resource_only_to_store_it(
    settings: Any, database: Database, district: District
) -> None:
    """Counted, never timed: the answer to a create or a PATCH of a user was the stored user
    validated into a resource and dumped again (issue 15); it is now its view, published."""

    made = itertools.count()

    def create(idp: IdP) -> Any:
        return idp.post(
            "/Users", {"schemas": [USER], "userName": f"new.{next(made)}", "title": "N"}
        )

    def rename(idp: IdP) -> Any:
        found = idp.get("/Users", params={"filter": 'externalId eq "sis-counted"'}).json()
        names = {"name.familyName": f"Moved {next(made)}", "title": f"Prefect {next(made)}"}
        operation = {"op": "replace", "value": names}  # Entra's shape, without a path
        return idp.patch(f"/Users/{found['Resources'][0]['id']}", operation)

    def deactivate(idp: IdP) -> Any:
        found = idp.get("/Users", params={"filter": 'externalId eq "sis-counted"'}).json()
        return _set_active(idp, found["Resources"][0]["id"], next(made) % 2 == 0)

    # the body, dumped to the document the domain stores (scim.mapping.document); nothing more
    assert _dumps(settings, database, district, create) == 1
    assert _dumps(settings, database, district, rename) == 1
    assert _dumps(settings, database, district, deactivate) == 0
