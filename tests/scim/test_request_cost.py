"""What one SCIM request costs the database: a fixed number of statements, whatever the size.

Issue 15 measured ~18 statements per create and ~9 per lookup, one statement per member for a
change to a group (a 5,000-member group: 10,000 statements per PATCH) and four per user for a
page of users. Statements are counted (never timed): the count is what grows with a district.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from scim.index import indexed_values
from scim.schemas import make_provider
from server.db import AuditEvent, User
from server.db.session import Database
from tests.scim.helpers import PATCH, USER, IdP, statements

# Every request's unit of work opens with BEGIN and a savepoint, and closes them.
FRAME = {"BEGIN", "SAVEPOINT", "RELEASE", "COMMIT"}


def _work(seen: list[str]) -> list[str]:
    """The statements that read or write data (not the transaction frame)."""
    return [s for s in seen if s.split(" ", 1)[0].upper() not in FRAME]


def _cost(idp: IdP, database: Database, method: str, path: str, **kwargs: object) -> list[str]:
    with statements(database) as seen:
        answer = idp.request(method, path, **kwargs)
    assert answer.status_code < 300, answer.text
    return _work(seen)


def test_a_member_change_costs_as_much_on_a_big_group_as_on_a_small_one(
    idp: IdP, database: Database
) -> None:
    ids = [idp.create_user(f"member{n:02}")["id"] for n in range(40)]
    costs = []
    for size in (3, 40):
        group = idp.create_group(f"Club of {size}", ids[:size])
        removal = {"op": "remove", "path": f'members[value eq "{ids[0]}"]'}
        body = {"schemas": [PATCH], "Operations": [removal]}
        work = _cost(idp, database, "PATCH", f"/Groups/{group['id']}", json=body)
        # the index rows are written only when one changed (the new first member's, if any)
        costs.append(len([s for s in work if not s.startswith("INSERT INTO scim_values")]))
    assert costs[0] == costs[1]


def test_a_page_of_users_costs_as_much_for_twelve_users_as_for_two(
    idp: IdP, database: Database
) -> None:
    for n in range(12):
        idp.create_user(f"crowd{n:02}")
    costs = [
        len(_cost(idp, database, "GET", "/Users", params={"count": count})) for count in (2, 12)
    ]
    assert costs[0] == costs[1]


def test_a_lookup_reads_the_user_in_a_few_statements(idp: IdP, database: Database) -> None:
    for n in range(5):
        idp.create_user(f"pupil{n}", externalId=f"sis-{n}")
    for scim_filter in ('userName eq "pupil3"', 'externalId eq "sis-3"'):
        work = _cost(idp, database, "GET", "/Users", params={"filter": scim_filter})
        # the stale-index check, the matching id, the user with its roles and grades, and
        # its memberships; no count (a short first page counts itself), no credential
        assert len(work) <= 6, work
        assert not any("FROM credentials" in s for s in work), work


def test_a_creation_writes_its_index_rows_in_one_statement(idp: IdP, database: Database) -> None:
    body = {
        "schemas": [USER],
        "userName": "new.pupil",
        "externalId": "sis-new",
        "name": {"givenName": "New", "familyName": "Pupil"},
        "emails": [{"value": "new.pupil@school.example", "type": "work", "primary": True}],
    }
    work = _cost(idp, database, "POST", "/Users", json=body)
    index_inserts = [s for s in work if s.startswith("INSERT INTO scim_values")]
    assert len(index_inserts) == 1, index_inserts
    assert len(work) <= 12, work


def test_a_deactivation_reads_the_user_and_its_groups_once(idp: IdP, database: Database) -> None:
    pupil = idp.create_user("leaving.pupil")
    body = {
        "schemas": [PATCH],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    work = _cost(idp, database, "PATCH", f"/Users/{pupil['id']}", json=body)
    user_reads = [s for s in work if s.startswith("SELECT users.id, ")]
    assert len(user_reads) == 1, user_reads
    # its groups and classes too: read for the PATCH, unchanged by it when it answers
    membership_reads = [s for s in work if "AS group_id" in s]
    assert len(membership_reads) == 1, membership_reads


Row = tuple[object, ...]


def _index_rows(database: Database, resource_id: str) -> dict[Row, Row]:
    """The attribute-index rows of one resource, keyed by their id and content: SQLite may give
    a row inserted after a delete the id of the deleted one, so the id alone cannot tell a
    rewritten row from an untouched one."""
    with database.session(read_only=True) as session:
        rows = session.execute(
            text("SELECT id, path, element, text FROM scim_values WHERE resource_id = :r"),
            {"r": resource_id},
        )
        return {tuple(row): tuple(row[1:]) for row in rows}


def _entries(rows: dict[Row, Row], keys: set[Row]) -> set[object]:
    """The entries (``element`` keys) the rows ``keys`` belong to."""
    return {rows[key][1] for key in keys}


def test_a_member_change_rewrites_only_that_members_index_rows(
    idp: IdP, database: Database
) -> None:
    # Issue 15 item 3: the index rows of a group's entries were numbered by position, so a
    # removal renumbered (deleted and re-inserted) every member after it.
    ids = [idp.create_user(f"member{n:02}")["id"] for n in range(12)]
    group = idp.create_group("Choir", ids[:10])
    before = _index_rows(database, group["id"])
    leaving, joining = ids[0], ids[10]
    removal = {"op": "remove", "path": f'members[value eq "{leaving}"]'}
    assert idp.patch(f"/Groups/{group['id']}", removal).status_code == 200
    after_removal = _index_rows(database, group["id"])
    # Only the leaving member's entry goes, and at most one more entry is rewritten: the one
    # that became the first (its ``lead`` flag, which sorts read, moves to it).
    gone = _entries(before, set(before) - set(after_removal))
    rewritten = _entries(after_removal, set(after_removal) - set(before))
    assert _entries(before, {i for i, row in before.items() if row[2] == leaving}) <= gone
    assert len(gone) <= 2 and len(rewritten) <= 1 and rewritten < gone, (gone, rewritten)
    addition = {"op": "add", "path": "members", "value": [{"value": joining}]}
    assert idp.patch(f"/Groups/{group['id']}", addition).status_code == 200
    after_addition = _index_rows(database, group["id"])
    written = _entries(after_addition, set(after_addition) - set(after_removal))
    dropped = _entries(after_removal, set(after_removal) - set(after_addition))
    joined = {i for i, row in after_addition.items() if row[2] == joining}
    assert _entries(after_addition, joined) <= written
    assert len(written) <= 2 and len(dropped) <= 1, (written, dropped)
    found = idp.get("/Groups", params={"filter": f'members[value eq "{joining}"]'}).json()
    assert [g["id"] for g in found["Resources"]] == [group["id"]]
    found = idp.get("/Groups", params={"filter": f'members[value eq "{leaving}"]'}).json()
    assert found["totalResults"] == 0


def test_a_lookup_sends_only_its_reads(idp: IdP, database: Database) -> None:
    # Issue 15 item 1: a read-only unit of work (a GET) also opened and released a savepoint,
    # two statements of a lookup's nine with nothing to roll back.
    idp.create_user("pupil", externalId="sis-1")
    with statements(database) as seen:
        found = idp.get("/Users", params={"filter": 'userName eq "pupil"'})
    assert found.status_code == 200 and found.json()["totalResults"] == 1
    assert [s for s in seen if s.split(" ", 1)[0] in ("SAVEPOINT", "RELEASE")] == []
    assert all(s.startswith(("BEGIN", "SELECT")) for s in seen), seen


# -- the write path (issue 15, SCIM writes) -----------------------------------------------------


def _frame(seen: list[str]) -> list[str]:
    return [s.split(" ", 1)[0].upper() for s in seen if s.split(" ", 1)[0].upper() in FRAME]


def test_a_creation_checks_the_names_it_claims_in_one_read(idp: IdP, database: Database) -> None:
    # Issue 15: a create read the connection's deleted user with that externalId, then whether
    # the username was taken, then whether the sourcedId was, then the new user's groups and its
    # index rows (it has neither yet): 15 statements per create.
    idp.create_user("earlier.pupil", externalId="sis-earlier")  # the token is known from now on
    body = {"schemas": [USER], "userName": "fresh.pupil", "externalId": "sis-fresh"}
    with statements(database) as seen:
        answer = idp.post("/Users", body)
    assert answer.status_code == 201, answer.text
    work = _work(seen)
    user_reads = [s for s in work if s.startswith("SELECT") and "FROM users" in s]
    assert len(user_reads) == 1, user_reads
    assert not any("AS group_id" in s or "FROM scim_values" in s for s in work), work
    # the connection read with the live check of the token (scim.lookups.admitted), the
    # claims, the user, its credential, its audit event, its index rows
    assert len([s for s in work if "FROM connection_tokens" in s]) == 1, work
    assert len(work) <= 6, work
    # no savepoint of the storage's own (nor, since the third round, the request's)
    assert _frame(seen).count("SAVEPOINT") == 0, seen


def test_a_creation_still_refuses_a_taken_username_or_sourced_id(idp: IdP) -> None:
    idp.create_user("taken.name", externalId="sis-a")
    again = idp.post("/Users", {"schemas": [USER], "userName": "TAKEN.name"})
    assert again.status_code == 409 and again.json()["scimType"] == "uniqueness", again.text
    edu = "urn:rollcall:params:scim:schemas:extension:education:2.0:User"
    first = {"schemas": [USER, edu], "userName": "one", edu: {"sourcedId": "src-1"}}
    assert idp.post("/Users", first).status_code == 201
    second = {"schemas": [USER, edu], "userName": "two", edu: {"sourcedId": "src-1"}}
    clash = idp.post("/Users", second)
    assert clash.status_code == 409 and clash.json()["scimType"] == "uniqueness", clash.text


def test_a_deactivation_is_one_change_with_one_audit_event(idp: IdP, database: Database) -> None:
    # Issue 15: PATCH `active` also rewrote the stored SCIM document (which repeated `active`)
    # and audited that as a second event, "user.update", beside "user.deactivate".
    pupil = idp.create_user("quitting.pupil")
    body = {
        "schemas": [PATCH],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    with statements(database) as seen:
        answer = idp.request("PATCH", f"/Users/{pupil['id']}", json=body)
    assert answer.status_code == 200 and answer.json()["active"] is False, answer.text
    work = _work(seen)
    assert len([s for s in work if s.startswith("UPDATE users")]) == 1, work
    assert len([s for s in work if s.startswith("INSERT INTO audit_events")]) == 1, work
    assert _frame(seen).count("SAVEPOINT") == 0, seen
    with database.session(read_only=True) as session:
        actions = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.target_id == pupil["id"])
            .order_by(AuditEvent.id)
        ).all()
    assert actions == ["user.create", "user.deactivate"]
    again = idp.request("PATCH", f"/Users/{pupil['id']}", json=body)
    assert again.status_code == 200 and again.json()["active"] is False


def test_a_member_change_reads_the_members_once_and_checks_only_who_joins(
    idp: IdP, database: Database
) -> None:
    # Issue 15: a change to a group read its member list three times (for the change, to
    # apply it, for the answer) and looked every member up again, 500 per statement.
    ids = [idp.create_user(f"singer{n:02}")["id"] for n in range(6)]
    group = idp.create_group("Choir", ids[:5])
    addition = {"op": "add", "path": "members", "value": [{"value": ids[5]}]}
    body = {"schemas": [PATCH], "Operations": [addition]}
    work = _cost(idp, database, "PATCH", f"/Groups/{group['id']}", json=body)
    member_reads = [
        s for s in work if s.startswith("SELECT group_members.user_id") and "JOIN" not in s
    ]
    # the resource as read for the PATCH and the members before the change: the answer is
    # that resource with the new members, not the group read and validated again
    assert len(member_reads) <= 2, member_reads
    user_reads = [s for s in work if "FROM users" in s]
    assert len(user_reads) <= 2, user_reads  # who joins; whether a staying member was deleted


def test_a_member_change_still_refuses_an_unknown_or_deleted_user(idp: IdP) -> None:
    ids = [idp.create_user(f"runner{n}")["id"] for n in range(3)]
    group = idp.create_group("Team", ids[:2])
    unknown = {"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}
    assert idp.patch(f"/Groups/{group['id']}", unknown).status_code == 400
    assert idp.delete(f"/Users/{ids[1]}").status_code == 204
    joining = {"op": "add", "path": "members", "value": [{"value": ids[2]}]}
    refused = idp.patch(f"/Groups/{group['id']}", joining)
    assert refused.status_code == 400 and ids[1] in refused.json()["detail"], refused.text


def test_a_member_change_leaves_the_other_members_index_rows_unread(
    idp: IdP, database: Database
) -> None:
    # Issue 15: a member change read every index row of the group (four per member, 20,000
    # for a group of 5,000) to find the few that changed.
    ids = [idp.create_user(f"dancer{n:02}")["id"] for n in range(6)]
    group = idp.create_group("Troupe", ids[:5])
    addition = {"op": "add", "path": "members", "value": [{"value": ids[5]}]}
    body = {"schemas": [PATCH], "Operations": [addition]}
    work = _cost(idp, database, "PATCH", f"/Groups/{group['id']}", json=body)
    assert not any(s.startswith("SELECT") and "FROM scim_values" in s for s in work), work


def test_after_member_changes_the_index_is_the_one_a_full_reindex_writes(
    idp: IdP, database: Database
) -> None:
    """The rows written for the members who joined or left (and the first member, whose entry
    a sort reads) leave the group's index as indexing the whole group again would."""
    ids = sorted(idp.create_user(f"player{n:02}")["id"] for n in range(8))
    group = idp.create_group("Band", ids[2:6])
    changes = [
        {"op": "remove", "path": f'members[value eq "{ids[2]}"]'},  # the first member leaves
        {"op": "add", "path": "members", "value": [{"value": ids[0]}]},  # a new first member
        {"op": "add", "path": "members", "value": [{"value": ids[7]}, {"value": ids[6]}]},
        {"op": "remove", "path": f'members[value eq "{ids[4]}" or value eq "{ids[6]}"]'},
        {"op": "add", "path": "members", "value": [{"value": ids[3]}]},  # already a member
    ]
    for change in changes:
        answer = idp.patch(f"/Groups/{group['id']}", change)
        assert answer.status_code == 200
        assert answer.json() == idp.get(f"/Groups/{group['id']}").json()  # what a read shows
        _assert_index_is_complete(idp, database, group["id"])
    members = idp.get(f"/Groups/{group['id']}").json()["members"]
    assert [m["value"] for m in members] == [ids[0], ids[3], ids[5], ids[7]]
    for member_id in (ids[0], ids[7]):
        found = idp.get("/Groups", params={"filter": f'members[value eq "{member_id}"]'}).json()
        assert found["totalResults"] == 1
    found = idp.get("/Groups", params={"filter": f'members[value eq "{ids[2]}"]'}).json()
    assert found["totalResults"] == 0


