"""Fixtures for the provider: the app under TestClient on the issuer's address, a school
with students, registered clients, and a relying party that signs in like a browser."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.testclient import TestClient

from server import districts
from server.app import create_app
from server.context import AppContext
from server.db import OAuthClientKind
from server.domain import credentials, oauth
from server.domain.actors import system_actor
from server.domain.tenants import create_tenant

ISSUER = "http://127.0.0.1:8000"
REDIRECT = "https://app.example/callback"
LOGOUT_REDIRECT = "https://app.example/bye"
PASSWORD = "correct horse battery"


@pytest.fixture
def issuer_settings(settings):
    from dataclasses import replace

    return replace(settings, issuer=ISSUER)


@pytest.fixture
def app_context(issuer_settings, database, box) -> AppContext:
    return AppContext(settings=issuer_settings, database=database, box=box)


@pytest.fixture
def http(app_context) -> Iterator[TestClient]:
    app = create_app(app_context.settings, database=app_context.database)
    with TestClient(app, base_url=ISSUER, follow_redirects=False) as client:
        yield client


@dataclass
class District:
    tenant_id: str
    client_id: str
    client_secret: str
    public_client_id: str
    api_client_id: str
    api_client_secret: str
    students: dict[str, Any]


@pytest.fixture
def district(database, box) -> District:
    """A district with a school, a class, two students and three clients."""
    with database.session() as session:
        tenant = create_tenant(session, "Springfield District")
        actor = system_actor(tenant.id, "test")
        school = districts.school(session, actor)
        klass = districts.klass(session, actor, school)
        from server.domain import roster

        permanent = districts.student(
            session,
            actor,
            school,
            "Lisa",
            "Simpson",
            username="lisa",
            email="lisa@example.org",
            grades=["02"],
        )
        credentials.set_password(session, actor, permanent, PASSWORD, temporary=False, box=box)
        roster.enroll(session, actor, permanent, klass)
        temporary = districts.student(session, actor, school, "Bart", "Simpson", username="bart")
        issued = credentials.issue_temporary_password(session, actor, temporary, box=box)
        rp = oauth.create_client(
            session,
            actor,
            "Reading App",
            redirect_uris=[REDIRECT],
            post_logout_redirect_uris=[LOGOUT_REDIRECT],
        )
        public = oauth.create_client(
            session, actor, "Phone App", redirect_uris=[REDIRECT], public=True
        )
        api = oauth.create_client(
            session,
            actor,
            "Gradebook",
            kind=OAuthClientKind.API,
            scopes=["https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly"],
        )
        return District(
            tenant_id=tenant.id,
            client_id=rp.client.client_id,
            client_secret=rp.secret,
            public_client_id=public.client.client_id,
            api_client_id=api.client.client_id,
            api_client_secret=api.secret,
            students={
                "lisa": {
                    "id": permanent.id,
                    "password": PASSWORD,
                    "class": klass.sourced_id,
                    "school": school.sourced_id,
                },
                "bart": {"id": temporary.id, "password": issued},
            },
        )


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def authorize_url(client_id: str, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid profile email roster",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        **extra,
    }
    params = {k: v for k, v in params.items() if v is not None}
    return "/oauth/authorize?" + urlencode(params)


def sign_in(http: TestClient, login_location: str, username: str, password: str):
    """Fill in the sign-in page the browser was sent to; returns the POST response."""
    page = http.get(login_location)
    assert page.status_code == 200, page.text
    next_path = query_of(login_location).get("next", "")
    return http.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf": csrf_of(page.text),
            "next": next_path,
        },
    )


def code_flow(http: TestClient, client_id: str, username: str, password: str, **extra: str):
    """Authorize, sign in, follow back: returns the callback query (code, state)."""
    start = http.get(authorize_url(client_id, **extra))
    if start.status_code == 302 and start.headers["location"].startswith("/login"):
        done = sign_in(http, start.headers["location"], username, password)
        assert done.status_code == 303, done.text
        back = http.get(done.headers["location"])
    else:
        back = start
    assert back.status_code == 302, back.text
    location = back.headers["location"]
    assert location.startswith(REDIRECT), location
    return query_of(location)


def exchange(http: TestClient, district: District, code: str, **extra: str):
    return http.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **extra},
        auth=(district.client_id, district.client_secret),
    )


def verify_id_token(http: TestClient, id_token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(http.get("/oauth/jwks").json())
    return jwt.decode(id_token, keys, algorithms=["RS256", "ES256"]).claims


@contextmanager
def phone_at_the_app(browser: Any) -> Iterator[tuple[Any, list[str]]]:
    """A phone-sized browser page; the app's ``REDIRECT`` answers it with a "Welcome back"
    page. Yields the page and the list of the addresses it landed on at the app."""
    context = browser.new_context(viewport={"width": 390, "height": 800})
    landed: list[str] = []

    def arrive(route: Any) -> None:
        landed.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<h1>Welcome back</h1>")

    try:
        page = context.new_page()
        page.route(REDIRECT + "*", arrive)
        yield page, landed
    finally:
        context.close()


def fill_sign_in(page: Any, username: str, password: str) -> None:
    """Types a username and password into the sign-in form in front of ``page`` and sends it."""
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def fill_new_password(page: Any, password: str) -> None:
    """Types ``password`` twice into the forced password change form and sends it."""
    page.get_by_label("New password").fill(password)
    page.get_by_label("Type it again").fill(password)
    page.get_by_role("button", name="Save and continue").click()
