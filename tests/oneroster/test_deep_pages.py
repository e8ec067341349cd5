"""A school-limited reading client pages through users at the cost of a district-wide one.

Issue 15 measured deep pages (offset 99,900 of 100,000 users) for school-limited clients at
0.3 to 0.9 s: the school limit was a correlated subquery per user, run for every user the page
walks past (and for every user the total counts). The limit is now one set of the schools'
users, gathered once per statement. Read from SQLite's ``EXPLAIN QUERY PLAN`` of the very
statement the request ran; timing lives in ``bench/oneroster.py``.
"""

from __future__ import annotations

import pytest

from tests.oneroster.conftest import V1P2, bearer
from tests.scim.helpers import executed


def _page_plan(api, database, token: str) -> tuple[list[str], str]:
    with executed(database) as seen:
        page = api.get(f"{V1P2}/users", params={"limit": 2, "offset": 3}, headers=bearer(token))
    assert page.status_code == 200, page.text
    statement, parameters = next(
        (s, p) for s, p in seen if s.startswith("SELECT users.id") and "OFFSET" in s
    )
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
