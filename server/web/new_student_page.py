"""Add a student by hand (possible duplicates offered first). Every action is authorised by the
domain, not only hidden in the page."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response

from server.domain import (
    access,
    credentials,
    duplicates,
    roster,
    roster_views,
    search,
    users,
)
from server.domain.actors import Actor
from server.domain.schools import schools_for
from server.domain.users import RoleAssignment
from server.domain.vocabulary import parse_date
from server.errors import DomainError
from server.web.presenters import (
    user_view,
)
from server.web.render import page
from server.web.staffauth import StaffRequest, staff_page
from server.web.user_pages import back_to_user


@staff_page
async def new_student_form(staff: StaffRequest) -> Response:
    options = await staff.work(_school_and_class_options)
    return page(staff.request, "new_student.html", nav="new", values={}, **options)


@staff_page
async def new_student(staff: StaffRequest) -> Response:
    form = await staff.form()
    values = {k: str(v).strip() for k, v in form.items() if k != "csrf_token"}

    def create(session: Session, actor: Actor) -> dict[str, Any]:
        if not values.get("school_id") and actor.school_ids:
            values["school_id"] = actor.school_ids[0]
        access.ensure_can_create(actor, [values["school_id"]] if values.get("school_id") else [])
        birth = values.get("birth_date") or None
        if values.get("confirm_new") != "1":
            matches = search.find_reactivation_candidates(
                session,
                actor,
                values.get("given_name", ""),
                values.get("family_name", ""),
                parse_date(birth, "birth_date"),
            )
            if matches:
                return {"matches": [user_view(u) for u in matches]}
        duplicates.refuse_duplicates(
            session,
            actor,
            values.get("given_name", ""),
            values.get("family_name", ""),
            birth_date=parse_date(birth, "birth_date"),
            class_id=values.get("class_id") or None,
            allow_duplicate=values.get("allow_duplicate") == "1",
        )
        fields: dict[str, Any] = {
            "given_name": values.get("given_name", ""),
            "family_name": values.get("family_name", ""),
            "birth_date": birth,
            "email": values.get("email") or None,
            "identifier": values.get("identifier") or None,
            "primary_role": "student",
            "grades": [values["grade"]] if values.get("grade") else [],
            "roles": [RoleAssignment(values["school_id"], "student")]
            if values.get("school_id")
            else [],
        }
        if values.get("username"):
            fields["username"] = values["username"]
        user = users.create_user(session, actor, fields)
        if values.get("class_id"):
            roster.enroll(
                session, actor, user, roster_views.get_class(session, actor, values["class_id"])
            )
        password = None
        if values.get("password"):
            credentials.set_password(
                session, actor, user, values["password"], temporary=True, box=staff.context.box
            )
        elif values.get("issue_password", "1") == "1":
            password = credentials.issue_temporary_password(
                session, actor, user, box=staff.context.box
            )
        return {"created": user.id, "password": password}

    try:
        if not values.get("given_name") or not values.get("family_name"):
            raise DomainError("First name and last name are required.", code="R101")
        result = await staff.work(create)
    except DomainError as error:
        options = await staff.work(_school_and_class_options)
        return page(
            staff.request,
            "new_student.html",
            status_code=error.status,
            nav="new",
            error=error.message,
            values=values,
            duplicates=getattr(error, "matches", None),
            **options,
        )
    if "matches" in result:
        options = await staff.work(_school_and_class_options)
        return page(
            staff.request,
            "new_student.html",
            nav="new",
            values=values,
            matches=result["matches"],
            **options,
        )
    staff.keep(result["password"])
    return back_to_user(result["created"], "Student account created.")


def _school_and_class_options(session: Session, actor: Actor) -> dict[str, Any]:
    return {
        "schools": [(s.id, s.name) for s in schools_for(session, actor)],
        "classes": [
            (c.id, c.title, c.school_id) for c in roster_views.list_classes(session, actor)
        ],
    }
