"""Issue 13 defect 5 and issue 11 defect 6: a busy or unreachable database answers 503 with
``Retry-After`` on every surface, in that surface's own error format, never a 500."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.db.session import Database

BOGUS = {"Authorization": "Bearer rc_not-a-real-token-but-looked-up"}

# (method, path, extra request arguments, what the body must say in the surface's format)
SURFACES = [
    ("GET", "/scim/v2/Users", {"headers": BOGUS}, lambda r: r.json()["status"] == "503"),
    (
        "POST",
        "/scim/v2/Users",
        {"headers": BOGUS, "json": {"userName": "bart"}},
        lambda r: r.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"],
    ),
    (
        "GET",
        "/ims/oneroster/rostering/v1p2/users",
        {"headers": BOGUS},
        lambda r: (
            r.json()["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"]
            == "server_busy"
        ),
    ),
    (
        "POST",
        "/oauth/token",
        {"data": {"grant_type": "client_credentials"}, "auth": ("client", "secret")},
        lambda r: r.json()["error"] == "temporarily_unavailable",
    ),
    ("GET", "/oauth/jwks", {}, lambda r: r.json()["error"] == "temporarily_unavailable"),
    ("GET", "/admin/api/users", {"headers": BOGUS}, lambda r: "busy" in r.json()["detail"]),
    ("GET", "/login", {}, lambda r: "Try again in a moment" in r.text),
    (
        "POST",
        "/admin/login",
        {"data": {"username": "skinner", "password": "x"}},
        lambda r: "Try again in a moment" in r.text,
    ),
]


@pytest.fixture
def impatient_app(settings, database, database_url) -> Iterator:
    """The app over a database handle that waits only 0.2 s for a lock (SQLite's: the tests
    using it are ``sqlite_only``; PostgreSQL has its own tests)."""
    impatient = Database(database_url, busy_timeout=0.2)
    yield create_app(settings, database=impatient)
    impatient.dispose()


@pytest.fixture
def write_lock(database_url) -> Iterator[None]:
    """Another process's long write: a second SQLite connection holding ``BEGIN IMMEDIATE``."""
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield
    holder.execute("ROLLBACK")
    holder.close()


# A SCIM token is resolved by a read, which another process's write lock does not block: a
# bogus token is then a 401, and SCIM's 503 is a write's (tested below with a real token).
LOCKED_SURFACES = [surface for surface in SURFACES if not surface[1].startswith("/scim/")]


@pytest.mark.parametrize(
    ("method", "path", "extra", "says"),
    LOCKED_SURFACES,
    ids=[f"{m} {p}" for m, p, *_ in LOCKED_SURFACES],
)
@pytest.mark.sqlite_only
def test_a_held_write_lock_answers_503_with_retry_after_in_the_surfaces_format(
    impatient_app, write_lock, method, path, extra, says
):
    with TestClient(impatient_app) as client:
        answer = client.request(method, path, follow_redirects=False, **extra)
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["retry-after"]) > 0
    assert says(answer), answer.text


@pytest.mark.sqlite_only
def test_under_a_held_write_lock_scim_reads_answer_and_writes_answer_503(
    impatient_app, scim_token, write_lock
):
    """Issue 15: a SCIM token not resolved yet was resolved in a write unit of work, so every
    request after the token cache expired waited for the write lock, a lookup too. Resolving
    it only reads: a lookup answers, a bogus token is refused, a write answers 503."""
    auth = {"Authorization": f"Bearer {scim_token}"}
    with TestClient(impatient_app) as client:
        found = client.get("/scim/v2/Users", params={"filter": 'userName eq "bart"'}, headers=auth)
        assert found.status_code == 200 and found.json()["totalResults"] == 0, found.text
        assert client.get("/scim/v2/Users", headers=BOGUS).status_code == 401
        user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bart"}
        for path, body in (("/Users", user), ("/Groups", {"displayName": "Choir"})):
            answer = client.post(f"/scim/v2{path}", json=body, headers=auth)
            assert answer.status_code == 503, answer.text
            assert int(answer.headers["retry-after"]) > 0
            assert answer.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
            assert answer.json()["status"] == "503"


@pytest.mark.sqlite_only
def test_the_same_request_succeeds_once_the_lock_is_released(impatient_app, database_url):
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with TestClient(impatient_app) as client:
        assert client.get("/oauth/jwks").status_code == 503
        holder.execute("ROLLBACK")
        assert client.get("/oauth/jwks").status_code == 200
    holder.close()


