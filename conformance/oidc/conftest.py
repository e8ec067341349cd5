"""A live Rollcall on 127.0.0.1 (uvicorn in a thread) and a relying party that plays the
OpenID Foundation's Basic OP and Config OP test modules against it.

The relying party is Authlib's OAuth 2 client (``authlib.integrations.httpx_client``); the
"browser" is an httpx client that follows the sign-in page by scripted form posts.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet

from server import districts
from server.app import create_app
from server.domain import credentials, oauth
from server.domain.actors import system_actor
from server.domain.tenants import create_tenant
from tests.conftest import box, database, database_url, migrated_database, settings  # noqa: F401
from tests.live import bound_socket, serving, url_of

REDIRECT = "https://rp.example/callback"
LOGOUT_REDIRECT = "https://rp.example/logged-out"
USERNAME = "lisa"
PASSWORD = "correct horse battery"


@dataclass
class OP:
    """The provider under test and what the test plan registered at it."""

    issuer: str
    client_id: str
    client_secret: str
    public_client_id: str
    user_id: str

    def metadata(self) -> dict[str, Any]:
        return httpx.get(f"{self.issuer}/.well-known/openid-configuration").json()

    def key_set(self) -> KeySet:
        return KeySet.import_key_set(httpx.get(f"{self.issuer}/oauth/jwks").json())

    def rp(self, **options: Any) -> OAuth2Client:
        """Authlib's client registered as the confidential relying party."""
        options.setdefault("scope", "openid")
        return OAuth2Client(
            client_id=options.pop("client_id", self.client_id),
            client_secret=options.pop("client_secret", self.client_secret),
            redirect_uri=options.pop("redirect_uri", REDIRECT),
            **options,
        )

    def browser(self) -> Browser:
        return Browser(self.issuer)


class Browser:
    """A user agent with a cookie jar that signs in by filling the form."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.client = httpx.Client(base_url=issuer, follow_redirects=False, timeout=10)

    def open(self, url: str, method: str = "GET", data: dict[str, str] | None = None):
        return self.client.request(method, url, data=data)

    def sign_in(self, login_url: str, username: str = USERNAME, password: str = PASSWORD):
        page = self.client.get(login_url)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        next_path = parse_qs(urlsplit(login_url).query).get("next", [""])[0]
        return self.client.post(
            "/login",
            data={"username": username, "password": password, "csrf": csrf, "next": next_path},
        )

    def authorize(self, url: str, *, sign_in: bool = True, method: str = "GET", data=None) -> str:
        """Follow an authorization request to the redirect back to the RP; returns that URL."""
        response = self.open(url, method, data)
        for _ in range(6):
            location = response.headers.get("location", "")
            if response.status_code not in (302, 303):
                raise AssertionError(f"stopped at {response.status_code}: {response.text[:300]}")
            if location.startswith(REDIRECT) or location.startswith("https://"):
                return location
            if location.startswith("/login?") and sign_in:
                response = self.sign_in(location)
                continue
            if location.startswith("/login?"):
                return urljoin(self.issuer, location)
            response = self.client.get(location)
        raise AssertionError("too many redirects")


def callback_params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def new_nonce() -> str:
    return secrets.token_urlsafe(12)


def decode_id_token(op: OP, id_token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    token = jwt.decode(id_token, op.key_set(), algorithms=["RS256", "ES256"])
    return dict(token.header), dict(token.claims)


@pytest.fixture
def op(settings, database, box) -> Iterator[OP]:  # noqa: F811
    sock = bound_socket()
    issuer = url_of(sock)
    app = create_app(replace(settings, issuer=issuer), database=database)
    with database.session() as session:
        tenant = create_tenant(session, "Conformance District")
        actor = system_actor(tenant.id, "conformance")
        school = districts.school(session, actor)
        user = districts.student(
            session,
            actor,
            school,
            "Lisa",
            "Simpson",
            username=USERNAME,
            email="lisa@example.org",
            grades=["02"],
        )
        credentials.set_password(session, actor, user, PASSWORD, temporary=False, box=box)
        rp = oauth.create_client(
            session,
            actor,
            "Conformance RP",
            redirect_uris=[REDIRECT],
            post_logout_redirect_uris=[LOGOUT_REDIRECT],
        )
        public = oauth.create_client(
            session, actor, "Conformance native RP", redirect_uris=[REDIRECT], public=True
        )
        found = OP(issuer, rp.client.client_id, rp.secret, public.client.client_id, user.id)
    with serving(app, sock):
        yield found
