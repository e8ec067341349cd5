"""OneRoster CSV oracles run on the import tests' fixtures: a migrated database (SQLite, or
PostgreSQL from ``ROLLCALL_TEST_DATABASE_URL``) and a tenant with a ``SIS`` connection."""

from __future__ import annotations

from tests.conftest import box, database, database_url, migrated_database  # noqa: F401
from tests.imports.conftest import tenancy  # noqa: F401
