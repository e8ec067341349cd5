"""The demo district that ``make run`` serves: two schools, a term, courses, classes, about 60
students and 4 teachers; Clever (SSO) owns Cedar Secondary, staff created Maple Primary by hand.

Everything is created through the domain services, so the demo obeys the same rules as real
data. The credentials it prints are kept in ``demo-credentials.json`` in the data directory so
that a second ``make run`` can print them again (demo only: real tokens are shown once).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import districts
from server.db import AcademicSession, Org, SchoolClass, User
from server.domain import credentials, oauth, roster, staff, users
from server.domain.actors import Actor, connection_actor, system_actor
from server.domain.connections import create_connection
from server.domain.secrets import SecretBox
from server.domain.tenants import create_tenant

DEMO_TENANT = "Demo District"
GIVEN = [
    "Ava",
    "Ben",
    "Chloe",
    "Dev",
    "Ella",
    "Finn",
    "Grace",
    "Hugo",
    "Isla",
    "Jack",
    "Kai",
    "Lila",
    "Milo",
    "Nora",
    "Omar",
    "Priya",
    "Quinn",
    "Ruby",
    "Sami",
    "Tess",
    "Umar",
    "Vera",
    "Wes",
    "Xena",
    "Yusuf",
    "Zoë",
    "Aiden",
    "Bea",
    "Cole",
    "Dina",
]
FAMILY = [
    "Adams",
    "Brown",
    "Chen",
    "Diaz",
    "Evans",
    "Foster",
    "García",
    "Hughes",
    "Iqbal",
    "Jones",
    "Khan",
    "Lopez",
    "Murphy",
    "Nguyen",
    "O'Brien",
    "Patel",
    "Quinn",
    "Rossi",
    "Smith",
    "Taylor",
    "Usman",
    "Vance",
    "Walsh",
    "Xu",
    "Young",
    "Zhang",
    "Ali",
    "Baker",
    "Cruz",
    "Dubois",
]


@dataclass(frozen=True)
class DemoCredentials:
    tenant: str
    admin_username: str
    admin_password: str
    teacher_username: str
    teacher_password: str
    scim_connection: str
    scim_token: str
    clever_token: str
    oneroster_client_id: str = ""
    oneroster_client_secret: str = ""
    student_username: str = ""
    student_password: str = ""


def load_or_seed(session: Session, box: SecretBox, data_dir: Path) -> DemoCredentials:
    """The demo's credentials, seeding the district on first run."""
    path = data_dir / "demo-credentials.json"
    if path.exists():
        known = {f.name for f in fields(DemoCredentials)}
        stored = json.loads(path.read_text())
        return DemoCredentials(**{k: v for k, v in stored.items() if k in known})
    demo = seed(session, box)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(demo), handle, indent=2)
    return demo


