"""A small district for the OneRoster tests, API clients with tokens, and a running app."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import pytest
from starlette.testclient import TestClient

from server import districts
from server.app import create_app
from server.domain import oauth, roster, users
from server.domain.actors import system_actor
from server.domain.tenants import create_tenant

V1P1 = "/ims/oneroster/v1p1"
V1P2 = "/ims/oneroster/rostering/v1p2"


def scope(version: str, name: str) -> str:
    return f"https://purl.imsglobal.org/spec/or/{version}/scope/{name}"


ALL_SCOPES = [
    scope(v, s)
    for v in ("v1p1", "v1p2")
    for s in ("roster.readonly", "roster-core.readonly", "roster-demographics.readonly")
]


@dataclass(frozen=True)
class District:
    tenant_id: str
    north_id: str
    south_id: str


def build_district(session, name: str = "Springfield", students_per_class: int = 5) -> District:
    """A district with two schools; each school has a term, a grading period, a course, two
    classes with a teacher and students, a deactivated student and a deleted one."""
    tenant = create_tenant(session, name)
    system = system_actor(tenant.id, "test")
    prefix = "" if name == "Springfield" else f"{name.lower()}-"
    district = roster.create_org(
        session, system, {"name": name, "type": "district", "sourced_id": f"{prefix}district"}
    )
    year = roster.create_academic_session(
        session,
        system,
        {
            "title": "2026-27",
            "type": "schoolYear",
            "school_year": "2027",
            "sourced_id": f"{prefix}sy-2027",
            "start_date": "2026-08-24",
            "end_date": "2027-06-25",
        },
    )
    schools = []
    for school_name in ("North", "South"):
        key = f"{prefix}{school_name.lower()}"
        school = districts.school(
            session,
            system,
            f"{school_name} High",
            parent_id=district.id,
            sourced_id=key,
            identifier=school_name[0] + "HS",
        )
        schools.append(school)
        term = roster.create_academic_session(
            session,
            system,
            {
                "title": f"Fall {school_name}",
                "type": "term",
                "school_year": "2027",
                "parent_id": year.id,
                "org_id": school.id,
                "sourced_id": f"{key}-fall",
                "start_date": "2026-08-24",
                "end_date": "2026-12-18",
            },
        )
        roster.create_academic_session(
            session,
            system,
            {
                "title": f"Q1 {school_name}",
                "type": "gradingPeriod",
                "school_year": "2027",
                "parent_id": term.id,
                "sourced_id": f"{key}-q1",
                "start_date": "2026-08-24",
                "end_date": "2026-10-23",
            },
        )
        course = roster.create_course(
            session,
            system,
            {
                "title": "Biology",
                "course_code": "BIO",
                "org_id": school.id,
                "school_year_id": year.id,
                "sourced_id": f"{key}-bio",
                "grades": ["09", "10"],
            },
        )
        teacher = districts.person(
            session,
            system,
            school,
            "Tess",
            f"{school_name}teacher",
            "teacher",
            sourced_id=f"{key}-teacher",
            email=f"tess@{key}.example",
        )
        for section in (1, 2):
            klass = districts.klass(
                session,
                system,
                school,
                f"Biology {section}",
                class_code=f"BIO-{section}",
                course_id=course.id,
                term_ids=[term.id],
                sourced_id=f"{key}-bio-{section}",
                grades=["09"],
                subjects=["science"],
                periods=[str(section)],
            )
            roster.enroll(
                session,
                system,
                teacher,
                klass,
                role="teacher",
                primary=True,
                sourced_id=f"{key}-bio-{section}-teacher",
            )
            for n in range(students_per_class):
                student = districts.student(
                    session,
                    system,
                    school,
                    f"Stu{n}",
                    f"{school_name}{section}",
                    grades=["09"],
                    sourced_id=f"{key}-s{section}-{n}",
                    identifier=f"{key}{section}{n}",
                    birth_date=date(2011, 1 + n, 1),
                    gender="F" if n % 2 else "M",
                    ethnicity="asian" if n == 0 else None,
                )
                roster.enroll(session, system, student, klass, sourced_id=f"{key}-e{section}-{n}")
        leaver = districts.student(
            session, system, school, "Lee", "Leaver", sourced_id=f"{key}-leaver"
        )
        users.deactivate_user(session, system, leaver)
        gone = districts.student(session, system, school, "Gus", "Gone", sourced_id=f"{key}-gone")
        users.delete_user(session, system, gone)
    return District(tenant.id, schools[0].id, schools[1].id)


@pytest.fixture
def district(database) -> District:
    with database.session() as session:
        return build_district(session)


@pytest.fixture
def api(settings, database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, database=database)) as client:
        yield client


Reader = Callable[..., str]


@pytest.fixture
def reader(database, district) -> Reader:
    """Make an API client with these scopes (and schools), and return a live access token."""

    def make(scopes=tuple(ALL_SCOPES), schools=(), tenant_id=None) -> str:
        with database.session() as session:
            actor = system_actor(tenant_id or district.tenant_id)
            new = oauth.create_client(
                session,
                actor,
                f"app-{secrets.token_hex(4)}",
                kind="api",
                scopes=list(scopes),
                school_sourced_ids=list(schools),
            )
            token = secrets.token_urlsafe(24)
            oauth.store_token(session, new.client, token, " ".join(scopes))
            return token

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