def _assert_index_is_complete(idp: IdP, database: Database, group_id: str) -> None:
    provider = make_provider(None)
    model = provider.model_for(next(t for t in provider.resource_types if t.name == "Group"))
    doc = idp.get(f"/Groups/{group_id}").json()
    # the answer's references are absolute (RFC 7643 §2.3.7); the index keeps them as stored
    doc["members"] = [{**m, "$ref": m["$ref"].split("/scim/v2/")[-1]} for m in doc["members"]]
    resource = model.model_validate(doc)
    wanted = sorted(
        (
            (v.path, v.element, v.lead, v.present, v.text, v.number)
            for v in indexed_values(resource)
        ),
        key=repr,
    )
    with database.session(read_only=True) as session:
        stored = session.execute(
            text(
                "SELECT path, element, lead, present, text, number FROM scim_values "
                "WHERE resource_id = :r"
            ),
            {"r": group_id},
        )
        rows = sorted(((r[0], r[1], bool(r[2]), bool(r[3]), r[4], r[5]) for r in stored), key=repr)
    assert rows == wanted


# -- the lean write path (issue 15, third round) ---------------------------------------------


def test_a_creation_opens_no_savepoint_and_reads_nothing_of_the_new_user(
    idp: IdP, database: Database
) -> None:
    # Issue 15: a single create (not an operation of a Bulk request) opened a savepoint the
    # unit of work's own rollback already gives, two round trips for nothing.
    idp.create_user("earlier.one", externalId="sis-e1")
    body = {"schemas": [USER], "userName": "lean.one", "externalId": "sis-l1", "active": True}
    with statements(database) as seen:
        answer = idp.post("/Users", body)
    assert answer.status_code == 201, answer.text
    assert not {"SAVEPOINT", "RELEASE"} & set(_frame(seen)), seen
    work = _work(seen)
    # the claims; the user, its credential, its audit event, its index rows
    assert [s.split(" (", 1)[0] for s in work if not s.startswith("SELECT")] == [
        "INSERT INTO users",
        "INSERT INTO credentials",
        "INSERT INTO audit_events",
        "INSERT INTO scim_values",
    ], work
    assert len(work) <= 7, work  # with the live check of the token (scim.app._admitted)


