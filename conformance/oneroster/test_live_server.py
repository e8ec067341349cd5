"""The live server of these checks keeps its data apart from the tests' database.

On PostgreSQL it runs in a schema of its own in the test database (``conftest._database_url``
asks for it with the URL's ``options=-csearch_path=…``), so the tests' truncations never meet
its data and a second run of the suite on the same database starts clean.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, inspect

from conformance.oneroster.conftest import PG_SCHEMA, LiveServer
from server.config import normalise_database_url


def test_the_live_district_lives_in_its_own_schema(live: LiveServer):
    url = os.environ.get("ROLLCALL_TEST_DATABASE_URL")
    if not url:
        pytest.skip("on SQLite the live server has a database file of its own")
    engine = create_engine(normalise_database_url(url))
    try:
        tables = inspect(engine)
        assert "tenants" in tables.get_table_names(schema=PG_SCHEMA)
        with engine.connect() as connection:
            public = tables.get_table_names(schema="public")
            if "tenants" in public:
                names = connection.exec_driver_sql("SELECT name FROM public.tenants").scalars()
                assert "Demo District" not in set(names)
    finally:
        engine.dispose()
