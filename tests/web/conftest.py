"""A signed-in browser-like client for the admin UI, on a small district."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from starlette.testclient import TestClient

from server import districts
from server.app import create_app
from server.domain import credentials, roster, users
from server.domain.actors import connection_actor, system_actor
from server.domain.staff import create_staff, create_staff_token
from server.domain.tenants import create_tenant


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