def test_a_deactivation_reads_the_user_once_and_writes_no_index_row(
    idp: IdP, database: Database
) -> None:
    # Issue 15: a PATCH `active` read the user, then its roles and its grades (two selectin
    # reads), then every index row of the user to rewrite the one that changed, inside a
    # savepoint: 13 statements. Then it rewrote the `active` row alone; now the index holds
    # none (scim.values.STATUS_PATHS: filters and sorts read the status column).
    pupil = idp.create_user("switching.pupil", externalId="sis-sw")
    body = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    with statements(database) as seen:
        answer = idp.request("PATCH", f"/Users/{pupil['id']}", json=body)
    assert answer.status_code == 200 and answer.json()["active"] is False, answer.text
    assert not {"SAVEPOINT", "RELEASE"} & set(_frame(seen)), seen
    work = _work(seen)
    assert not any(s.startswith(("SELECT user_roles", "SELECT user_grades")) for s in work), work
    assert not any("scim_values" in s for s in work), work
    # the user with its roles, grades, memberships (for the answer) and the live check of the
    # token; its status, its tokens, its audit event
    assert len(work) <= 6, work


# -- the ORM's unit of work stays out of the lean writes (issue 15, fourth round) -------------


@contextmanager
def _orm_writes() -> Iterator[list[str]]:
    """What the ORM's unit of work inserted or updated meanwhile, in any session: "new User",
    "dirty User"… (an ORM object per written row; Core statements do not show here)."""
    seen: list[str] = []

    def note(session: Session, _context: object, _instances: object) -> None:
        seen.extend(f"new {type(record).__name__}" for record in session.new)
        changed = (record for record in session.dirty if session.is_modified(record))
        seen.extend(f"dirty {type(record).__name__}" for record in changed)

    event.listen(Session, "before_flush", note)
    try:
        yield seen
    finally:
        event.remove(Session, "before_flush", note)


