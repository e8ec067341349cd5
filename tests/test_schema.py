"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from server.db import Base
from server.db.migrate import upgrade


def test_migrations_match_the_models(database):
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_upgrade_is_idempotent(database):
    upgrade(database.engine)
    upgrade(database.engine)


@pytest.mark.sqlite_only
def test_sqlite_runs_in_wal_mode_with_foreign_keys(database):
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.mark.postgres_only
def test_postgres_only_tests_run_against_postgresql_alone(database):
    """The marker works: on SQLite this is skipped with the reason, never run."""
    assert database.engine.dialect.name == "postgresql"
