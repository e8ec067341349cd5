"""OneRoster pages keep their total and deep-page anchors per roster state (issue 15).

Issue 15: every page counted its total (``X-Total-Count``) by walking every visible user, and
a deep page walked the whole offset, so a page's cost grew with the district. The total and
the sourcedId anchors are now kept per roster state (``server.domain.roster_reads``), which
database triggers move on every write (migration ``0014_roster_versions``). These tests read
the statements a request runs (no timing: figures are in ``bench/oneroster.py``) and check
that a kept total or anchor is never served after a change: written by the domain, by a bare
SQL statement (as a bulk path writes), in this process or seen by another ``rollcall serve``.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from server import districts
from server.db import Org, User
from server.domain import roster, roster_reads, users
from server.domain.actors import system_actor
from server.domain.roster_state import roster_state
from tests.live import rollcall_serve
from tests.oneroster.conftest import V1P2, bearer
from tests.scim.helpers import executed


def _total(client, token: str, **params) -> int:
    answer = client.get(f"{V1P2}/users", params={"limit": 2, **params}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return int(answer.headers["X-Total-Count"])


def _counts(seen) -> list[str]:
    return [s for s, _ in seen if s.startswith("SELECT count(*)") and "FROM users" in s]


def _add_student(database, district, sourced_id: str) -> None:
    with database.session() as session:
        system = system_actor(district.tenant_id, "test")
        school = session.get(Org, district.north_id)
        districts.student(session, system, school, "New", "Comer", sourced_id=sourced_id)


def test_a_repeated_page_does_not_count_again(api, database, reader) -> None:
    token = reader()
    with executed(database) as first:
        total = _total(api, token)
    with executed(database) as again:
        assert _total(api, token, offset=2) == total
    assert len(_counts(first)) == 1, first
    assert _counts(again) == [], again


def test_the_total_follows_every_write(api, database, district, reader) -> None:
    token, north = reader(), reader(schools=["north"])
    total, north_total = _total(api, token), _total(api, north)

    _add_student(database, district, "north-new")  # through the domain
    assert _total(api, token) == total + 1
    assert _total(api, north) == north_total + 1

    with database.session() as session:
        added = session.scalars(text("SELECT id FROM users WHERE sourced_id = 'north-new'")).one()
        users.delete_user(
            session, system_actor(district.tenant_id, "test"), session.get(User, added)
        )
    assert _total(api, token) == total
    assert _total(api, north) == north_total

    with database.engine.begin() as connection:  # a bare statement, as a bulk write sends
        connection.execute(
            text("UPDATE users SET status = 'tobedeleted' WHERE sourced_id = 'south-s1-0'")
        )
    assert _total(api, token) == total - 1
    assert _total(api, north) == north_total

    with database.engine.begin() as connection:  # a role at north for a south student
        connection.execute(
            text(
                "INSERT INTO user_roles (user_id, org_id, role, role_type) "
                "SELECT id, :north, 'student', 'secondary' FROM users "
                "WHERE sourced_id = 'south-s1-1'"
            ),
            {"north": district.north_id},
        )
    assert _total(api, north) == north_total + 1


def _all_ids(client, token: str, order: str) -> list[str]:
    params = {"limit": 1000, "orderBy": order}
    answer = client.get(f"{V1P2}/users", params=params, headers=bearer(token))
    return [u["sourcedId"] for u in answer.json()["users"]]


def _pages_agree(client, token: str, order: str, minimum: int = 2 * 4) -> None:
    every = _all_ids(client, token, order)
    assert len(every) > minimum
    for offset in range(len(every) + 1):
        params = {"limit": 2, "offset": offset, "orderBy": order}
        answer = client.get(f"{V1P2}/users", params=params, headers=bearer(token))
        page = [u["sourcedId"] for u in answer.json()["users"]]
        assert page == every[offset : offset + 2], (order, offset)


def test_deep_pages_start_from_an_anchor_and_follow_writes(
    api, database, district, reader, monkeypatch
) -> None:
    monkeypatch.setattr(roster_reads, "ANCHOR_STEP", 4)
    token = reader()
    for order in ("asc", "desc"):
        _pages_agree(api, token, order)
    with executed(database) as seen:
        _total(api, token, offset=13)
    page = next(s for s, p in seen if s.startswith("SELECT users.id") and "OFFSET" in s)
    assert "users.sourced_id >" in page, page

    _add_student(database, district, "north-bio-0")  # sorts among the first rows
    with database.engine.begin() as connection:
        connection.execute(
            text("UPDATE users SET status = 'deleted' WHERE sourced_id LIKE 'south-s2-%'")
        )
    for order in ("asc", "desc"):
        _pages_agree(api, token, order)


def test_a_school_limited_page_probes_each_user_once_the_schools_are_large(
    api, database, district, reader, monkeypatch
) -> None:
    """Past ``PROBE_ABOVE`` visible users a school-limited page checks each user it walks
    (the set of 20 schools' users was the whole district, gathered for every page: 1.1 s per
    page at 100,000 users); the pages are the same either way."""
    monkeypatch.setattr(roster_reads, "ANCHOR_STEP", 4)
    north = reader(schools=["north"])
    every = _all_ids(api, north, "asc")
    monkeypatch.setattr(roster_reads, "PROBE_ABOVE", 0)
    assert _all_ids(api, north, "asc") == every
    assert every and all(sid.startswith("north") for sid in every), every
    for order in ("asc", "desc"):
        _pages_agree(api, north, order, minimum=2)
    with executed(database) as seen:
        _total(api, north, offset=5)
    page = next(s for s, p in seen if s.startswith("SELECT users.id") and "OFFSET" in s)
    assert "user_roles.user_id = users.id" in page, page


def test_another_process_never_serves_a_total_kept_before_a_change(
    api, database, database_url, district, reader, tmp_path
) -> None:
    token = reader()
    with (
        rollcall_serve(database_url, tmp_path) as other,
        httpx.Client(base_url=other.url, timeout=30) as client,
    ):
        total = _total(client, token)
        assert _total(client, token) == total  # kept there now
        assert _total(api, token) == total  # and here
        _add_student(database, district, "north-late")
        assert _total(client, token) == total + 1
        assert _total(api, token) == total + 1


def test_a_count_taken_between_two_writes_of_one_unit_of_work_is_not_kept(
    api, database, district, reader
) -> None:
    """On SQLite the roster state moves at the first roster write of a transaction: a total
    counted after it and before a second write must not be kept under the final state."""
    token = reader()
    total = _total(api, token)
    with database.session() as session:
        system = system_actor(district.tenant_id, "test")
        school = session.get(Org, district.north_id)
        districts.student(session, system, school, "One", "More", sourced_id="north-one")
        scope = roster_reads.ReadScope(district.tenant_id)
        counted = roster_reads.read_page(session, scope, User, limit=1, offset=0).total
        districts.student(session, system, school, "Two", "More", sourced_id="north-two")
    assert counted == total + 1
    assert _total(api, token) == total + 2


def test_postgresql_folds_its_change_rows_and_the_state_still_moves(database, district) -> None:
    """PostgreSQL's triggers insert a change row per statement and fold them into
    ``roster_versions`` past 256: every committed write still gives a state never seen
    before, and the change rows stay few."""
    if database.engine.dialect.name != "postgresql":
        pytest.skip("the change rows and their folding are PostgreSQL's")
    seen = set()
    for n in range(300):
        with database.session() as session:
            system = system_actor(district.tenant_id, "test")
            roster.create_org(
                session, system, {"name": f"Org {n}", "type": "school", "sourced_id": f"fold-{n}"}
            )
        with database.session() as session:
            state = roster_state(session, district.tenant_id)
        assert state not in seen, (n, state)
        seen.add(state)
    with database.engine.connect() as connection:
        left = connection.execute(
            text("SELECT count(*) FROM roster_changes WHERE tenant_id = :t"),
            {"t": district.tenant_id},
        ).scalar_one()
    assert left <= 257 and state[1] is not None, (left, state)
