"""A second Rollcall on 127.0.0.1 playing a district's OpenID Connect provider (issue 17).

It has its own SQLite database, the student Milhouse, and a client registered with the one
callback of the Rollcall under test (the issuer of ``tests/oidc/conftest.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from server import districts
from server.app import create_app
from server.config import Settings
from server.db.migrate import upgrade
from server.db.session import Database
from server.domain import credentials, oauth, upstream_signin
from server.domain.actors import connection_actor, system_actor
from server.domain.secrets import SecretBox
from server.domain.tenants import create_tenant
from tests.conftest import TEST_SECRET
from tests.live import bound_socket, serving, url_of
from tests.oidc.conftest import ISSUER, fill_sign_in

CALLBACK = ISSUER + "/login/upstream/callback"
UPSTREAM_SECRET = "upstream-secret-key-for-tests"
MILHOUSE_PASSWORD = "thrillho rules the school"


class KeySwap:
    """ASGI wrapper: while ``on``, the upstream publishes a foreign JWKS with the same kids,
    so its ID tokens no longer verify (a key swapped or a forged issuer); paths in ``down``
    answer 503 with a plain-text body, like a provider behind a failing load balancer."""

    def __init__(self, app) -> None:
        self.app = app
        self.on = False
        self.down: set[str] = set()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] in self.down:
            headers = [(b"content-type", b"text/plain")]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": b"Service Unavailable"})
            return
        if not (self.on and scope["type"] == "http" and scope["path"] == "/oauth/jwks"):
            await self.app(scope, receive, send)
            return
        real = await self._real_jwks(scope)
        forged = []
        for key in real["keys"]:
            other = RSAKey.generate_key(2048, parameters={"kid": key["kid"]}).as_dict(private=False)
            forged.append({**other, "alg": key.get("alg", "RS256"), "use": "sig"})
        body = json.dumps({"keys": forged}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _real_jwks(self, scope) -> dict:
        parts: list[bytes] = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def collect(message):
            if message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        await self.app(scope, receive, collect)
        return json.loads(b"".join(parts))


@dataclass
class Upstream:
    url: str
    database: Database
    tenant_id: str
    client_id: str
    client_secret: str
    milhouse_id: str
    keys: KeySwap


@pytest.fixture(name="upstream")
def upstream_fixture(tmp_path: Path) -> Iterator[Upstream]:
    """A second Rollcall on loopback: the district's provider with Milhouse and our client."""
    sock = bound_socket()
    url = url_of(sock)
    database_url = f"sqlite:///{tmp_path / 'upstream.sqlite3'}"
    database = Database(database_url)
    upgrade(database.engine)
    settings = Settings(
        data_dir=tmp_path, database_url=database_url, secret_key=UPSTREAM_SECRET, issuer=url
    )
    with database.session() as session:
        tenant = create_tenant(session, "Springfield at Clever")
        actor = system_actor(tenant.id, "clever")
        school = districts.school(session, actor)
        milhouse = districts.student(
            session, actor, school, "Milhouse", "Van Houten", username="milhouse"
        )
        credentials.set_password(
            session,
            actor,
            milhouse,
            MILHOUSE_PASSWORD,
            temporary=False,
            box=SecretBox(UPSTREAM_SECRET),
        )
        client = oauth.create_client(session, actor, "Rollcall", redirect_uris=[CALLBACK])
        found = (tenant.id, client.client.client_id, client.secret, milhouse.id)
    keys = KeySwap(create_app(settings, database=database))
    with serving(keys, sock) as base:
        yield Upstream(base, database, found[0], found[1], found[2], found[3], keys)
    database.dispose()


@dataclass
class Broker:
    connection_id: str
    twin_id: str


def provision_twin(
    database,
    box,
    district,
    upstream: Upstream,
    *,
    configure: bool = True,
    twin: dict | None = None,
    **extra,
) -> Broker:
    """The SSO connection Clever, its twin of Milhouse (externalId = upstream sub), its upstream.

    ``twin`` overrides fields of the twin; ``extra`` goes to the upstream configuration.
    """
    fields = {"username": "mvanhouten", "external_id": upstream.milhouse_id, **(twin or {})}
    with database.session() as session:
        actor = system_actor(district.tenant_id, "test")
        clever = districts.sso_connection(session, actor, "Clever")
        school = districts.school(session, actor, "Clever School")
        user = districts.student(
            session, connection_actor(clever), school, "Milhouse", "Van Houten", **fields
        )
        if not configure:
            return Broker(clever.id, user.id)
        upstream_signin.set_upstream_provider(
            session,
            actor,
            clever,
            box=upstream_signin.box_for(box_key()),
            issuer=upstream.url,
            client_id=upstream.client_id,
            client_secret=upstream.client_secret,
            **extra,
        )
        return Broker(clever.id, user.id)


def box_key() -> str:
    return TEST_SECRET


def sign_in_at_clever(page: Any, upstream: Upstream) -> None:
    """From Rollcall's sign-in page: "Sign in with Clever", then Milhouse signs in there."""
    page.get_by_role("link", name="Sign in with Clever").click()
    page.wait_for_url(upstream.url + "/login**")
    fill_sign_in(page, "milhouse", MILHOUSE_PASSWORD)
