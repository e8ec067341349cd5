"""Activation emails: a one-time link per student, sent only to accounts with an address.

Bulk sends never stop at one bad account: each student is sent a link or skipped with the
reason (no email address, SSO-linked, inactive, not one of the caller's students).

The queued job holds only a reference (the user id); the link is minted when the worker sends
the message (:func:`activation_message`), so no working link ever sits in the job queue or a
backup of it. A message for a student who was purged, deleted or deactivated in the meantime
is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import Job, RecordStatus, User
from server.domain import audit
from server.domain import users as users_domain
from server.domain.activation import LINK_LIFETIME, create_activation_link, ensure_may_activate
from server.domain.actors import Actor, system_actor
from server.domain.credentials import not_a_student
from server.domain.outbox import EMAIL_JOB, NEW_PASSWORD, queue_reference
from server.errors import DomainError, InvalidValue, NotAllowed

ACTIVATION = "activation"
NO_MAIL = (
    "Email is not set up on this server, so no activation email can be sent. "
    "Print one-time activation QR codes instead."
)
RECENT_EMAILS = 500
KINDS = {ACTIVATION: "Activation email", NEW_PASSWORD: "New password"}
MAX_MESSAGE = 1000


@dataclass(frozen=True)
class Delivery:
    """One activation email as the job queue knows it."""

    to: str
    status: str  # "sent", "failed" or "waiting"
    at: datetime
    error: str | None = None
    what: str = "Email"  # "Activation email", "New password"


@dataclass(frozen=True)
class InvitationOutcome:
    user: User
    sent_to: str | None = None
    skipped: str | None = None


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    body: str


def send_activation_emails(
    session: Session,
    actor: Actor,
    users: Iterable[User],
    *,
    issuer: str,
    school_name: str = "",
    students_only: bool = False,
    mail_configured: bool = True,
    message: str = "",
) -> list[InvitationOutcome]:
    """Queue an activation email for each user (audited); skipped users say why. A bulk send
    (``students_only``) skips staff such as the class's teacher (issue 14, item 4). Staff may
    add a ``message`` of their own above the link (item 14).

    :raises NotAllowed: no mail server is configured, so nothing would ever be sent (item 6).
    """
    if not mail_configured:
        raise NotAllowed(NO_MAIL)
    message = message.strip()
    if len(message) > MAX_MESSAGE:
        raise InvalidValue(
            f"The message is {len(message)} characters long; keep it under {MAX_MESSAGE}.",
            field="message",
        )
    outcomes = []
    for user in users:
        if students_only and (reason := not_a_student(user)) is not None:
            outcomes.append(InvitationOutcome(user, skipped=reason))
            continue
        try:
            ensure_may_activate(session, actor, user, by_email=True)
        except DomainError as error:
            outcomes.append(InvitationOutcome(user, skipped=error.message))
            continue
        reference = {"user_id": user.id, "issuer": issuer, "school_name": school_name}
        if message:
            reference["message"] = message
        queue_reference(session, user.tenant_id, ACTIVATION, reference)
        audit.record(
            session,
            actor,
            "credential.activation_email",
            target_kind="user",
            target_id=user.id,
            target_label=user.username,
            detail="Activation email queued; the link is made when it is sent.",
        )
        outcomes.append(InvitationOutcome(user, sent_to=user.email))
    return outcomes


def activation_message(session: Session, payload: dict[str, Any]) -> Message | None:
    """The message of a queued activation email, with a link minted now; None (drop it) when
    the student is gone, deleted, deactivated, SSO-linked or has no address any more."""
    user = session.get(User, str(payload.get("user_id") or ""))
    if user is None or user.status != RecordStatus.ACTIVE:
        return None
    try:
        link = create_activation_link(session, system_actor(user.tenant_id, "mailer"), user)
    except DomainError:
        return None
    url = link.url(str(payload.get("issuer") or ""))
    school = str(payload.get("school_name") or "")
    body = _body(user, url, school, str(payload.get("message") or ""))
    return Message(user.email or "", "Activate your account", body)


def deliveries(session: Session, actor: Actor, user: User, *, limit: int = 5) -> list[Delivery]:
    """The latest emails queued about ``user`` (visible to ``actor``), newest first: sent,
    failed (with the reason) or still waiting."""
    visible = users_domain.get_user(session, actor, user.id)
    recent = session.scalars(
        select(Job)
        .where(Job.tenant_id == visible.tenant_id, Job.kind == EMAIL_JOB)
        .order_by(Job.created_at.desc())
        .limit(RECENT_EMAILS)
    )
    found = [job for job in recent if (job.payload or {}).get("user_id") == visible.id]
    return [_delivery(job, visible) for job in found[:limit]]


def latest_deliveries(
    session: Session, actor: Actor, user_ids: Iterable[str], template: str
) -> dict[str, Delivery]:
    """The latest ``template`` email about each of ``user_ids`` (visible to ``actor``): what a
    bulk action's page shows per student (sent, failed or waiting)."""
    visible = {uid: users_domain.get_user(session, actor, uid) for uid in user_ids}
    found: dict[str, Delivery] = {}
    recent = session.scalars(
        select(Job)
        .where(Job.tenant_id == actor.tenant_id, Job.kind == EMAIL_JOB)
        .order_by(Job.created_at.desc(), Job.id)
        .limit(RECENT_EMAILS)
    )
    for job in recent:
        payload = job.payload or {}
        uid = payload.get("user_id")
        if payload.get("template") == template and uid in visible and uid not in found:
            found[uid] = _delivery(job, visible[uid])
    return found


def _delivery(job: Job, user: User) -> Delivery:
    to = str(job.payload.get("to") or user.email or "")  # a reference job: the current address
    what = KINDS.get(str(job.payload.get("template") or ""), "Email")
    if job.status == "done":
        return Delivery(to, "sent", job.finished_at or job.created_at, what=what)
    if job.status == "failed":
        return Delivery(to, "failed", job.finished_at or job.created_at, job.last_error, what)
    return Delivery(to, "waiting", job.created_at, job.last_error, what)


def _body(user: User, url: str, school_name: str, message: str = "") -> str:
    days = LINK_LIFETIME.days
    where = f" at {school_name}" if school_name else ""
    note = f"{message}\n\n" if message else ""
    return (
        f"Hello {user.preferred_given_name or user.given_name},\n\n"
        f"{note}"
        f"An account{where} is ready for you. Your username is: {user.username}\n\n"
        f"Open this link to choose your password (it works once, for {days} days):\n{url}\n\n"
        "If you did not expect this email, ask your teacher.\n"
    )
