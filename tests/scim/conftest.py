"""Fixtures of the SCIM tests: a district with a school, and SCIM connections with tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from scim.context import current_actor, current_session
from server import districts
from server.app import create_app
from server.config import Settings
from server.db import Connection, Org
from server.db.session import Database
from server.domain import connections
from server.domain.actors import Actor, connection_actor, system_actor
from server.domain.tenants import create_tenant
from tests.scim.helpers import IdP, keep_every_attribute


@dataclass
class District:
    tenant_id: str
    school: Org
    connection: Connection
    token: str


def make_district(
    database: Database, profile: str | None = None, sso: str | None = None, *, keep_all=True
) -> District:
    """The district; ``keep_all`` keeps every SCIM attribute a provider sends (the protocol
    tests push any attribute), otherwise only those Rollcall uses."""
    with database.session() as session:
        tenant = create_tenant(session, "Springfield District")
        if keep_all:
            keep_every_attribute(session, tenant.id)
        system = system_actor(tenant.id, "test")
        school = districts.school(session, system, "Springfield Elementary", sourced_id="sch-1")
        issued = connections.create_connection(
            session, system, "Entra ID", "scim", profile=profile, sso_provider=sso
        )
        return District(tenant.id, school, issued.connection, issued.token)


@pytest.fixture
def district(database: Database) -> District:
    return make_district(database)


@pytest.fixture
def app(settings: Settings, database: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, database=database)) as client:
        yield client


@pytest.fixture
def idp(app: TestClient, district: District) -> IdP:
    """The district's SCIM connection (strict profile)."""
    return IdP(app, district.token)


def add_connection(
    database: Database,
    district: District,
    name: str,
    *,
    profile: str | None = None,
    sso: str | None = None,
    adopt_by: str | None = None,
) -> str:
    """Another SCIM connection of the district; returns its bearer token."""
    with database.session() as session:
        system = system_actor(district.tenant_id, "test")
        return connections.create_connection(
            session, system, name, "scim", profile=profile, sso_provider=sso, adopt_by=adopt_by
        ).token


@pytest.fixture
def acting(database: Database, district: District) -> Iterator[Actor]:
    """A unit of work with the district's SCIM connection acting (what a request sets up)."""
    with database.session() as session:
        connection = session.get(Connection, district.connection.id)
        assert connection is not None
        actor = connection_actor(connection)
        session_token = current_session.set(session)
        actor_token = current_actor.set(actor)
        try:
            yield actor
        finally:
            current_actor.reset(actor_token)
            current_session.reset(session_token)


def session_of() -> Session:
    return current_session.get()


@pytest.fixture(params=[None, "entra", "okta", "google"], ids=lambda p: p or "strict")
def profiled(
    request: pytest.FixtureRequest, app: TestClient, database: Database, district: District
) -> IdP:
    """A SCIM connection of the district on each tolerance profile in turn."""
    profile = request.param
    return IdP(app, add_connection(database, district, f"IdP {profile}", profile=profile))
