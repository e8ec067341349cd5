"""Schema migrations: ``upgrade`` brings any database to the latest revision.

``rollcall serve`` calls it on start; it is safe to run from several processes at once on
PostgreSQL (an advisory lock serialises them) and on SQLite (the write lock does).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"
_ADVISORY_LOCK_KEY = 7_240_331


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration up to ``revision``."""
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Another process may be migrating: wait for it however long it takes (the
            # engine's lock_timeout is for requests, not for start-up).
            connection.execute(text("SET LOCAL lock_timeout = 0"))
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
            )
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


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
