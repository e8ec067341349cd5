"""Teachers' requests for new student accounts (teachers cannot create accounts themselves).

A teacher asks for an account for a student in one of their classes; school admins of that
school (and district admins) see the queue and approve it (which creates the account, enrols
the student and issues a temporary password) or decline it with a reason.

A declined request made no account, so it keeps only what the teacher needs to recognise it
(issue 12, point 4): at the decision the names shrink to initials in the request and in its
audit events, and the birth date and the teacher's note are dropped; the retention job removes
the request ``declined_request_retention_days`` (30) later (``docs/retention.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from server.db import AccountRequest, User, utcnow
from server.domain import audit, credentials, duplicates, roster, roster_views, users
from server.domain.actors import Actor
from server.domain.secrets import SecretBox
from server.domain.users import RoleAssignment
from server.domain.vocabulary import parse_date
from server.errors import Conflict, NotAllowed, NotFound, RequiredValue


@dataclass(frozen=True)
class Approval:
    user: User
    password: str


def submit_request(
    session: Session,
    actor: Actor,
    *,
    given_name: str,
    family_name: str,
    class_id: str,
    birth_date: date | str | None = None,
    note: str | None = None,
    allow_duplicate: bool = False,
) -> AccountRequest:
    """A teacher asks for an account for a student of one of their classes.

    :raises PossibleDuplicate: an active student of that name is in the class or has that
        birth date, unless ``allow_duplicate`` (:mod:`server.domain.duplicates`).
    """
    if not actor.is_teacher:
        raise NotAllowed("Account requests are for teachers; admins can add the student directly.")
    if not given_name.strip() or not family_name.strip():
        raise RequiredValue("First name and last name are required.", field="given_name")
    klass = roster_views.get_class(session, actor, class_id)
    born = parse_date(birth_date, "birth_date")
    duplicates.refuse_duplicates(
        session,
        actor,
        given_name,
        family_name,
        birth_date=born,
        class_id=klass.id,
        allow_duplicate=allow_duplicate,
    )
    request = AccountRequest(
        tenant_id=actor.tenant_id,
        requested_by=actor.id,
        requester_name=actor.name,
        school_id=klass.school_id,
        class_id=klass.id,
        given_name=given_name.strip(),
        family_name=family_name.strip(),
        birth_date=born,
        note=(note or "").strip() or None,
    )
    session.add(request)
    session.flush()
    audit.record(
        session,
        actor,
        "account_request.submit",
        target_kind="account_request",
        target_id=request.id,
        target_label=f"{given_name} {family_name}",
    )
    return request


def list_requests(
    session: Session, actor: Actor, *, status: str | None = "pending"
) -> list[AccountRequest]:
    """Teachers see their own requests; school admins those for their schools; district all."""
    query = select(AccountRequest).where(_visible(actor))
    if status:
        query = query.where(AccountRequest.status == status)
    return list(session.scalars(query.order_by(AccountRequest.created_at)))


def count_waiting(session: Session, actor: Actor) -> int:
    """How many requests wait for this admin's decision (0 for teachers): the menu's count."""
    if actor.is_teacher or not (actor.is_district_admin or actor.role == "school_admin"):
        return 0
    query = select(func.count()).where(_visible(actor), AccountRequest.status == "pending")
    return int(session.scalar(query) or 0)


def _visible(actor: Actor) -> ColumnElement[bool]:
    in_tenant = AccountRequest.tenant_id == actor.tenant_id
    if actor.is_teacher:
        return and_(in_tenant, AccountRequest.requested_by == actor.id)
    if actor.role == "school_admin":
        return and_(in_tenant, AccountRequest.school_id.in_(actor.school_ids or ("",)))
    if actor.is_district_admin:
        return in_tenant
    raise NotAllowed("You cannot see account requests.")


def approve_request(
    session: Session,
    actor: Actor,
    request_id: str,
    *,
    box: SecretBox,
    allow_duplicate: bool = False,
) -> Approval:
    """Create the account, enrol it in the requested class and issue a temporary password.

    :raises PossibleDuplicate: the student may already have an active account (an admin may
        see matches the teacher could not), unless ``allow_duplicate``.
    """
    request = _pending(session, actor, request_id)
    duplicates.refuse_duplicates(
        session,
        actor,
        request.given_name,
        request.family_name,
        birth_date=request.birth_date,
        class_id=request.class_id,
        allow_duplicate=allow_duplicate,
    )
    user = users.create_user(
        session,
        actor,
        {
            "given_name": request.given_name,
            "family_name": request.family_name,
            "birth_date": request.birth_date,
            "primary_role": "student",
            "roles": [RoleAssignment(request.school_id, "student")],
        },
    )
    if request.class_id:
        roster.enroll(
            session, actor, user, roster_views.get_class(session, actor, request.class_id)
        )
    password = credentials.issue_temporary_password(session, actor, user, box=box)
    _decide(session, actor, request, "approved")
    request.user_id = user.id
    return Approval(user, password)


def decline_request(session: Session, actor: Actor, request_id: str, reason: str) -> AccountRequest:
    if not reason.strip():
        raise RequiredValue(
            "Say why the request is declined; the teacher will see it.", field="reason"
        )
    request = _pending(session, actor, request_id)
    request.decline_reason = reason.strip()
    request.given_name, request.family_name = (
        _initial(request.given_name),
        _initial(request.family_name),
    )
    request.birth_date, request.note = None, None
    _decide(session, actor, request, "declined")
    audit.relabel(session, actor.tenant_id, "account_request", request.id, _label(request))
    return request


def _initial(name: str) -> str:
    """``"Sherri"`` → ``"S."``: enough for the teacher to recognise a declined request."""
    return f"{name.strip()[:1].upper()}." if name.strip() else ""


def _label(request: AccountRequest) -> str:
    return f"{request.given_name} {request.family_name}"


def _pending(session: Session, actor: Actor, request_id: str) -> AccountRequest:
    if actor.is_teacher:
        raise NotAllowed("A school admin decides account requests.")
    request = session.get(AccountRequest, request_id)
    visible = (
        request is not None
        and request.tenant_id == actor.tenant_id
        and (actor.is_district_admin or request.school_id in actor.school_ids)
    )
    if not visible or request is None:
        raise NotFound("No such account request.")
    if request.status != "pending":
        raise Conflict(f"This request was already {request.status}.")
    return request


def _decide(session: Session, actor: Actor, request: AccountRequest, status: str) -> None:
    request.status, request.decided_by, request.decided_at = status, actor.name, utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        f"account_request.{status[:-1] if status.endswith('d') else status}",
        target_kind="account_request",
        target_id=request.id,
        target_label=_label(request),
        detail=request.decline_reason,
    )
