"""No password, token or secret ends up in a log line, an audit row, a refused-request excerpt
or a stored import report (SPEC §8 and §11; issue 11: the secrets test).

One district lives through everything that handles a secret, each with a known value: the
password sign-in (right and wrong), an activation link, staff resets and reveals, SCIM pushes
that set a password (accepted) or try to (refused), a OneRoster CSV import with a password
column (trial, applied, refused), and the OAuth flows (code, tokens, refresh, userinfo,
introspection, revocation, client credentials). Then every place that keeps a record of
what happened is read and searched for every one of those values.
"""

from __future__ import annotations

import io
import json
import logging

from sqlalchemy import select

from server.db import AuditEvent, ImportRowResult, ImportRun, ProviderFailure
from server.domain import activation, connections, users
from server.domain.actors import system_actor
from server.domain.staff import create_staff, create_staff_token
from server.logs import configure_logging
from tests.imports.packages import district as package_files
from tests.imports.packages import package
from tests.oidc.conftest import REDIRECT, code_flow, csrf_of, sign_in
from tests.scim.helpers import PATCH, USER

CSV_PASSWORD = "Csv-Import-Pass-5150"
SCIM_ACCEPTED = "Scim-Accepted-Pass-4471"
SCIM_REFUSED = "Scim-Refused-Pass-6623"
SCIM_PATCHED = "Scim-Patched-Pass-3390"
WRONG_GUESS = "Wrong-Guess-Pass-5512"
CHOSEN = "Chosen-Activation-8842"
TYPED_RESET = "Typed-Reset-Pass-9931"
WRONG_STAFF = "Wrong-Staff-Pass-2718"


def _rows(session, model) -> str:
    table = model.__table__
    rows = session.execute(select(*table.columns)).mappings().all()
    return json.dumps([dict(row) for row in rows], default=str)


def _records(database) -> dict[str, str]:
    with database.session() as session:
        return {
            "audit": _rows(session, AuditEvent),
            "refused requests": _rows(session, ProviderFailure),
            "import runs": _rows(session, ImportRun) + _rows(session, ImportRowResult),
        }


def _oauth_flows(http, district) -> list[str]:
    auth = (district.client_id, district.client_secret)
    password = district.students["lisa"]["password"]
    code = code_flow(
        http, district.client_id, "lisa", password, scope="openid profile offline_access"
    )
    tokens = http.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code["code"], "redirect_uri": REDIRECT},
        auth=auth,
    ).json()
    refreshed = http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=auth,
    ).json()
    bearer = {"Authorization": f"Bearer {refreshed['access_token']}"}
    assert http.get("/oauth/userinfo", headers=bearer).status_code == 200
    http.post("/oauth/introspect", data={"token": refreshed["access_token"]}, auth=auth)
    http.post("/oauth/revoke", data={"token": refreshed["refresh_token"]}, auth=auth)
    app_token = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(district.api_client_id, district.api_client_secret),
    ).json()["access_token"]
    return [
        code["code"],
        *(tokens[k] for k in ("access_token", "refresh_token", "id_token")),
        *(refreshed[k] for k in ("access_token", "refresh_token")),
        app_token,
        district.client_secret,
        district.api_client_secret,
    ]


def _sign_ins_and_activation(http, district, database) -> list[str]:
    assert sign_in(http, "/login", "lisa", WRONG_GUESS).status_code == 401
    with database.session() as session:
        actor = system_actor(district.tenant_id)
        maggie = users.create_user(
            session,
            actor,
            {"given_name": "Maggie", "family_name": "Simpson", "email": "maggie@example.org"},
        )
        link = activation.create_activation_link(session, actor, maggie).secret
    page = http.get(f"/activate/{link}")
    done = http.post(
        f"/activate/{link}",
        data={"password": CHOSEN, "confirm": CHOSEN, "csrf": csrf_of(page.text)},
    )
    assert done.status_code == 200, done.text
    return [link, WRONG_GUESS, CHOSEN, district.students["lisa"]["password"]]


