"""Migration 0002_scim re-indexes the SCIM records indexed before the index held ``schemas``."""

from __future__ import annotations

from pathlib import Path

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
from tests.scim.helpers import ENTERPRISE, USER


def test_users_indexed_before_the_upgrade_are_found_by_schemas_after_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    database = Database(url)
    upgrade(database.engine, "0001")
    with database.session() as session:
        tenant = create_tenant(session, "Old Town")
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
        upgrade(database.engine)
        found = scim.get("/scim/v2/Users", params=query).json()
        assert [r["userName"] for r in found["Resources"]] == ["old.timer"]
    database.dispose()
