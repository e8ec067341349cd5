"""Outgoing email over SMTP (``ROLLCALL_SMTP_URL``), sent from background jobs with retries.

URL forms: ``smtp://host:25``, ``smtp+starttls://user:pass@host:587``, ``smtps://host:465``;
``?from=noreply@district.org`` sets the sender.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy.orm import Session

from server.config import Settings
from server.db import Job
from server.domain import jobs
from server.domain.actors import system_actor
from server.domain.audit import record
from server.domain.invitations import ACTIVATION, activation_message
from server.domain.outbox import EMAIL_JOB, NEW_PASSWORD, queue_email
from server.domain.password_emails import new_password_message
from server.domain.secrets import SecretBox

__all__ = ["EMAIL_JOB", "email_runner", "queue_email", "send"]


def email_runner(settings: Settings) -> jobs.Standalone:
    """The job runner that delivers queued email through the configured SMTP server.

    An activation email's link is minted when the job is taken (the queue holds only the
    user's id), and the mail is dropped when the student is gone or deactivated; a reset's
    new-password email opens the sealed temporary password then, the same way. The message
    is sent outside any unit of work (a slow mail server must not hold the database), then
    the send is audited as the job is marked done.
    """

    def prepare(session: Session, job: Job) -> dict[str, Any] | None:
        if not settings.smtp_url:
            raise RuntimeError("ROLLCALL_SMTP_URL is not set: email cannot be sent")
        payload = dict(job.payload or {})
        if payload.get("template") == ACTIVATION:
            message = activation_message(session, payload)
            dropped = "Activation email dropped: account gone."
        elif payload.get("template") == NEW_PASSWORD:
            message = new_password_message(session, payload, SecretBox(settings.secret_keys))
            dropped = "New-password email dropped: that password is no longer the current one."
        else:
            return payload
        if message is None:
            _audit(session, job, "email.dropped", dropped)
            return None
        return {"to": message.to, "subject": message.subject, "body": message.body}

    def deliver(message: dict[str, Any] | None) -> dict[str, Any] | None:
        if message is not None and settings.smtp_url:
            send(settings.smtp_url, message["to"], message["subject"], message["body"])
        return message

    def audit_send(session: Session, job: Job, message: dict[str, Any] | None) -> None:
        if message is not None:
            _audit(session, job, "email.sent", f"{message['subject']} → {message['to']}")

    return jobs.Standalone(deliver, audit_send, prepare=prepare)


def _audit(session: Session, job: Job, action: str, detail: str) -> None:
    if job.tenant_id:
        record(
            session,
            system_actor(job.tenant_id, "mailer"),
            action,
            target_kind="user",
            target_id=(job.payload or {}).get("user_id"),
            detail=detail,
        )


def send(smtp_url: str, to: str, subject: str, body: str) -> None:
    parts = urlsplit(smtp_url)
    sender = parse_qs(parts.query).get("from", ["rollcall@localhost"])[0]
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message.set_content(body)
    port = parts.port or (465 if parts.scheme == "smtps" else 25)
    client_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    with client_class(parts.hostname or "localhost", port, timeout=30) as client:
        if parts.scheme == "smtp+starttls":
            client.starttls()
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(message)
