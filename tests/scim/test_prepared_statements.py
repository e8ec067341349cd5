"""The statements of the SCIM requests identity providers send most name the deleted status in
their SQL instead of binding it (issue 15).

SQLite prepares a statement again on every execution when a value bound to it is compared with
the condition of a partial index (the planner may use the index only for some values: "the
statement will be automatically recompiled ... on the first sqlite3_step() call following any
change to the bindings of that parameter", https://sqlite.org/c3ref/prepare.html).
``uq_users_tenant_username`` holds the live users (``WHERE status != 'deleted'``), so every read
of users with ``status != ?`` was parsed and planned anew: the claims of a create took 30 µs
instead of 6 µs in a loop of the driver alone. Counted, never timed: the SQL sent.
"""

from __future__ import annotations

import re

import pytest

from server.db.session import Database
from tests.scim.helpers import USER, IdP, statements

# a users' status compared with a parameter: qmark (SQLite), pyformat or numeric (PostgreSQL)
BOUND_STATUS = re.compile(r"users\.status\s*!=\s*(\?|%\(|\$\d)", re.IGNORECASE)


def test_a_create_lookups_and_a_deactivation_bind_no_deleted_status(
    idp: IdP, database: Database
) -> None:
    idp.create_user("earlier.pupil", externalId="sis-earlier")  # the token is known from now on
    with statements(database) as seen:
        body = {"schemas": [USER], "userName": "fresh.pupil", "externalId": "sis-fresh"}
        created = idp.post("/Users", body)
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        for filtered in ('userName eq "fresh.pupil"', 'externalId eq "sis-fresh"'):
            found = idp.get("/Users", params={"filter": filtered})
            assert found.json()["totalResults"] == 1, found.text
        assert idp.get(f"/Users/{user_id}").status_code == 200
        off = {"op": "replace", "path": "active", "value": False}
        assert idp.patch(f"/Users/{user_id}", off).status_code == 200
    assert seen, "no statement seen"
    bound = [statement for statement in seen if BOUND_STATUS.search(statement)]
    assert bound == [], bound


def test_a_group_and_its_member_changes_bind_no_deleted_status(
    idp: IdP, database: Database
) -> None:
    first, second = (idp.create_user(name)["id"] for name in ("first.member", "second.member"))
    with statements(database) as seen:
        group = idp.create_group("Choir", [first])
        add = {"op": "add", "path": "members", "value": [{"value": second}]}
        assert idp.patch(f"/Groups/{group['id']}", add).status_code == 200
        read = idp.get(f"/Groups/{group['id']}")
        assert sorted(m["value"] for m in read.json()["members"]) == sorted([first, second])
    bound = [statement for statement in seen if BOUND_STATUS.search(statement)]
    assert bound == [], bound


def test_a_taken_username_of_a_deleted_user_is_free_again(idp: IdP) -> None:
    """The condition still reads as before: a deleted user's name may be taken again."""
    first = idp.create_user("reused.name")
    assert idp.request("DELETE", f"/Users/{first['id']}").status_code == 204
    again = idp.post("/Users", {"schemas": [USER], "userName": "reused.name"})
    assert again.status_code == 201, again.text
    clash = idp.post("/Users", {"schemas": [USER], "userName": "REUSED.name"})
    assert clash.status_code == 409 and clash.json()["scimType"] == "uniqueness", clash.text


# a LIKE whose pattern is a bare parameter (what SQLite prepares again for each binding)
BOUND_PATTERN = re.compile(r"LIKE\s+\?", re.IGNORECASE)


@pytest.mark.sqlite_only
def test_contains_and_ends_with_filters_bind_no_bare_like_pattern(
    idp: IdP, database: Database
) -> None:
    """SQLite prepares a statement again whenever a parameter a LIKE compares with is bound
    anew (its LIKE optimization reads the pattern): worth it for ``sw``, a prefix that bounds
    an index range (``case_sensitive_like``), not for ``co`` or ``ew``, which bound none."""
    member = idp.create_user("like.pupil", emails=[{"value": "like@x.example", "type": "work"}])
    idp.create_group("Like club", [member["id"]])
    filters = {
        'userName co "pupil"': 1,
        'userName ew ".PUPIL"': 1,
        'emails.value co "LIKE@"': 1,
        'emails[type co "wor" and value ew "x.example"]': 1,
        'groups.display co "club"': 1,
        'groups[display ew "club"]': 1,
        'externalId co "x"': 0,
    }
    with statements(database) as seen:
        for expression, total in filters.items():
            found = idp.get("/Users", params={"filter": expression})
            assert found.json()["totalResults"] == total, (expression, found.text)
    assert seen, "no statement seen"
    assert [statement for statement in seen if BOUND_PATTERN.search(statement)] == []
    with statements(database) as seen:
        found = idp.get("/Users", params={"filter": 'userName sw "like."'})
        assert found.json()["totalResults"] == 1, found.text
    assert [statement for statement in seen if BOUND_PATTERN.search(statement)] != []
