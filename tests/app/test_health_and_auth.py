"""The app skeleton: health check, connection bearer tokens, JSON logs without secrets."""

from __future__ import annotations

import io
import json
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from server.app import create_app
from server.auth import ConnectionAuthMiddleware, actor_of
from server.db.session import Database
from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.tenants import create_tenant
from server.logs import configure_logging


def test_healthz_answers_200_when_the_database_is_reachable(settings, database):
    with TestClient(create_app(settings, database=database)) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_answers_503_when_the_database_is_not(settings, tmp_path):
    broken = Database(f"sqlite:///{tmp_path}/missing/dir/db.sqlite3")
    with TestClient(create_app(settings, database=broken)) as client:
        assert client.get("/healthz").status_code == 503


def _whoami(request: Request) -> JSONResponse:
    actor = actor_of(request)
    return JSONResponse({"connection": actor.name, "tenant": actor.tenant_id})


def _protected_app(database: Database) -> Starlette:
    inner = Starlette(routes=[Route("/whoami", _whoami)])
    guarded = ConnectionAuthMiddleware(
        inner, database, lambda status, detail: JSONResponse({"detail": detail}, status)
    )
    return Starlette(routes=[Mount("/proto", app=guarded)])


def test_bearer_token_resolves_the_connection_and_its_tenant(database):
    with database.session() as session:
        tenant = create_tenant(session, "Riverside")
        token = create_connection(session, system_actor(tenant.id), "Entra ID", "scim").token
        tenant_id = tenant.id
    client = TestClient(_protected_app(database))
    response = client.get("/proto/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.json() == {"connection": "Entra ID", "tenant": tenant_id}


def test_missing_or_wrong_token_gets_401_with_www_authenticate(database):
    client = TestClient(_protected_app(database))
    missing = client.get("/proto/whoami")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = client.get("/proto/whoami", headers={"Authorization": "Bearer rc_wrong"})
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert wrong.json() == {"detail": "The bearer token is not valid."}


def test_log_lines_are_json_and_never_hold_secrets(settings, database):
    stream = io.StringIO()
    configure_logging(stream=stream)
    try:
        with TestClient(create_app(settings, database=database)) as client:
            client.get(
                "/healthz?token=rc_supersecretvalue123", headers={"Authorization": "Bearer x"}
            )
        logging.getLogger("rollcall.test").info(
            "password=hunter2 Bearer abc.def rc_abcdefghijkl", extra={"client_secret": "s3cr3t"}
        )
    finally:
        logging.getLogger().handlers[:] = []
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    request = next(line for line in lines if line["message"] == "request")
    assert request["path"] == "/healthz" and request["status"] == 200
    text = stream.getvalue()
    for secret in ("rc_supersecretvalue123", "hunter2", "abc.def", "rc_abcdefghijkl", "s3cr3t"):
        assert secret not in text


def test_secret_path_segments_never_reach_the_request_log(settings, database):
    # Issue 11 defect 5: the log kept /activate/<token>, and an unused link sets a password.
    from server.domain import activation, users

    with database.session() as session:
        tenant = create_tenant(session, "Riverside")
        actor = system_actor(tenant.id)
        user = users.create_user(session, actor, {"given_name": "Ann", "family_name": "Lee"})
        secret = activation.create_activation_link(session, actor, user, for_print=True).secret
    stream = io.StringIO()
    configure_logging(stream=stream)
    try:
        with TestClient(create_app(settings, database=database)) as client:
            assert client.get(f"/activate/{secret}").status_code == 200
            assert client.get("/activate/not-a-live-link").status_code == 410
    finally:
        logging.getLogger().handlers[:] = []
    paths = [json.loads(line).get("path") for line in stream.getvalue().splitlines()]
    assert paths.count("/activate/[redacted]") == 2
    assert secret not in stream.getvalue() and "not-a-live-link" not in stream.getvalue()
