"""The proof of erasure (issue 12, point 2): students made through every surface, used, deleted
and purged leave nothing in any table or column of the database but pseudonyms."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from starlette.testclient import TestClient

from oneroster.csv_files import HEADERS
from server.app import create_app
from server.db import AuditEvent, User, utcnow
from server.domain import jobs, retention
from server.domain.actors import system_actor
from server.domain.erasure import pseudonym
from server.domain.outbox import EMAIL_JOB
from server.domain.pseudonyms import tenant_key
from server.mail import email_runner
from tests.conftest import TEST_SECRET, scan_database
from tests.imports.packages import package
from tests.oidc.conftest import ISSUER, REDIRECT, authorize_url, code_flow
from tests.oidc.conftest import sign_in as oidc_sign_in
from tests.web.conftest import ask_for_account, csrf_of, decide_request, sign_in

FIELDS = r'name="(content|choice|signature|csrf_token)" value="([^"]*)"'
V1P2 = "/ims/oneroster/rostering/v1p2"
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass
class Trace:
    """What identifies one student: every value that must be gone after the purge."""

    surface: str
    values: list[str]
    id: str = ""
    username: str = ""
    password: str = ""
    extra: list[str] = field(default_factory=list)

    def needles(self) -> list[str]:
        return [v for v in (*self.values, *self.extra, self.id, self.username) if v]


def _api(district) -> dict[str, str]:
    return {"Authorization": f"Bearer {district.api_token}"}


def _user_id(context, username: str) -> str:
    with context.database.session() as session:
        return session.scalars(select(User.id).where(User.username == username)).one()


def _by_staff_page(admin: TestClient, context) -> Trace:
    form = admin.get("/admin/users/new").text
    school = re.search(r'<option value="([0-9a-f-]{36})"[^>]*>Lincoln', form).group(1)
    made = admin.post(
        "/admin/users/new",
        data={
            "csrf_token": csrf_of(form),
            "given_name": "Quentin",
            "family_name": "Staffmade",
            "username": "qstaffmade",
            "birth_date": "2015-02-03",
            "email": "quentin.staffmade@home.example",
            "identifier": "SIS-77001",
            "grade": "01",  # a badge grade (PK-02 by default)
            "school_id": school,
            "confirm_new": "1",
        },
    )
    assert made.status_code == 200, made.text
    trace = Trace(
        "staff page",
        ["Quentin", "Staffmade", "2015-02-03", "quentin.staffmade@home.example", "SIS-77001"],
        username="qstaffmade",
    )
    trace.id = _user_id(context, "qstaffmade")
    return trace


def _by_admin_api(client: TestClient, district) -> Trace:
    made = client.post(
        "/admin/api/users",
        json={
            "given_name": "Rosalind",
            "family_name": "Apimade",
            "username": "rapimade",
            "birth_date": "2014-06-07",
            "identifier": "SIS-77002",
            "schools": ["lincoln"],
            "password": "Tidy-Otter-Lamp-93",
            "temporary": False,
        },
        headers=_api(district),
    )
    assert made.status_code == 201, made.text
    return Trace(
        "admin API",
        ["Rosalind", "Apimade", "2014-06-07", "SIS-77002"],
        id=made.json()["id"],
        username="rapimade",
        password="Tidy-Otter-Lamp-93",
    )


def _connection(client: TestClient, district, name: str, kind: str) -> str:
    made = client.post(
        "/admin/api/connections",
        json={"name": name, "kind": kind, "schools": ["lincoln"]},
        headers=_api(district),
    )
    assert made.status_code == 201, made.text
    return made.json()["token"]


def _by_scim(client: TestClient, token: str) -> Trace:
    headers = {"Authorization": f"Bearer {token}"}
    # emails, phoneNumbers and addresses: multi-valued attributes of RFC 7643 §4.1.2.
    body = {
        "schemas": [SCIM_USER],
        "userName": "tscimmade@school.example",
        "externalId": "entra-77003",
        "name": {"givenName": "Theodora", "familyName": "Scimmade"},
        "emails": [{"value": "theodora.scimmade@home.example", "type": "home", "primary": True}],
        "phoneNumbers": [{"value": "+44 7700 900311", "type": "mobile"}],
        "addresses": [{"streetAddress": "14 Quince Crescent", "type": "home"}],
    }
    made = client.post("/scim/v2/Users", json=body, headers=headers)
    assert made.status_code == 201, made.text
    user_id = made.json()["id"]
    group = client.post(
        "/scim/v2/Groups",
        json={
            "schemas": [SCIM_GROUP],
            "displayName": "Chess Club",
            "members": [{"value": user_id}],
        },
        headers=headers,
    )
    assert group.status_code == 201, group.text
    # A refused request carrying their phone number: kept as an excerpt for the admins.
    refused = client.patch(
        f"/scim/v2/Users/{user_id}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {"op": "explode", "path": "phoneNumbers", "value": "+44 7700 900312"},
            ],
        },
        headers=headers,
    )
    assert refused.status_code == 400, refused.text
    return Trace(
        "SCIM",
        [
            "Theodora",
            "Scimmade",
            "entra-77003",
            "theodora.scimmade@home.example",
            "7700 900311",
            "7700 900312",
            "Quince Crescent",
        ],
        id=user_id,
        username="tscimmade@school.example",
    )


def _by_oneroster_push(client: TestClient, token: str, context) -> Trace:
    headers = {"Authorization": f"Bearer {token}"}
    # phone, sms and metadata are optional fields of the OneRoster 1.2 User object (official
    # OpenAPI document, 1EdTech/oneroster-bootcamp src/main/resources/oas/).
    body = {
        "user": {
            "sourcedId": "hub-77004",
            "status": "active",
            "enabledUser": "true",
            "givenName": "Ulrika",
            "familyName": "Pushmade",
            "username": "upushmade",
            "email": "ulrika.pushmade@home.example",
            "phone": "+44 7700 900413",
            "metadata": {"homeAddress": "27 Juniper Lane"},
            "roles": [
                {
                    "roleType": "primary",
                    "role": "student",
                    "org": {"href": "x", "sourcedId": "lincoln", "type": "org"},
                }
            ],
        }
    }
    pushed = client.put(f"{V1P2}/users/hub-77004", json=body, headers=headers)
    assert pushed.status_code == 201, pushed.text
    trace = Trace(
        "OneRoster push",
        [
            "hub-77004",
            "Ulrika",
            "Pushmade",
            "ulrika.pushmade@home.example",
            "7700 900413",
            "Juniper Lane",
        ],
        username="upushmade",
    )
    trace.id = _user_id(context, "upushmade")
    return trace


def _apply(admin: TestClient, filename: str, content: bytes, mime: str) -> None:
    form = admin.get("/admin/import").text
    school = re.search(r'<option value="([0-9a-f-]{36})">Lincoln</option>', form).group(1)
    shown = admin.post(
        "/admin/import",
        data={"csrf_token": csrf_of(form), "connection": "Manual", "school": school},
        files={"file": (filename, content, mime)},
    )
    assert shown.status_code == 200, shown.text
    fields = dict(re.findall(FIELDS, shown.text))
    fields["choice"] = html.unescape(fields["choice"])
    applied = admin.post("/admin/import/apply", data=fields)
    assert applied.status_code == 200, applied.text


def _by_school_csv(admin: TestClient, context) -> Trace:
    content = (
        b"Student Full Name,Username,Year Group,Class,Gender,SEND\r\n"
        b"Wilhelmina Csvmade,wcsvmade,4,Maths 4B,F,Y\r\n"
    )
    _apply(admin, "pupils.csv", content, "text/csv")
    trace = Trace("school CSV", ["Wilhelmina", "Csvmade"], username="wcsvmade")
    trace.id = _user_id(context, "wcsvmade")
    return trace


def _by_oneroster_csv(admin: TestClient, context, tmp_path) -> Trace:
    # metadata.* columns are kept in the user's extra JSON (oneroster/csv_records.py, as in
    # tests/imports/test_oneroster_details.py); demographics.csv carries birthDate.
    header = [*HEADERS["1.1"]["users.csv"], "metadata.medical", "metadata.homeAddress"]
    user = {
        "sourcedId": "sis-77006",
        "status": "active",
        "dateLastModified": "2026-11-01T00:00:00Z",
        "enabledUser": "true",
        "orgSourcedIds": "lincoln",
        "role": "student",
        "username": "xzipmade",
        "givenName": "Xanthe",
        "familyName": "Zipmade",
        "grades": "04",
        "metadata.medical": "asthma inhaler in bag",
        "metadata.homeAddress": "3 Sorrel Mews",
    }
    demographics = {
        "sourcedId": "sis-77006",
        "status": "active",
        "dateLastModified": "2026-11-01T00:00:00Z",
        "birthDate": "2016-09-10",
        "sex": "female",
    }
    zipped = package(
        tmp_path / "sis.zip",
        "1.1",
        {"users.csv": [user], "demographics.csv": [demographics]},
        mode="delta",
        headers={"users.csv": header},
    ).read_bytes()
    _apply(admin, "sis.zip", zipped, "application/zip")
    trace = Trace(
        "OneRoster CSV",
        ["sis-77006", "Xanthe", "Zipmade", "asthma inhaler", "Sorrel Mews", "2016-09-10"],
        username="xzipmade",
    )
    trace.id = _user_id(context, "xzipmade")
    return trace


def _by_account_request(app, district, context) -> Trace:
    sent = ask_for_account(
        sign_in(app, "edna", district.teacher_password),
        given_name="Yolanda",
        family_name="Requestmade",
        class_id=district.maths,
        birth_date="2017-01-12",
        note="New arrival; lives at 9 Tansy Row",
    )
    assert sent.status_code == 200, sent.text
    admin = sign_in(app, "chalmers", district.school_admin_password)
    _, approved = decide_request(admin, "approve")
    assert approved.status_code == 200, approved.text
    with context.database.session() as session:
        user = session.scalars(select(User).where(User.family_name == "Requestmade")).one()
        return Trace(
            "account request",
            ["Yolanda", "Requestmade", "2017-01-12", "Tansy Row"],
            id=user.id,
            username=user.username,
        )


def _exercise(app, admin: TestClient, district, traces: list[Trace]) -> None:
    """Sign-ins (good and bad), resets, a badge and an activation email for each student."""
    made = admin.post(
        "/admin/api/clients",
        json={"name": "Reading app", "redirect_uris": [REDIRECT]},
        headers=_api(district),
    )
    assert made.status_code == 201, made.text
    client_id, secret = made.json()["client_id"], made.json()["client_secret"]
    for trace in traces:
        page = admin.get(f"/admin/users/{trace.id}").text
        csrf = csrf_of(page)
        admin.post(f"/admin/users/{trace.id}/badge", data={"csrf_token": csrf, "pin": "4321"})
        if trace.surface == "staff page":
            admin.post(f"/admin/users/{trace.id}/invite", data={"csrf_token": csrf})
        reset = admin.post(
            f"/admin/api/users/{trace.id}/password",
            json={"temporary": False, "password": "Brisk-Heron-Cove-58"},
            headers=_api(district),
        )
        if reset.status_code != 200:  # SSO-linked or connection-owned: not ours to reset
            continue
        with TestClient(app, base_url=ISSUER, follow_redirects=False) as http:
            for wrong in ("not-it-1", "not-it-2"):
                start = http.get(authorize_url(client_id)).headers["location"]
                failed = oidc_sign_in(http, start, trace.username, wrong)
                assert failed.status_code == 401, failed.text
            query = code_flow(http, client_id, trace.username, "Brisk-Heron-Cove-58")
            tokens = exchange_as(http, client_id, secret, query["code"])
            assert "access_token" in tokens, tokens


def exchange_as(http: TestClient, client_id: str, secret: str, code: str) -> dict[str, Any]:
    return http.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=(client_id, secret),
    ).json()


def _delete_all(client: TestClient, district, traces: list[Trace]) -> None:
    for trace in traces:
        gone = client.delete(
            f"/admin/api/users/{trace.id}", params={"override": "1"}, headers=_api(district)
        )
        assert gone.status_code == 204, (trace.surface, gone.text)


def test_purged_students_leave_nothing_but_pseudonyms(district, context, tmp_path, settings, smtp):
    # a mail server is set up: activation emails are refused without one (issue 14, item 6)
    app = create_app(replace(settings, smtp_url=smtp[0]), database=context.database)
    admin = sign_in(app, "skinner", district.admin_password)
    with TestClient(app, base_url="http://testserver") as client:
        scim_token = _connection(client, district, "Entra ID", "scim")
        hub_token = _connection(client, district, "Hub", "oneroster")
        traces = [
            _by_staff_page(admin, context),
            _by_admin_api(client, district),
            _by_scim(client, scim_token),
            _by_oneroster_push(client, hub_token, context),
            _by_school_csv(admin, context),
            _by_oneroster_csv(admin, context, tmp_path),
            _by_account_request(app, district, context),
        ]
        _exercise(app, admin, district, traces)
        mailer = email_runner(replace(settings, smtp_url=smtp[0]))
        assert jobs.run_due(context.database, {EMAIL_JOB: mailer}) == 1  # the activation email
        assert len(smtp[1].messages) == 1
        before = scan_database(context.database)
        for trace in traces:  # the scan sees them before the purge: it is not blind
            assert _hits(before, trace), trace.surface
        seen = {hit.split(":")[0] for trace in traces for hit in _hits(before, trace)}
        assert {
            "audit_events.changes",
            "jobs.payload",
            "provider_failures.request_excerpt",
            "scim_values.text",
            "import_row_results.changes",
            "account_requests.note",
            "users.extra",
            "badges.user_id",
            "activation_tokens.user_id",
            "oauth_tokens.user_id",
            "oauth_codes.user_id",
            "browser_sessions.user_id",
            "enrollments.user_id",
            "credentials.user_id",
        } <= seen, seen
        _delete_all(client, district, traces)
    with context.database.session() as session:
        tenant_id = session.get(User, district.manual_student).tenant_id
        counts = retention.enforce(
            session,
            system_actor(tenant_id, "retention"),
            secret_key=TEST_SECRET,
            now=utcnow() + timedelta(days=31),
        )
    assert counts["users_purged"] == len(traces)
    after = scan_database(context.database)
    left = {trace.surface: _hits(after, trace) for trace in traces}
    assert left == {trace.surface: [] for trace in traces}
    with context.database.session() as session:
        targets = set(session.scalars(select(AuditEvent.target_id)))
        key = tenant_key(session, tenant_id, TEST_SECRET)
    for trace in traces:
        assert pseudonym(key, trace.id) in targets, trace.surface
    with TestClient(app, base_url="http://testserver") as client:
        found = client.get(
            "/scim/v2/Groups",
            params={"filter": f'members.value eq "{traces[2].id}"'},
            headers={"Authorization": f"Bearer {scim_token}"},
        )
        assert found.status_code == 200 and found.json()["totalResults"] == 0


def _hits(scan: dict[tuple[str, str], list[str]], trace: Trace) -> list[str]:
    hits = []
    for (table, column), values in scan.items():
        for needle in trace.needles():
            if any(needle.casefold() in value.casefold() for value in values):
                hits.append(f"{table}.{column}: {needle}")
    return sorted(set(hits))
