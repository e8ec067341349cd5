"""The lookups identity providers make before every write walk an index, never the table.

Entra ID and Okta look a user up by ``userName`` or ``externalId`` before creating or
changing it (REFERENCES.md: Okta "searches userName eq before creating"; Entra matches on
externalId). Issue 15 measured ``externalId eq`` at a quarter of ``userName eq`` on SQLite: the
planner, without statistics (a fresh database never ran ANALYZE), walked every user of the
tenant. The plan is read with ``EXPLAIN QUERY PLAN`` on the very statement the request ran.
"""

from __future__ import annotations

import pytest

from server.db.session import Database
from tests.scim.helpers import IdP, executed

# EXPLAIN QUERY PLAN is SQLite's; PostgreSQL plans by its statistics
pytestmark = [pytest.mark.usefixtures("district"), pytest.mark.sqlite_only]


def _plan(database: Database, statement: str, parameters: object) -> str:
    with database.engine.connect() as connection:
        cursor = connection.connection.cursor()
        rows = cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
    return " / ".join(str(row[-1]) for row in rows)


def _lookup_plan(idp: IdP, database: Database, scim_filter: str, column: str) -> str:
    for number in range(3):
        idp.create_user(f"pupil{number}@school.example", externalId=f"sis-{number}")
    with executed(database) as seen:
        found = idp.get("/Users", params={"filter": scim_filter})
    assert found.status_code == 200 and found.json()["totalResults"] == 1
    statement, parameters = next(
        (s, p) for s, p in seen if f"users.{column} = ?" in s and "count(" not in s
    )
    return _plan(database, statement, parameters)


@pytest.mark.parametrize(
    ("scim_filter", "column"),
    [
        ('externalId eq "SIS-1"', "external_id_folded"),
        ('userName eq "Pupil1@school.example"', "username_folded"),
    ],
)
def test_an_identifier_lookup_searches_an_index_on_its_column(
    idp: IdP, database: Database, scim_filter: str, column: str
) -> None:
    plan = _lookup_plan(idp, database, scim_filter, column)
    assert "SCAN users" not in plan
    assert f"{column}=?" in plan, plan
