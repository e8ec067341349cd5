"""A signed-in browser-like client for the admin UI, on a small district."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from server import districts
from server.app import create_app
from server.config import Settings
from server.db.session import Database
from server.domain import credentials, jobs, roster, users
from server.domain.actors import connection_actor, system_actor
from server.domain.outbox import EMAIL_JOB
from server.domain.staff import create_staff, create_staff_token
from server.domain.tenants import create_tenant, get_tenant
from server.mail import email_runner
from tests.conftest import Inbox

BART_MAIL = "bart@springfield.example"


@dataclass
class District:
    admin_password: str
    teacher_password: str
    school_admin_password: str
    api_token: str
    manual_student: str
    other_student: str
    clever_student: str
    inactive_student: str
    maths: str
    temporary: str


@pytest.fixture
def district(context) -> District:
    return make_district(context)


def make_district(context) -> District:
    """Springfield: two schools, a class, staff of each role, students of each kind."""
    with context.database.session() as session:
        tenant = create_tenant(session, "Springfield")
        system = system_actor(tenant.id)
        school = districts.school(session, system, "Lincoln", sourced_id="lincoln")
        other = districts.school(session, system, "Other", sourced_id="other")
        clever = connection_actor(districts.sso_connection(session, system, "Clever"))

        def person(actor, given, family, role="student", org=school, **extra):
            return districts.person(session, actor, org, given, family, role, **extra)

        teacher_user = person(system, "Edna", "Krabappel", "teacher")
        maths = districts.klass(session, system, school, "Maths 4B")
        bart = person(system, "Bart", "Simpson", grades=["04"])
        lisa = person(system, "Lisa", "Simpson", grades=["02"], org=other)
        milhouse = person(clever, "Milhouse", "Van Houten", grades=["04"])
        nelson = person(system, "Nelson", "Muntz", birth_date="2016-04-01")
        users.deactivate_user(session, system, nelson)
        for member, role in ((teacher_user, "teacher"), (bart, "student"), (milhouse, "student")):
            roster.enroll(session, system, member, maths, role=role)
        temporary = credentials.issue_temporary_password(session, system, bart, box=context.box)
        admin = create_staff(session, system, "skinner", "district_admin")
        teacher = create_staff(
            session,
            system,
            "edna",
            "teacher",
            school_sourced_ids=["lincoln"],
            user_id=teacher_user.id,
        )
        school_admin = create_staff(
            session, system, "chalmers", "school_admin", school_sourced_ids=["lincoln"]
        )
        token = create_staff_token(session, admin.staff, "tests")
        return District(
            admin.password,
            teacher.password,
            school_admin.password,
            token,
            bart.id,
            lisa.id,
            milhouse.id,
            nelson.id,
            maths.id,
            temporary,
        )


@pytest.fixture
def app(settings, database):
    return create_app(settings, database=database)


def sign_in(app, username: str, password: str) -> TestClient:
    client = TestClient(app, base_url="http://testserver")
    response = client.post(
        "/admin/login", data={"username": username, "password": password}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def bulk(client: TestClient, action: str, user_ids: Iterable[str], **fields: str) -> httpx.Response:
    """Ticks ``user_ids`` on the users list and applies the bulk ``action`` to them."""
    listing = client.get("/admin/users").text
    form = {"csrf_token": csrf_of(listing), "action": action, "user_id": list(user_ids)}
    return client.post("/admin/users/bulk", data={**form, **fields})


def ask_for_account(client: TestClient, **fields: str) -> httpx.Response:
    """Files an account request with the Requests page's form (a teacher's)."""
    form = client.get("/admin/requests").text
    return client.post("/admin/requests", data={"csrf_token": csrf_of(form), **fields})


def decide_request(client: TestClient, decision: str, **fields: str) -> tuple[str, httpx.Response]:
    """``approve``s or ``decline``s the first request in the queue: its id and the answer."""
    queue = client.get("/admin/requests").text
    request_id = re.search(rf"/admin/requests/([0-9a-f-]{{36}})/{decision}", queue).group(1)
    data = {"csrf_token": csrf_of(queue), **fields}
    return request_id, client.post(f"/admin/requests/{request_id}/{decision}", data=data)


def invite(client: TestClient, user_id: str) -> httpx.Response:
    """Presses "Send activation email" on a student's page."""
    page = client.get(f"/admin/users/{user_id}").text
    return client.post(f"/admin/users/{user_id}/invite", data={"csrf_token": csrf_of(page)})


def give_bart_an_address(database: Database, district: District) -> str:
    """Bart (the manual student) gets the address ``BART_MAIL``; returns his tenant's id."""
    with database.session() as session:
        actor = system_actor(get_tenant(session, "Springfield").id)
        bart = users.get_user(session, actor, district.manual_student)
        users.update_user(session, actor, bart, {"email": BART_MAIL})
        return bart.tenant_id


@dataclass
class Mailing:
    """The admin app sending through a real loopback SMTP server (the ``smtp`` fixture)."""

    app: Starlette
    inbox: Inbox
    url: str
    settings: Settings
    database: Database

    def send(self) -> int:
        """Runs the due email jobs (what the worker does); returns how many ran."""
        mailer = email_runner(replace(self.settings, smtp_url=self.url))
        return jobs.run_due(self.database, {EMAIL_JOB: mailer})


@pytest.fixture
def mailing(settings, database, smtp) -> Mailing:
    url, inbox = smtp
    app = create_app(replace(settings, smtp_url=url), database=database)
    return Mailing(app, inbox, url, settings, database)
