"""Schema migrations: ``upgrade`` brings any database to the latest revision.

``rollcall serve`` calls it on start; it is safe to run from several processes at once on
PostgreSQL (an advisory lock serialises them) and on SQLite (the write lock does).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from server.errors import SchemaTooNew

MIGRATIONS = Path(__file__).parent / "migrations"
_ADVISORY_LOCK_KEY = 7_240_331


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration up to ``revision``.

    :raises SchemaTooNew: the database was migrated by a newer Rollcall (a revision this code
        does not know); nothing is changed.
    """
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Another process may be migrating: wait for it however long it takes (the
            # engine's lock_timeout is for requests, not for start-up).
            connection.execute(text("SET LOCAL lock_timeout = 0"))
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
            )
        check_known_revision(connection, config)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def check_known_revision(connection: Connection, config: Config) -> None:
    """Refuse a database whose schema revision is not one of this code's migrations."""
    scripts = ScriptDirectory.from_config(config)
    known = {script.revision for script in scripts.walk_revisions()}
    current = MigrationContext.configure(connection).get_current_heads()
    unknown = [rev for rev in current if rev not in known]
    if unknown:
        raise SchemaTooNew(", ".join(unknown), ", ".join(scripts.get_heads()))


def make_revision(engine: Engine, message: str) -> None:
    """Autogenerate a new revision from the models (a development tool)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


if __name__ == "__main__":
    import sys
    import tempfile

    from server.db.session import Database

    # Development: `python -m server.db.migrate "message"` writes a new revision from the models.
    with tempfile.TemporaryDirectory() as scratch:
        database = Database(f"sqlite:///{scratch}/scratch.sqlite3")
        upgrade(database.engine)
        make_revision(database.engine, " ".join(sys.argv[1:]) or "schema change")
