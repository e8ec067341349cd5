"""The SCIM re-index migration re-indexes the records indexed before the index held ``schemas``.

The migration runs on its own (through Alembic's ``Operations``) over a database at the newest
schema whose index was made to look as the previous release wrote it, so the test does not
depend on where the migration sits in the chain.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import delete
from starlette.testclient import TestClient

from server.app import create_app
from server.config import Settings
from server.db import ScimValue
from server.db.migrate import upgrade
from server.db.session import Database
from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.tenants import create_tenant
from tests.conftest import TEST_SECRET
from tests.scim.helpers import ENTERPRISE, USER, keep_every_attribute


def test_users_indexed_before_the_upgrade_are_found_by_schemas_after_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    database = Database(url)
    upgrade(database.engine)
    with database.session() as session:
        tenant = create_tenant(session, "Old Town")
        keep_every_attribute(session, tenant.id)
        token = create_connection(session, system_actor(tenant.id), "Entra ID", "scim").token
    settings = Settings(data_dir=tmp_path, database_url=url, secret_key=TEST_SECRET)
    headers = {"Authorization": f"Bearer {token}"}
    query = {"filter": f'schemas eq "{ENTERPRISE}"'}
    with TestClient(create_app(settings, database=database), headers=headers) as scim:
        body = {"schemas": [USER, ENTERPRISE], "userName": "old.timer", ENTERPRISE: {}}
        body[ENTERPRISE] = {"employeeNumber": "7"}
        assert scim.post("/scim/v2/Users", json=body).status_code == 201
        with database.session() as session:  # the index as the previous release wrote it
            session.execute(delete(ScimValue).where(ScimValue.path.like("%:user:schemas")))
        assert scim.get("/scim/v2/Users", params=query).json()["totalResults"] == 0
        _run_reindex_migration(database)
        found = scim.get("/scim/v2/Users", params=query).json()
        assert [r["userName"] for r in found["Resources"]] == ["old.timer"]
    database.dispose()


def _run_reindex_migration(database: Database) -> None:
    versions = Path(__file__).parents[2] / "server/db/migrations/versions"
    [path] = versions.glob("*_scim_reindex.py")
    spec = importlib.util.spec_from_file_location("scim_reindex", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with (
        database.engine.begin() as connection,
        Operations.context(MigrationContext.configure(connection)),
    ):
        migration.upgrade()
