"""Emailing a reset's new temporary password to the account's own address (issue 14, item 14;
Missouri Connections does this).

Staff tick "email the new password" on a single or bulk reset. The job queue holds only a
reference (the user id and when the password was issued), never the password: the worker opens
the sealed temporary password (SPEC §6, kept while the account is ``issued``) when it sends the
message, and audits that reveal. A message whose password is no longer the current temporary
one (the student signed in and chose their own, or a newer reset replaced it), or whose
student was deactivated, deleted or purged, is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from server.db import CredentialState, RecordStatus, User
from server.domain import audit, credentials
from server.domain.actors import Actor, system_actor
from server.domain.invitations import InvitationOutcome, Message
from server.domain.outbox import NEW_PASSWORD, queue_reference
from server.domain.secrets import SecretBox
from server.errors import NotAllowed

NO_MAIL = (
    "Email is not set up on this server, so new passwords cannot be emailed: nothing was "
    "reset. Reset without emailing and print the passwords instead."
)
NO_ADDRESS = "no email address on the account: hand the password over on paper"


def ensure_mail_configured(mail_configured: bool) -> None:
    """:raises NotAllowed: no mail server (``ROLLCALL_SMTP_URL``), so nothing would be sent."""
    if not mail_configured:
        raise NotAllowed(NO_MAIL)


def email_new_passwords(
    session: Session, actor: Actor, users: Iterable[User], *, issuer: str
) -> list[InvitationOutcome]:
    """Queue the new temporary password of each just-reset user to their address (audited);
    users without an address, or whose password is not a temporary one, are skipped."""
    outcomes = []
    for user in users:
        credential = user.credential
        if not user.email:
            outcomes.append(InvitationOutcome(user, skipped=NO_ADDRESS))
            continue
        if credential is None or credential.state != CredentialState.ISSUED:
            outcomes.append(InvitationOutcome(user, skipped="no temporary password to send"))
            continue
        reference = {
            "user_id": user.id,
            "issuer": issuer,
            "issued_at": _stamp(credential.issued_at),
        }
        queue_reference(session, user.tenant_id, NEW_PASSWORD, reference)
        audit.record(
            session,
            actor,
            "credential.password_email",
            target_kind="user",
            target_id=user.id,
            target_label=user.username,
            detail="New temporary password queued for email; it is read when it is sent.",
        )
        outcomes.append(InvitationOutcome(user, sent_to=user.email))
    return outcomes


def new_password_message(
    session: Session, payload: dict[str, Any], box: SecretBox
) -> Message | None:
    """The message of a queued new-password email, the password opened now (audited as a
    reveal by the mailer); None (drop it) when that password is no longer the current one."""
    user = session.get(User, str(payload.get("user_id") or ""))
    if user is None or user.status != RecordStatus.ACTIVE or not user.email:
        return None
    credential = user.credential
    if credential is None or credential.state != CredentialState.ISSUED:
        return None
    if _stamp(credential.issued_at) != payload.get("issued_at"):
        return None  # a newer reset replaced it (that one has its own email, if asked)
    if credential.temporary_secret is None:
        return None
    mailer = system_actor(user.tenant_id, "mailer")
    password = credentials.reveal_temporary_password(session, mailer, user, box=box)
    address = str(payload.get("issuer") or "").rstrip("/") + "/login"
    return Message(user.email, "Your new password", _body(user, password, address))


def _stamp(moment: datetime | None) -> str:
    """When a password was issued, the same whether the database kept the time zone or not."""
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def _body(user: User, password: str, address: str) -> str:
    return (
        f"Hello {user.preferred_given_name or user.given_name},\n\n"
        "Your password was reset by your school.\n\n"
        f"Username: {user.username}\n"
        f"Temporary password: {password}\n\n"
        f"Sign in at {address}. You will be asked to choose your own password, and this one "
        "stops working.\n\n"
        "If you did not expect this email, tell your teacher.\n"
    )
