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
from typing import Any

from sqlalchemy.orm import Session

from server.db import RecordStatus, User
from server.domain import audit
from server.domain.activation import LINK_LIFETIME, create_activation_link, ensure_may_activate
from server.domain.actors import Actor, system_actor
from server.domain.outbox import queue_reference
from server.errors import DomainError

ACTIVATION = "activation"


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
    session: Session, actor: Actor, users: Iterable[User], *, issuer: str, school_name: str = ""
) -> list[InvitationOutcome]:
    """Queue an activation email for each user (audited); skipped users say why."""
    outcomes = []
    for user in users:
        try:
            ensure_may_activate(session, actor, user, by_email=True)
        except DomainError as error:
            outcomes.append(InvitationOutcome(user, skipped=error.message))
            continue
        queue_reference(
            session,
            user.tenant_id,
            ACTIVATION,
            {"user_id": user.id, "issuer": issuer, "school_name": school_name},
        )
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
    body = _body(user, url, str(payload.get("school_name") or ""))
    return Message(user.email or "", "Activate your account", body)


def _body(user: User, url: str, school_name: str) -> str:
    days = LINK_LIFETIME.days
    where = f" at {school_name}" if school_name else ""
    return (
        f"Hello {user.preferred_given_name or user.given_name},\n\n"
        f"An account{where} is ready for you. Your username is: {user.username}\n\n"
        f"Open this link to choose your password (it works once, for {days} days):\n{url}\n\n"
        "If you did not expect this email, ask your teacher.\n"
    )
