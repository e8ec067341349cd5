"""The read of stored enrollments an import diffs each batch against (``sync_hashes.
stored_enrollments``) reads the enrollments it names by key, whatever the planner believes of
the tables.

During a first import PostgreSQL's statistics lag the import's own transaction: no column
statistics yet (the tenant's rows look like 0.5% of a table they fill), tables that look empty
or "have one row" while they hold thousands, plans a prepared statement made while they were
empty. The enrollments named by an ``IN`` list were then read as every enrollment of the
tenant, filtered, once per batch or once per user (2,000 users: 8 of 11 s of the server's CPU;
issue 15). The test gives the planner such a belief (in a transaction rolled back), takes a
plan made for the keys or a generic one (what a prepared statement reuses), and counts the
enrollment rows the read fetched (``pg_stat_xact_user_tables``)."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session

from server.db import Enrollment
from server.domain import sync_hashes
from tests.imports.packages import district, package
from tests.imports.planner import fake_statistics

pytestmark = pytest.mark.postgres_only

STALE = ("users", "classes", "enrollments", "user_roles")
BELIEFS = {"one row": (1, 1), "never analyzed": (-1, 0)}  # pg_class: reltuples, relpages


def _enrollment_rows_read(connection: Connection) -> int:
    """Rows of ``enrollments`` fetched so far in this transaction, by any scan."""
    return connection.scalar(
        text(
            "SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables"
            " WHERE relname = 'enrollments'"
        )
    )


@pytest.mark.parametrize("plans", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("belief", BELIEFS)
def test_the_enrollments_named_are_read_by_key_on_stale_statistics(
    tenancy, tmp_path, belief: str, plans: str
) -> None:
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=600))
    assert tenancy.run(path).status == "applied"
    with tenancy.database.engine.connect() as connection:
        keys = connection.scalars(
            select(Enrollment.sourced_id)
            .where(Enrollment.tenant_id == tenancy.tenant_id)
            .order_by(Enrollment.sourced_id)
            .offset(200)
            .limit(100)
        ).all()
        connection.rollback()
        with Session(bind=connection) as session, connection.begin():
            fake_statistics(connection, STALE, *BELIEFS[belief])
            # a plan made for these keys, or one made once for any keys (a prepared statement)
            connection.execute(text(f"SET LOCAL plan_cache_mode = {plans}"))
            before = _enrollment_rows_read(connection)
            found, people, classes = sync_hashes.stored_enrollments(
                session, tenancy.tenant_id, list(keys)
            )
            read = _enrollment_rows_read(connection) - before
            connection.rollback()
    assert sorted(found) == sorted(keys)
    assert len(people) == len(keys) and len(classes) == 1  # a student each, one class
    assert read <= 2 * len(keys)
