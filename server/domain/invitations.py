"""Activation emails: a one-time link per student, sent only to accounts with an address.

Bulk sends never stop at one bad account: each student is sent a link or skipped with the
reason (no email address, SSO-linked, inactive, not one of the caller's students).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from server.db import User
from server.domain.activation import LINK_LIFETIME, create_activation_link
from server.domain.actors import Actor
from server.domain.credentials import not_a_student
from server.domain.outbox import queue_email
from server.errors import DomainError


@dataclass(frozen=True)
class InvitationOutcome:
    user: User
    sent_to: str | None = None
    skipped: str | None = None


def send_activation_emails(
    session: Session,
    actor: Actor,
    users: Iterable[User],
    *,
    issuer: str,
    school_name: str = "",
    students_only: bool = False,
) -> list[InvitationOutcome]:
    """Create a link for each user and queue the email; skipped users say why. A bulk send
    (``students_only``) skips staff such as the class's teacher (issue 14, item 4)."""
    outcomes = []
    for user in users:
        if students_only and (reason := not_a_student(user)) is not None:
            outcomes.append(InvitationOutcome(user, skipped=reason))
            continue
        try:
            link = create_activation_link(session, actor, user)
        except DomainError as error:
            outcomes.append(InvitationOutcome(user, skipped=error.message))
            continue
        queue_email(
            session,
            user.tenant_id,
            user.email or "",
            "Activate your account",
            _body(user, link.url(issuer), school_name),
            about_user=user.id,
        )
        outcomes.append(InvitationOutcome(user, sent_to=user.email))
    return outcomes


def _body(user: User, url: str, school_name: str) -> str:
    days = LINK_LIFETIME.days
    where = f" at {school_name}" if school_name else ""
    return (
        f"Hello {user.preferred_given_name or user.given_name},\n\n"
        f"An account{where} is ready for you. Your username is: {user.username}\n\n"
        f"Open this link to choose your password (it works once, for {days} days):\n{url}\n\n"
        "If you did not expect this email, ask your teacher.\n"
    )
