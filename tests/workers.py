"""A PostgreSQL database of its own for each pytest-xdist worker.

``make test`` runs the suite in parallel (``-n auto``). On SQLite each worker already has its own
files (pytest's temporary root is per worker); on PostgreSQL every worker would share the one
database of ``ROLLCALL_TEST_DATABASE_URL`` and truncate the others' rows. Before any test runs,
each worker creates ``<database>_<worker id>`` next to it and points the variable there, so the
fixtures, the live servers and the subprocesses a test starts all use the worker's own database.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from server.config import normalise_database_url

VARIABLE = "ROLLCALL_TEST_DATABASE_URL"


def pytest_configure(config: pytest.Config) -> None:
    worker = getattr(config, "workerinput", {}).get("workerid")
    url = os.environ.get(VARIABLE)
    if worker and url and url.startswith("postgres"):
        os.environ[VARIABLE] = own_database(normalise_database_url(url), worker)


def own_database(url: str, worker: str) -> str:
    """Create (afresh) the worker's database beside ``url``'s and return its URL."""
    shared = make_url(url)
    name = f"{shared.database}_{worker}"
    engine = create_engine(shared, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return shared.set(database=name).render_as_string(hide_password=False)
