"""A live Rollcall on 127.0.0.1 serving the demo district, and readers' tokens for it."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from sqlalchemy import create_engine, text

from server.app import create_app
from server.config import Settings, normalise_database_url
from server.db import AcademicSession, Org, SchoolClass
from server.db.migrate import upgrade
from server.db.session import Database
from server.demo import seed
from server.domain import oauth, roster, roster_views, users
from server.domain.actors import system_actor
from server.domain.secrets import SecretBox
from server.domain.tenants import get_tenant
from tests.live import serving

SCHEMAS = Path(__file__).parent / "schemas"
PG_SCHEMA = "conformance_oneroster"
PREFIXES = {"v1p1": "/ims/oneroster/v1p1", "v1p2": "/ims/oneroster/rostering/v1p2"}
SCOPES = [
    f"https://purl.imsglobal.org/spec/or/{version}/scope/{name}"
    for version in ("v1p1", "v1p2")
    for name in ("roster.readonly", "roster-core.readonly", "roster-demographics.readonly")
]


@dataclass(frozen=True)
class LiveServer:
    url: str
    token: str
    core_token: str
    client_id: str
    client_secret: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def _database_url(data_dir: Path) -> str:
    """A SQLite file, or (when the suite runs on PostgreSQL) a fresh schema of its own in the
    test database, so the live server's data never meets the tests' truncations."""
    url = os.environ.get("ROLLCALL_TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{data_dir / 'rollcall.sqlite3'}"
    url = normalise_database_url(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
    engine.dispose()
    return url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{PG_SCHEMA}"


def _prepare(database: Database) -> tuple[str, str, str, str]:
    """The demo district plus what it lacks for a full walk: a grading period, a leaver, a
    deleted user and demographics; and two readers (every scope, core only), with a token
    each and the first one's client credentials for clients that fetch their own token."""
    with database.session() as session:
        seed(session, SecretBox("conformance"))
        tenant = get_tenant(session)
        system = system_actor(tenant.id)
        term = roster_views.find_by_sourced_id(
            session, AcademicSession, tenant.id, "term-fall-2026"
        )
        roster.create_academic_session(
            session,
            system,
            {
                "title": "Fall Q1",
                "type": "gradingPeriod",
                "school_year": "2027",
                "parent_id": term.id,
                "sourced_id": "gp-fall-q1",
                "start_date": "2026-08-24",
                "end_date": "2026-10-16",
            },
        )
        maple = "student-school-maple-{}"
        leaver = users.find_by_sourced_id(session, tenant.id, maple.format(1))
        users.deactivate_user(session, system, leaver)
        gone = users.find_by_sourced_id(session, tenant.id, maple.format(2))
        users.delete_user(session, system, gone)
        flagged = users.find_by_sourced_id(session, tenant.id, maple.format(3))
        users.update_user(
            session,
            system,
            flagged,
            {
                "gender": "F",
                "ethnicity": "white",
                "demographic_flags": {"hispanicOrLatinoEthnicity": True, "cityOfBirth": "Leeds"},
            },
        )
        _add_classroom_aide(session, system, tenant.id)
        # pushed without a role or school (issue 10 point 4): served by neither version
        users.create_user(
            session,
            system,
            {"sourced_id": "incomplete-1", "given_name": "No", "family_name": "Role"},
        )
        tokens, credentials = [], []
        for name, scopes in (("everything", SCOPES), ("core", [SCOPES[1], SCOPES[4]])):
            new = oauth.create_client(session, system, name, kind="api", scopes=scopes)
            token = secrets.token_urlsafe(24)
            oauth.store_token(session, new.client, token, " ".join(scopes))
            tokens.append(token)
            credentials.append((new.client.client_id, new.secret))
        return tokens[0], tokens[1], *credentials[0]


def _add_classroom_aide(session, system, tenant_id: str) -> None:
    """An aide in a class, as a 1.1 source stores one (enrollment role ``aide``, which the
    1.2 enrollment vocabulary lacks: see ``oneroster/render.py``)."""
    cedar = roster_views.find_by_sourced_id(session, Org, tenant_id, "school-cedar")
    klass = roster_views.find_by_sourced_id(session, SchoolClass, tenant_id, "class-school-cedar-1")
    aide = users.create_user(
        session,
        system,
        {
            "sourced_id": "aide-school-cedar-1",
            "given_name": "Alex",
            "family_name": "Helper",
            "roles": [users.RoleAssignment(cedar.id, "aide")],
        },
    )
    roster.enroll(session, system, aide, klass, role="aide", sourced_id="enrollment-aide-1")


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("oneroster-live")
    url = _database_url(data_dir)
    database = Database(url)
    upgrade(database.engine)
    token, core_token, client_id, client_secret = _prepare(database)
    settings = Settings(data_dir=data_dir, database_url=url, secret_key="conformance")
    with serving(create_app(settings, database=database)) as base:
        yield LiveServer(base, token, core_token, client_id, client_secret)
    database.dispose()


def _load_schemas() -> dict[str, Draft202012Validator]:
    documents = {path: json.loads(path.read_text()) for path in SCHEMAS.rglob("*.json")}
    registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in documents.values()
    )
    validators = {}
    for path, doc in documents.items():
        Draft202012Validator.check_schema(doc)
        key = str(path.relative_to(SCHEMAS).with_suffix(""))
        validators[key] = Draft202012Validator(doc, registry=registry)
    return validators


@pytest.fixture(scope="session")
def schemas() -> dict[str, Draft202012Validator]:
    """Validators keyed ``v1p2/user``, ``v1p1/class``…, and ``imsx_StatusInfo``."""
    return _load_schemas()