def test_postgresql_stopped_answers_503_everywhere_and_recovers_when_it_is_back(
    own_postgres, settings
):
    from dataclasses import replace

    from server.db.migrate import upgrade

    database = Database(own_postgres.url, busy_timeout=2)
    upgrade(database.engine)
    app = create_app(replace(settings, database_url=own_postgres.url), database=database)
    with TestClient(app) as client:
        assert client.get("/oauth/jwks").status_code == 200
        own_postgres.stop()
        for method, path, extra, says in SURFACES:
            answer = client.request(method, path, follow_redirects=False, **extra)
            assert answer.status_code == 503, (path, answer.text)
            assert int(answer.headers["retry-after"]) > 0 and says(answer), answer.text
        health = client.get("/healthz")
        assert health.status_code == 503 and health.headers["retry-after"] == "5"
        own_postgres.start()
        assert client.get("/oauth/jwks").status_code == 200
        assert client.get("/healthz").status_code == 200
    database.dispose()


@pytest.mark.sqlite_only
def test_a_cli_command_on_a_locked_database_says_so_and_exits_1(
    database, database_url, write_lock, monkeypatch, capsys, tmp_path
):
    from server.cli.main import main

    monkeypatch.setenv("ROLLCALL_DATABASE_URL", database_url)
    monkeypatch.setenv("ROLLCALL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ROLLCALL_DATABASE_BUSY_TIMEOUT", "0.2")
    assert main(["tenant", "add", "Ogdenville"]) == 1
    assert "The database is busy or unreachable" in capsys.readouterr().err


@pytest.fixture
def scim_token(database) -> str:
    from server.domain.actors import system_actor
    from server.domain.connections import create_connection
    from server.domain.tenants import create_tenant

    with database.session() as session:
        tenant = create_tenant(session, "Shelbyville")
        return create_connection(session, system_actor(tenant.id), "Entra ID", "scim").token


def _bulk(fail_on_errors: int | None = None) -> dict:
    """Two creations in one Bulk request (RFC 7644 §3.7.1's shape)."""
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": name,
                "data": {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": name,
                    "name": {"givenName": name.title(), "familyName": "Flanders"},
                },
            }
            for name in ("rod", "todd")
        ],
    }
    if fail_on_errors is not None:
        body["failOnErrors"] = fail_on_errors
    return body


@pytest.mark.parametrize(("fail_on_errors", "answered"), [(None, 2), (1, 1)])
@pytest.mark.sqlite_only
def test_a_busy_database_inside_a_bulk_answers_each_operation_503_not_a_500(
    impatient_app, scim_token, database_url, fail_on_errors, answered
):
    """RFC 7644 §3.7.3: each operation has its own status; a busy database is that
    operation's 503 (and counts against ``failOnErrors``), never a 500 for the request."""
    auth = {"Authorization": f"Bearer {scim_token}"}
    with TestClient(impatient_app) as client:
        assert client.get("/scim/v2/Users", headers=auth).status_code == 200  # token known
        holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            answer = client.post("/scim/v2/Bulk", json=_bulk(fail_on_errors), headers=auth)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert answer.status_code == 200, answer.text
        operations = answer.json()["Operations"]
        assert len(operations) == answered
        for operation in operations:
            assert operation["status"] == "503", operation
            assert operation["response"]["status"] == "503"
            assert "busy" in operation["response"]["detail"]
        assert client.get("/scim/v2/Users", headers=auth).json()["totalResults"] == 0


@pytest.mark.postgres_only  # row locks; SQLite's write lock has its own tests above
def test_on_postgresql_a_locked_user_is_one_bulk_operations_503_and_the_others_apply(
    settings, database, database_url, scim_token
):
    """Another transaction holds the row of the user one operation changes: that operation
    answers 503 once the lock wait runs out; the Bulk's other operations are applied."""
    from sqlalchemy import text

    impatient = Database(database_url, busy_timeout=0.5)
    auth = {"Authorization": f"Bearer {scim_token}"}
    with TestClient(create_app(settings, database=impatient)) as client:
        maude = client.post(
            "/scim/v2/Users",
            json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "maude"},
            headers=auth,
        ).json()["id"]
        bulk = _bulk()
        # a change Rollcall stores (a user's displayName is not kept by default: a PATCH of it
        # changes nothing, writes nothing and so never waits for the row)
        bulk["Operations"][0] = {
            "method": "PATCH",
            "path": f"/Users/{maude}",
            "data": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "name.givenName", "value": "Maude"}],
            },
        }
        with database.engine.connect() as holder, holder.begin():
            holder.execute(text("SELECT id FROM users WHERE id = :id FOR UPDATE"), {"id": maude})
            answer = client.post("/scim/v2/Bulk", json=bulk, headers=auth)
        assert answer.status_code == 200, answer.text
        assert [op["status"] for op in answer.json()["Operations"]] == ["503", "201"]
        assert answer.json()["Operations"][0]["response"]["status"] == "503"
        found = client.get("/scim/v2/Users", params={"filter": 'userName eq "todd"'}, headers=auth)
        assert found.json()["totalResults"] == 1
    impatient.dispose()
