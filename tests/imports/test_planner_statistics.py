"""A long import on PostgreSQL refreshes the planner's statistics of the tables it fills
(``server.db.statistics``, issue 15).

Without it, a district's first import planned each batch's reads from statistics of empty
tables: 2,000 users cost 8 of 11 s of the database's CPU reading back enrollments, and the
cost grew with the square of the district. The tests fake statistics that describe empty
tables (a fresh database's, committed: the import runs in transactions of its own) and count
the ``ANALYZE`` runs PostgreSQL records (``pg_stat_user_tables.analyze_count``: an ANALYZE
asked for, not autovacuum's, which counts apart)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Connection, text

from server.db import statistics
from tests.imports.packages import district, package
from tests.imports.planner import fake_statistics

FILLED = ("enrollments", "users")


def _analyses(connection: Connection) -> dict[str, int]:
    connection.execute(text("SELECT pg_stat_clear_snapshot()"))
    rows = connection.execute(
        text(
            "SELECT relname, analyze_count FROM pg_stat_user_tables"
            " WHERE schemaname = current_schema() AND relname = ANY(:t)"  # not conformance's
        ),
        {"t": list(FILLED)},
    )
    return dict(rows.all())


@pytest.mark.postgres_only
def test_a_first_import_analyses_the_tables_it_fills(tenancy, tmp_path) -> None:
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=1500))
    with tenancy.database.engine.begin() as connection:
        fake_statistics(connection, FILLED, tuples=-1, pages=0)  # empty, never analysed
    with tenancy.database.engine.connect() as connection:
        before = _analyses(connection)
    assert tenancy.run(path).status == "applied"
    with tenancy.database.engine.connect() as connection:
        after = _analyses(connection)
        described = dict(
            connection.execute(
                text(
                    "SELECT relname, reltuples FROM pg_class WHERE relname = ANY(:t)"
                    " AND relnamespace = CAST(current_schema() AS regnamespace)"
                ),
                {"t": list(FILLED)},
            ).all()
        )
    assert all(after[table] > before.get(table, 0) for table in FILLED), (before, after)
    assert described["users"] >= 1000  # what the import's own rows made them


@pytest.mark.postgres_only
def test_an_import_goes_on_when_another_transaction_is_analysing_its_tables(
    tenancy, tmp_path
) -> None:
    """Another import's ANALYZE holds its lock until that import commits: this one does not
    wait for it (it would for as long), it keeps the statistics it has."""
    path = package(tmp_path / "district.zip", "1.1", district("1.1", students=1500))
    with tenancy.database.engine.begin() as connection:
        fake_statistics(connection, FILLED, tuples=-1, pages=0)  # empty, never analysed
    holder = tenancy.database.engine.connect()
    try:
        holder.execute(text("ANALYZE enrollments"))  # the lock is held until rollback
        with tenancy.database.engine.connect() as connection:
            before = _analyses(connection)
        finished = threading.Event()
        result: list[str] = []

        def run() -> None:
            result.append(tenancy.run(path).status)
            finished.set()

        threading.Thread(target=run, daemon=True).start()
        assert finished.wait(120), "the import waited for the other transaction's ANALYZE"
        assert result == ["applied"]
        with tenancy.database.engine.connect() as connection:
            after = _analyses(connection)
        assert after["enrollments"] == before["enrollments"]  # left to the other transaction
        assert after["users"] > before["users"]
    finally:
        holder.rollback()
        holder.close()


def test_nothing_is_analysed_on_sqlite_or_when_statistics_are_current(database) -> None:
    with database.session() as session:
        analysed = statistics.refresh_stale(session)
        again = statistics.refresh_stale(session)
    assert again == []
    if database.engine.dialect.name == "sqlite":
        assert analysed == []


@pytest.mark.postgres_only
def test_an_analyse_that_meets_a_held_lock_gives_up_and_leaves_the_transaction_usable(
    database,
) -> None:
    """The race the lock check cannot close: the lock is taken between the check and the
    ANALYZE. The ANALYZE waits ``LOCK_WAIT`` at most, then the transaction goes on."""
    holder = database.engine.connect()
    try:
        holder.execute(text("ANALYZE enrollments"))
        with database.session() as session:
            kept = session.scalar(text("SELECT current_setting('lock_timeout')"))
            assert statistics._analysed(session, "enrollments") is False
            assert session.scalar(text("SELECT current_setting('lock_timeout')")) == kept
            assert statistics._analysed(session, "users") is True
    finally:
        holder.rollback()
        holder.close()
