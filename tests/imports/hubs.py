"""The district hubs the pull tests pull from: a second Rollcall serving the demo district
(``hub``), and ``FakeHub``, a tiny OneRoster API that is busy, slow or malformed on request.

``connect`` gives a tenant of the test database a "District hub" connection pulling from
one; ``here`` is that tenant for the ``hub``; ``one_1p1_school`` is what a OneRoster 1.1 hub
serves. ``tests/ops`` uses them too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.app import create_app
from server.config import Settings
from server.context import AppContext
from server.db import RecordStatus
from server.db.migrate import upgrade
from server.db.session import Database
from server.demo import DemoCredentials, seed
from server.domain import oauth, oauth1, users
from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.secrets import SecretBox
from server.domain.sources import set_upstream
from server.domain.tenants import create_tenant, get_tenant
from server.imports.engine import ImportOptions
from server.imports.pull import RetryPolicy, pull, upstream_box
from tests.live import serving

V1P2 = "/ims/oneroster/rostering/v1p2"
V1P1 = "/ims/oneroster/v1p1"
HUB_SECRET = "hub-secret-key"
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=2, total_wait=5, timeout=5)


@dataclass
class Hub:
    url: str
    database: Database
    demo: DemoCredentials
    tenant_id: str

    def active(self, model, **where) -> set[str]:
        with self.database.session() as session:
            query = select(model.sourced_id).where(
                model.tenant_id == self.tenant_id, model.status == RecordStatus.ACTIVE
            )
            for name, value in where.items():
                query = query.where(getattr(model, name) == value)
            return set(session.scalars(query))

    def rename(self, sourced_id: str, given_name: str) -> None:
        with self.database.session() as session:
            user = users.find_by_sourced_id(session, self.tenant_id, sourced_id)
            users.update_user(
                session, system_actor(self.tenant_id, "hub admin"), user,
                {"given_name": given_name}, override=True,
            )  # fmt: skip

    def consumer_secret(self) -> str:
        """An OAuth 1.0a consumer secret for the demo API client (``rollcall oneroster-oauth1``)."""
        with self.database.session() as session:
            client = oauth.find_client(session, self.demo.oneroster_client_id)
            return oauth1.issue_consumer_secret(
                session,
                system_actor(self.tenant_id, "hub admin"),
                client,
                oauth1.consumer_box(HUB_SECRET),
            )

    def deactivate(self, *sourced_ids: str) -> None:
        with self.database.session() as session:
            actor = system_actor(self.tenant_id, "hub admin")
            for sourced_id in sourced_ids:
                user = users.find_by_sourced_id(session, self.tenant_id, sourced_id)
                users.deactivate_user(session, actor, user, override=True)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    """A second Rollcall, with its own database, serving the demo district on loopback."""
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    database = Database(url)
    upgrade(database.engine)
    settings = Settings(data_dir=tmp_path, database_url=url, secret_key=HUB_SECRET)
    with database.session() as session:
        demo = seed(session, SecretBox(HUB_SECRET))
        tenant_id = get_tenant(session, demo.tenant).id
    with serving(create_app(settings, database=database)) as base:
        yield Hub(base, database, demo, tenant_id)
    database.dispose()


@dataclass
class Here:
    context: AppContext
    tenant_id: str

    def sync(self, **options):
        report = pull(
            self.context, self.tenant_id, "District hub", ImportOptions(**options), policy=FAST
        )
        report.as_dict()
        return report

    def active(self, model) -> set[str]:
        with self.context.database.session() as session:
            return set(
                session.scalars(
                    select(model.sourced_id).where(
                        model.tenant_id == self.tenant_id, model.status == RecordStatus.ACTIVE
                    )
                )
            )


def connect(
    context: AppContext,
    base: str,
    client_id: str,
    secret: str,
    *,
    path: str = V1P2,
    token_url: str | None = "/oauth/token",
    **extra,
) -> Here:
    """A new tenant with a "District hub" connection pulling from the API at ``base``."""
    with context.database.session() as session:
        tenant = create_tenant(session, "Pulled District")
        actor = system_actor(tenant.id, "test")
        issued = create_connection(session, actor, "District hub", "oneroster_rest")
        set_upstream(
            session,
            actor,
            issued.connection,
            box=upstream_box(context),
            base_url=f"{base}{path}",
            token_url=f"{base}{token_url}" if token_url else None,
            client_id=client_id,
            client_secret=secret,
            **extra,
        )
        tenant_id = tenant.id
    return Here(context, tenant_id)


@pytest.fixture
def here(context: AppContext, hub: Hub) -> Here:
    return connect(context, hub.url, hub.demo.oneroster_client_id, hub.demo.oneroster_client_secret)


class FakeHub:
    """A tiny OneRoster API that answers 429 (then 503) before serving one page of users."""

    def __init__(self) -> None:
        self.user_calls = 0
        self.always_busy = False
        self.nested_users = False  # answer users with JSON nested 100,000 deep
        self.page_seconds = 0.0  # how long each page takes to answer (a slow hub)
        self.walks = 0  # walks begun (each walk reads orgs first, once: server/imports/pull.py)
        self.first_page_at: float | None = None  # time.monotonic() as the first page was asked
        self.last_page_at: float | None = None  # ... and as the latest page was answered

    def app(self) -> Starlette:
        async def token(request: Request) -> JSONResponse:
            return JSONResponse({"access_token": "t", "token_type": "Bearer", "expires_in": 60})

        async def listing(request: Request) -> JSONResponse:
            name = request.path_params["collection"]
            self.walks += name == "orgs"
            self.first_page_at = self.first_page_at or time.monotonic()
            await asyncio.sleep(self.page_seconds)
            self.last_page_at = time.monotonic()
            if name == "users" and self.nested_users:
                deep = '{"users": ' + "[" * 100_000 + "]" * 100_000 + "}"
                return Response(deep, media_type="application/json")
            if name == "users":
                self.user_calls += 1
                if self.user_calls == 1 or self.always_busy:
                    return JSONResponse({}, status_code=429, headers={"Retry-After": "1"})
                if self.user_calls == 2:
                    return JSONResponse({}, status_code=503)
                body = [
                    {
                        "sourcedId": "u1",
                        "status": "active",
                        "enabledUser": "true",
                        "username": "ava.adams",
                        "givenName": "Ava",
                        "familyName": "Adams",
                        "roles": [
                            {"roleType": "primary", "role": "student", "org": {"sourcedId": "s"}}
                        ],
                        "primaryOrg": {"sourcedId": "s"},
                        "grades": ["03"],
                    }
                ]
            elif name == "orgs":
                body = [{"sourcedId": "s", "status": "active", "name": "School", "type": "school"}]
            else:
                body = []
            return JSONResponse({name: body}, headers={"X-Total-Count": str(len(body))})

        return Starlette(
            routes=[
                Route("/token", token, methods=["POST"]),
                Route(V1P2 + "/{collection}", listing),
            ]
        )


def one_1p1_school() -> dict[str, list[dict]]:
    """OneRoster 1.1 REST shapes as 1.1 hubs send them (1.1 REST binding: a user's ``role`` and
    ``orgs[]``; booleans as strings, in whatever case; ``status`` may be ``inactive``). A class
    names its course and terms (both required by the 1.1 class model)."""
    school = {"sourcedId": "s1", "type": "org"}
    user = {"status": "active", "orgs": [school], "grades": ["04"], "enabledUser": "TRUE"}
    return {
        "orgs": [{"sourcedId": "s1", "status": "active", "name": "Lincoln", "type": "school"}],
        "academicSessions": [
            {"sourcedId": "t1", "status": "active", "title": "Fall", "type": "term",
             "startDate": "2026-09-01", "endDate": "2027-01-31", "schoolYear": "2027"}
        ],
        "courses": [
            {"sourcedId": "c1", "status": "active", "title": "Grade 4", "org": school}
        ],
        "classes": [
            {
                "sourcedId": "k1", "status": "active", "title": "4B", "classType": "homeroom",
                "school": school, "course": {"sourcedId": "c1", "type": "course"},
                "terms": [{"sourcedId": "t1", "type": "academicSession"}],
            }
        ],
        "users": [
            {**user, "sourcedId": "u1", "role": "student", "username": "ava",
             "givenName": "Ava", "familyName": "Adams"},
            {**user, "sourcedId": "u2", "role": "teacher", "username": "bo", "givenName": "Bo",
             "familyName": "Berg", "enabledUser": "True"},
            {**user, "sourcedId": "u3", "role": "student", "username": "cy", "status": "inactive",
             "givenName": "Cy", "familyName": "Cole"},
            {**user, "sourcedId": "u4", "role": "aide", "username": "di", "givenName": "Di",
             "familyName": "Dale"},
        ],
        "enrollments": [
            {"sourcedId": "e1", "status": "active", "role": "student", "primary": "FALSE",
             "user": {"sourcedId": "u1"}, "class": {"sourcedId": "k1"}, "school": school},
            {"sourcedId": "e2", "status": "active", "role": "teacher", "primary": "TRUE",
             "user": {"sourcedId": "u2"}, "class": {"sourcedId": "k1"}, "school": school},
            # 1.1's aide (its enrollment vocabulary has it; 1.2's has not)
            {"sourcedId": "e3", "status": "active", "role": "aide", "primary": "false",
             "user": {"sourcedId": "u4"}, "class": {"sourcedId": "k1"}, "school": school},
        ],
    }  # fmt: skip
