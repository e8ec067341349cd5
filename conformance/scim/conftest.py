"""A live Rollcall on 127.0.0.1 (``tests.live.serving``, fresh SQLite) with a SCIM connection."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from server.app import create_app
from server.config import Settings
from server.db.migrate import upgrade
from server.db.session import Database
from server.domain import connections, roster
from server.domain.actors import system_actor
from server.domain.tenants import create_tenant
from tests.live import serving
from tests.scim.helpers import keep_every_attribute


@dataclass(frozen=True)
class LiveScim:
    url: str
    token: str  # the strict profile's connection
    tokens: dict[str, str]  # more connections: one per IdP profile ("entra", "okta"), "filters"


@pytest.fixture(scope="package")
def live_scim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveScim]:
    data_dir: Path = tmp_path_factory.mktemp("scim-conformance")
    url = f"sqlite:///{data_dir / 'rollcall.sqlite3'}"
    database = Database(url)
    upgrade(database.engine)
    with database.session() as session:
        tenant = create_tenant(session, "Conformance District")
        # the protocol checks filter and sort on any attribute: keep them all (the strict default
        # is what test_empty_tenant.py runs scim2-tester against)
        keep_every_attribute(session, tenant.id)
        system = system_actor(tenant.id, "conformance")
        roster.create_org(session, system, {"name": "Conformance High", "sourced_id": "sch-1"})
        roster.create_course(session, system, {"title": "Algebra", "sourced_id": "crs-1"})
        roster.create_academic_session(
            session, system, {"title": "Fall", "type": "term", "sourced_id": "term-1"}
        )
        token = connections.create_connection(session, system, "scim2-tester", "scim").token
        tokens = {
            name: connections.create_connection(
                session, system, f"{name} replay", "scim", profile=profile
            ).token
            for name, profile in (("entra", "entra"), ("okta", "okta"), ("filters", None))
        }
    settings = Settings(data_dir=data_dir, database_url=url, secret_key="conformance-" + "k" * 32)
    try:
        with serving(create_app(settings, database=database)) as base_url:
            yield LiveScim(f"{base_url}/scim/v2", token, tokens)
    finally:
        database.dispose()