def test_a_creation_writes_the_user_without_the_orm_unit_of_work(
    idp: IdP, database: Database
) -> None:
    # Issue 15: the ORM's flush of the new user, its credential and its audit event was a
    # fifth of a create; the rows are those the imports write with Core (server.db.bulk_insert)
    idp.create_user("earlier.two", externalId="sis-e2")
    body = {"schemas": [USER], "userName": "core.one", "externalId": "sis-c1"}
    with _orm_writes() as written:
        answer = idp.post("/Users", body)
    assert answer.status_code == 201, answer.text
    assert written == [], written
    with database.session(read_only=True) as session:
        stored = session.scalars(select(User).where(User.username == "core.one")).one()
        assert (stored.version, stored.credential.state) == (1, "pending")
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.target_id == stored.id)
        ).all()
    assert actions == ["user.create"]
    assert answer.json()["meta"]["version"] == 'W/"1"'


def test_a_deactivation_writes_its_audit_event_without_the_orm_unit_of_work(
    idp: IdP, database: Database
) -> None:
    # Issue 15: the audit event of the status change went through an ORM flush of its own
    pupil = idp.create_user("core.leaver")
    body = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    with _orm_writes() as written:
        answer = idp.request("PATCH", f"/Users/{pupil['id']}", json=body)
    assert answer.status_code == 200 and answer.json()["active"] is False, answer.text
    assert not [w for w in written if w.startswith("new ")], written
    assert answer.json()["meta"]["version"] == 'W/"2"'
    with database.session(read_only=True) as session:
        stored = session.get(User, pupil["id"])
        assert stored is not None and (stored.status, stored.version) == ("inactive", 2)