def seed(session: Session, box: SecretBox) -> DemoCredentials:
    tenant = create_tenant(session, DEMO_TENANT)
    system = system_actor(tenant.id, "demo seed")
    district = roster.create_org(
        session, system, {"name": DEMO_TENANT, "type": "district", "sourced_id": "district-1"}
    )
    maple = districts.school(
        session,
        system,
        "Maple Primary School",
        parent_id=district.id,
        sourced_id="school-maple",
        identifier="MPS",
    )
    cedar = districts.school(
        session,
        system,
        "Cedar Secondary School",
        parent_id=district.id,
        sourced_id="school-cedar",
        identifier="CSS",
    )
    year = roster.create_academic_session(
        session,
        system,
        {
            "title": "2026-27",
            "type": "schoolYear",
            "school_year": "2027",
            "sourced_id": "sy-2027",
            "start_date": date(2026, 8, 24),
            "end_date": date(2027, 6, 25),
        },
    )
    term = roster.create_academic_session(
        session,
        system,
        {
            "title": "Fall 2026",
            "type": "term",
            "school_year": "2027",
            "parent_id": year.id,
            "sourced_id": "term-fall-2026",
            "start_date": date(2026, 8, 24),
            "end_date": date(2026, 12, 18),
        },
    )
    clever = create_connection(session, system, "Clever", "oneroster", sso_provider="Clever")
    scim = create_connection(session, system, "Entra ID", "scim", profile="entra")
    _school(session, system, maple, term, ["01", "02", "03"], offset=0)
    _school(session, connection_actor(clever.connection), cedar, term, ["07", "08"], offset=15)
    maple_teacher = users.find_by_sourced_id(session, tenant.id, "teacher-school-maple-1")
    admin = staff.create_staff(
        session, system, "admin", "district_admin", display_name="District Admin"
    )
    teacher = staff.create_staff(
        session,
        system,
        "teacher",
        "teacher",
        school_sourced_ids=["school-maple"],
        display_name="Maple Teacher",
        user_id=maple_teacher.id if maple_teacher else None,
    )
    student_username, student_password = _issue_passwords(session, system, box, maple)
    reader = oauth.create_client(
        session, system, "Demo learning app", kind="api", scopes=oauth.ONEROSTER_SCOPES
    )
    return DemoCredentials(
        tenant=tenant.name,
        admin_username="admin",
        admin_password=admin.password,
        teacher_username="teacher",
        teacher_password=teacher.password,
        scim_connection=scim.connection.name,
        scim_token=scim.token,
        clever_token=clever.token,
        oneroster_client_id=reader.client.client_id,
        oneroster_client_secret=reader.secret or "",
        student_username=student_username,
        student_password=student_password,
    )


def _school(
    session: Session,
    actor: Actor,
    school: Org,
    term: AcademicSession,
    grades: list[str],
    offset: int,
) -> None:
    courses = [
        roster.create_course(
            session,
            actor,
            {
                "title": title,
                "org_id": school.id,
                "sourced_id": f"course-{school.sourced_id}-{i}",
                "grades": grades,
            },
        )
        for i, title in enumerate(("Mathematics", "English"), start=1)
    ]
    teachers = [
        districts.person(
            session,
            actor,
            school,
            GIVEN[(offset + i * 7) % 30],
            FAMILY[(offset + i * 11) % 30],
            "teacher",
            sourced_id=f"teacher-{school.sourced_id}-{i}",
            email=f"teacher{i}.{(school.identifier or '').lower()}@demo.example",
        )
        for i in (1, 2)
    ]
    classes: list[SchoolClass] = []
    for index, (course, teacher) in enumerate(zip(courses, teachers, strict=True), start=1):
        klass = districts.klass(
            session,
            actor,
            school,
            f"{course.title} {grades[0]}",
            class_code=f"{school.identifier}-{index}",
            course_id=course.id,
            term_ids=[term.id],
            sourced_id=f"class-{school.sourced_id}-{index}",
            grades=grades,
        )
        roster.enroll(session, actor, teacher, klass, role="teacher", primary=True)
        classes.append(klass)
    for i in range(30):
        student = districts.student(
            session,
            actor,
            school,
            GIVEN[i],
            FAMILY[(i * 7 + offset) % 30],
            grades=[grades[i % len(grades)]],
            identifier=f"{school.identifier}{1000 + i}",
            sourced_id=f"student-{school.sourced_id}-{i + 1}",
            birth_date=date(2019 - offset // 3 - i % 3, 1 + i % 12, 1 + i % 28),
        )
        roster.enroll(session, actor, student, classes[i % 2])


def _issue_passwords(
    session: Session, actor: Actor, box: SecretBox, school: Org
) -> tuple[str, str]:
    """Two thirds of Maple's students get temporary passwords; the rest stay pending.

    Returns the username and temporary password of the first, to try the student sign-in."""
    first: tuple[str, str] | None = None
    students = session.scalars(
        select(User)
        .where(
            User.tenant_id == actor.tenant_id,
            User.sourced_id.like(f"student-{school.sourced_id}-%"),
        )
        .order_by(User.created_at, User.id)
    )
    for index, user in enumerate(students.all()):
        if index % 3:
            password = credentials.issue_temporary_password(session, actor, user, box=box)
            first = first or (user.username, password)
    assert first is not None
    return first