def _staff_resets(http, district, database) -> list[str]:
    with database.session() as session:
        admin = create_staff(session, system_actor(district.tenant_id), "skinner", "district_admin")
        token = create_staff_token(session, admin.staff, "secrets test")
    wrong = http.post("/admin/login", data={"username": "skinner", "password": WRONG_STAFF})
    assert wrong.status_code == 401
    signed = http.post("/admin/login", data={"username": "skinner", "password": admin.password})
    assert signed.status_code == 303
    api = {"Authorization": f"Bearer {token}"}
    bart = district.students["bart"]["id"]
    temporary = http.post(f"/admin/api/users/{bart}/password", json={}, headers=api).json()
    revealed = http.post(f"/admin/api/users/{bart}/password/reveal", headers=api).json()
    typed = http.post(
        f"/admin/api/users/{bart}/password",
        json={"password": TYPED_RESET, "temporary": False},
        headers=api,
    )
    assert typed.status_code == 200, typed.text
    secrets = [token, admin.password, WRONG_STAFF, temporary["password"], revealed["password"]]
    return [*secrets, TYPED_RESET, signed.cookies["rollcall_staff"]]  # the session cookie


def _scim_pushes(http, district, database) -> list[str]:
    with database.session() as session:
        actor = system_actor(district.tenant_id)
        plain = connections.create_connection(session, actor, "Okta", "scim").token
        sso = connections.create_connection(
            session, actor, "Google", "scim", sso_provider="Google"
        ).token

    def push(token, method, path, body):
        return http.request(
            method, f"/scim/v2{path}", json=body, headers={"Authorization": f"Bearer {token}"}
        )

    accepted = push(
        plain,
        "POST",
        "/Users",
        {"schemas": [USER], "userName": "okta.kid", "password": SCIM_ACCEPTED},
    )
    assert accepted.status_code == 201, accepted.text
    refused = push(
        sso, "POST", "/Users", {"schemas": [USER], "userName": "g.kid", "password": SCIM_REFUSED}
    )
    assert refused.status_code >= 400, refused.text
    made = push(sso, "POST", "/Users", {"schemas": [USER], "userName": "g.kid"})
    patched = push(
        sso,
        "PATCH",
        f"/Users/{made.json()['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "password", "value": SCIM_PATCHED}],
        },
    )
    assert patched.status_code >= 400, patched.text
    return [plain, sso, SCIM_ACCEPTED, SCIM_REFUSED, SCIM_PATCHED]


def _csv_imports(http, district, database, tmp_path) -> list[str]:
    with database.session() as session:
        token = connections.create_connection(
            session, system_actor(district.tenant_id), "SIS", "oneroster"
        ).token
    files = package_files()
    for row in files["users.csv"]:
        row["password"] = CSV_PASSWORD
    body = package(tmp_path / "sis.zip", "1.1", files).read_bytes()
    headers = {"Authorization": f"Bearer {token}"}
    assert (
        http.post("/oneroster/csv?dry_run=true", content=body, headers=headers).status_code == 200
    )
    assert http.post("/oneroster/csv", content=body, headers=headers).status_code == 200
    files["users.csv"][1]["role"] = "wizard"  # a refused file: its report lists the rows
    bad = package(tmp_path / "bad.zip", "1.1", files).read_bytes()
    assert http.post("/oneroster/csv", content=bad, headers=headers).status_code == 422
    # A refused push whose first bytes are the users file itself (stored, uncompressed).
    lone = package(tmp_path / "lone.zip", "1.1", {"users.csv": files["users.csv"]}, raw={})
    refused = http.post("/oneroster/csv", content=lone.read_bytes(), headers=headers)
    assert refused.status_code == 422, refused.text
    return [token, CSV_PASSWORD]


def test_no_secret_reaches_a_log_an_audit_row_an_excerpt_or_an_import_report(
    http, district, database, tmp_path
):
    stream = io.StringIO()
    configure_logging(stream=stream)
    try:
        secrets = [
            *_oauth_flows(http, district),
            *_sign_ins_and_activation(http, district, database),
            *_staff_resets(http, district, database),
            *_scim_pushes(http, district, database),
            *_csv_imports(http, district, database, tmp_path),
        ]
    finally:
        logging.getLogger().handlers[:] = []
    records = {"log": stream.getvalue(), **_records(database)}
    assert records["log"].count('"message": "request"') > 20  # the requests were logged
    assert "signin.failure" in records["audit"] and "R102" in records["import runs"]
    assert "[redacted]" in records["refused requests"]
    for secret in secrets:
        assert secret and len(secret) >= 8
        leaks = [where for where, text in records.items() if secret in text]
        assert leaks == [], f"{secret[:12]}… found in {leaks}"
