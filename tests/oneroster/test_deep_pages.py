"""A school-limited reading client pages through users at the cost of a district-wide one.

Issue 15 measured deep pages (offset 99,900 of 100,000 users) for school-limited clients at
0.3 to 0.9 s: the school limit was a correlated subquery per user, run for every user the page
walks past (and for every user the total counts). The limit is now one set of the schools'
users, gathered once per statement. Read from SQLite's ``EXPLAIN QUERY PLAN`` of the very
statement the request ran; timing lives in ``bench/oneroster.py``.
"""

from __future__ import annotations

import pytest

from server import districts
from server.db import Org
from server.domain import roster_reads
from server.domain.actors import system_actor
from tests.oneroster.conftest import V1P2, bearer
from tests.scim.helpers import executed


def _page_plan(api, database, token: str) -> tuple[list[str], str]:
    with executed(database) as seen:
        page = api.get(f"{V1P2}/users", params={"limit": 2, "offset": 3}, headers=bearer(token))
    assert page.status_code == 200, page.text
    statement, parameters = next(
        (s, p) for s, p in seen if s.startswith("SELECT users.id") and "ORDER BY" in s
    )  # the page's walk; a school-limited client's first one gathers its order
    with database.engine.connect() as connection:
        cursor = connection.connection.cursor()
        plan = cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
    return [u["sourcedId"] for u in page.json()["users"]], " / ".join(r[-1] for r in plan)


@pytest.mark.sqlite_only  # EXPLAIN QUERY PLAN is SQLite's
def test_a_school_limited_page_adds_no_per_user_subquery(api, database, reader) -> None:
    _, district_plan = _page_plan(api, database, reader())
    users, school_plan = _page_plan(api, database, reader(schools=["north"]))
    assert users and all(not sid.startswith("south") for sid in users), users
    assert school_plan.count("CORRELATED") == district_plan.count("CORRELATED"), school_plan


def _work(database, seen) -> int:
    """What the database does re-running the SELECTs a request ran: SQLite's virtual-machine
    steps, PostgreSQL's actual rows of every plan node (``EXPLAIN ANALYZE``). The roster
    state's read is left out: on PostgreSQL it walks the tenant's unfolded change rows, which
    grow with writes, not with the district, up to 256 (``test_kept_totals.py``)."""
    selects = [
        (s, p)
        for s, p in seen
        if s.lstrip().upper().startswith("SELECT") and "roster_versions" not in s
    ]
    with database.engine.connect() as connection:
        raw = connection.connection.driver_connection
        if database.engine.dialect.name == "sqlite":
            steps = [0]

            def step() -> int:
                steps[0] += 1
                return 0

            raw.set_progress_handler(step, 1)
            try:
                for statement, parameters in selects:
                    raw.execute(statement, parameters).fetchall()
            finally:
                raw.set_progress_handler(None, 1)
            return steps[0]
        total = 0
        with raw.cursor() as cursor:
            for statement, parameters in selects:
                cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters)
                total += _plan_rows(cursor.fetchone()[0][0]["Plan"])
        return total


def _plan_rows(node: dict) -> int:
    rows = int(node["Actual Rows"] * node["Actual Loops"])
    return rows + sum(_plan_rows(child) for child in node.get("Plans", ()))


def _repeated_page_work(api, database, token: str, offset: int) -> int:
    params = {"limit": 2, "offset": offset}
    first = api.get(f"{V1P2}/users", params=params, headers=bearer(token))
    assert first.status_code == 200, first.text
    with executed(database) as seen:
        again = api.get(f"{V1P2}/users", params=params, headers=bearer(token))
    assert again.json() == first.json()
    return _work(database, seen)


def test_a_one_school_page_costs_the_same_however_large_the_district(
    api, database, district, reader
) -> None:
    """Issue 15: a one-school client's page cost 1.6x from 1,000 to 100,000 users (51.5 to
    81.7 ms, ``bench/oneroster.py``): each page gathered the school's users and walked the
    district's in sourcedId order to find them. Once the roster state is kept, the same page
    reads no more after the district (and the school) grew eightfold."""
    south = reader(schools=["south"])
    before = [_repeated_page_work(api, database, south, offset) for offset in (0, 8)]
    with database.session() as session:
        system = system_actor(district.tenant_id, "test")
        for school_id in (district.north_id, district.south_id):
            school = session.get(Org, school_id)
            for n in range(100):  # interleaved with the other school's in sourcedId order
                sid = f"grown-{n:03}-{school.sourced_id}"
                districts.student(session, system, school, f"G{n}", "Grown", sourced_id=sid)
    after = [_repeated_page_work(api, database, south, offset) for offset in (0, 8)]
    assert all(a <= b * 1.25 for a, b in zip(after, before, strict=True)), (before, after)


def test_the_kept_orders_stay_within_their_memory_budget(api, reader, monkeypatch) -> None:
    """A kept order holds up to ``PROBE_ABOVE`` ids per client and filter: the process keeps
    at most ``KEPT_IDS`` of them, dropping the least recently used, and pages stay right."""
    monkeypatch.setattr(roster_reads, "KEPT_IDS", 15)
    pages: dict[str, list[list[str]]] = {}
    for _ in range(2):
        for school in ("north", "south"):
            token = reader(schools=[school])
            for offset in (0, 4, 8):
                answer = api.get(
                    f"{V1P2}/users", params={"limit": 4, "offset": offset}, headers=bearer(token)
                )
                users = [u["sourcedId"] for u in answer.json()["users"]]
                assert users and all(sid.startswith(school) for sid in users), users
                pages.setdefault(school, []).append(users)
            kept = sum(entry.ids for entry in roster_reads._kept.values())
            assert kept <= 15, kept
    assert all(p[:3] == p[3:] for p in pages.values()), pages