def test_a_creation_reads_its_connection_with_the_live_token_check(
    idp: IdP, database: Database
) -> None:
    # Issue 15 (scimcreate): the live check of the token and the read of the connection that
    # owns the new user were two statements of a create's eight; one read answers both.
    idp.create_user("earlier.pupil", externalId="sis-earlier")  # the token is known from now on
    body = {"schemas": [USER], "userName": "joined.pupil", "externalId": "sis-joined"}
    work = _cost(idp, database, "POST", "/Users", json=body)
    token_reads = [s for s in work if "connection_tokens" in s]
    assert len(token_reads) == 1 and "FROM connections" in token_reads[0], work
    assert not any(s.startswith("SELECT connections.") and s not in token_reads for s in work)
    # the connection with the token, the claims, the user, its credential, its audit event,
    # its index rows
    assert len(work) == 6, work


def test_a_deactivation_checks_the_token_in_its_read_of_the_user(
    idp: IdP, database: Database
) -> None:
    pupil = idp.create_user("checked.pupil")
    body = {
        "schemas": [PATCH],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    work = _cost(idp, database, "PATCH", f"/Users/{pupil['id']}", json=body)
    [user_read] = [s for s in work if s.startswith("SELECT users.id, ")]
    assert "connection_tokens" in user_read
    assert [s for s in work if "connection_tokens" in s] == [user_read], work
    # the user (with the token, its groups and whether it holds OIDC tokens: it holds none),
    # its status and the audit event (the index holds no row of `active`)
    assert len(work) == 3, work


def test_a_deactivation_loads_no_orm_user(idp: IdP, database: Database) -> None:
    # Issue 15 (scimpatch2): loading the user as an ORM object was 29% of a PATCH `active`,
    # the ORM's flush of its changed row 21%; a plain row read and one UPDATE do the same
    pupil = idp.create_user("plain.leaver", externalId="sis-plain")
    loaded: list[str] = []

    def note(_session: Session, instance: object) -> None:
        loaded.append(type(instance).__name__)

    body = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    event.listen(Session, "loaded_as_persistent", note)
    try:
        with _orm_writes() as written, statements(database) as seen:
            answer = idp.request("PATCH", f"/Users/{pupil['id']}", json=body)
    finally:
        event.remove(Session, "loaded_as_persistent", note)
    assert answer.status_code == 200 and answer.json()["active"] is False, answer.text
    assert "User" not in loaded and written == [], (loaded, written)
    [change] = [s for s in _work(seen) if s.startswith("UPDATE users")]
    assert "users.version =" in change, change  # the ETag is still checked by the write
    assert answer.json()["meta"]["version"] == 'W/"2"'
    assert answer.headers["etag"] == 'W/"2"'


# -- one read of a user, a write only where there is something to write (issue 15, seventh) ---


def test_a_lookup_reads_the_user_and_its_groups_in_one_statement(
    idp: IdP, database: Database
) -> None:
    # Issue 15: a lookup read the user (with its roles and grades), then its memberships
    pupil = idp.create_user("grouped.pupil", externalId="sis-grouped")
    for name in ("choir", "Band", "Chess club"):
        idp.create_group(name, [pupil["id"]])
    shown = idp.get("/Users", params={"startIndex": 1, "count": 1}).json()["Resources"][0]
    assert [group["display"] for group in shown["groups"]] == ["Band", "Chess club", "choir"]
    requests = [
        ("/Users", {"filter": 'userName eq "grouped.pupil"'}),
        ("/Users", {"filter": 'externalId eq "sis-grouped"'}),
        (f"/Users/{pupil['id']}", {}),
    ]
    for path, params in requests:
        with statements(database) as seen:
            answer = idp.get(path, params=params)
        assert answer.status_code == 200, answer.text
        work = _work(seen)
        assert len(work) == 1, work
        found = answer.json()["Resources"][0] if "Resources" in answer.json() else answer.json()
        assert found["groups"] == shown["groups"]


def _deactivation(idp: IdP, database: Database, user_id: str) -> list[str]:
    body = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    work = _cost(idp, database, "PATCH", f"/Users/{user_id}", json=body)
    return [s.split(" SET ", 1)[0].split(" (", 1)[0] for s in work]


def test_a_deactivation_reads_once_and_revokes_only_tokens_that_exist(
    idp: IdP, database: Database
) -> None:
    # Issue 15: a PATCH `active` sent six statements, one of them the revocation of the
    # user's OIDC tokens, which most users of an identity provider have none of
    pupil = idp.create_user("tokenless.pupil")
    idp.create_group("Chess", [pupil["id"]])
    sent = _deactivation(idp, database, pupil["id"])
    assert sent[1:] == ["UPDATE users", "INSERT INTO audit_events"], sent
    assert sent[0].startswith("SELECT users.id, ") and len(sent) == 3, sent


@contextmanager
def vm_instructions(database: Database) -> Iterator[list[int]]:
    """How many instructions SQLite's virtual machine ran for the statements of the block
    (a progress handler on each connection they run on): the work of a read, which grows with
    the rows it visits, counted rather than timed."""
    counted = [0]

    def tick() -> int:
        counted[0] += 1
        return 0  # go on

    def watch(conn: object, *args: object) -> None:
        conn.connection.driver_connection.set_progress_handler(tick, 1)  # type: ignore[attr-defined]

    event.listen(database.engine, "before_cursor_execute", watch)
    try:
        yield counted
    finally:
        event.remove(database.engine, "before_cursor_execute", watch)
        with database.engine.connect() as connection:  # the pool's connections, untouched after
            connection.connection.driver_connection.set_progress_handler(None, 1)  # type: ignore[union-attr]


@pytest.mark.sqlite_only  # the instructions of SQLite's virtual machine
def test_a_lookup_costs_as_much_when_the_connection_has_many_groups_as_one(
    idp: IdP, database: Database
) -> None:
    # Issue 15: a lookup read the user's memberships by walking every group of the connection
    # and probing each for the user (2,000 groups: 6.9 ms of CPU a lookup instead of 0.6)
    pupil = idp.create_user("grouped.pupil", externalId="sis-grouped")
    other = idp.create_user("other.pupil")
    idp.create_group("Chess", [pupil["id"]])
    lookups = [
        ("/Users", {"filter": 'userName eq "grouped.pupil"'}),
        ("/Users", {"filter": 'externalId eq "sis-grouped"'}),
        (f"/Users/{pupil['id']}", {}),
    ]

    def cost() -> list[int]:
        spent = []
        for path, params in lookups:
            with vm_instructions(database) as counted:
                answer = idp.get(path, params=params)
            assert answer.status_code == 200, answer.text
            found = answer.json()["Resources"][0] if "Resources" in answer.json() else answer.json()
            assert [group["display"] for group in found["groups"]] == ["Chess"]
            spent.append(counted[0])
        return spent

    one_group = cost()
    clubs = 40
    for number in range(clubs):
        idp.create_group(f"Club {number}", [other["id"]])
    many_groups = cost()
    # the user's memberships are visited, not the connection's groups (8 instructions a group
    # before): less than one more instruction for each group the connection has
    grown = [after - before for before, after in zip(one_group, many_groups, strict=True)]
    assert all(more < clubs for more in grown), (one_group, many_groups)
