"""Outgoing email over SMTP (``ROLLCALL_SMTP_URL``), sent from background jobs with retries.

URL forms: ``smtp://host:25``, ``smtp+starttls://user:pass@host:587``, ``smtps://host:465``;
``?from=noreply@district.org`` sets the sender.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy.orm import Session

from server.config import Settings
from server.db import Job
from server.domain import jobs
from server.domain.actors import system_actor
from server.domain.audit import record
from server.domain.invitations import ACTIVATION, activation_message
from server.domain.outbox import EMAIL_JOB, queue_email

__all__ = ["EMAIL_JOB", "email_runner", "queue_email", "send"]


def email_runner(settings: Settings) -> jobs.Runner:
    """The job runner that delivers queued email through the configured SMTP server."""

    def run(session: Session, job: Job) -> None:
        if not settings.smtp_url:
            raise RuntimeError("ROLLCALL_SMTP_URL is not set: email cannot be sent")
        payload = dict(job.payload or {})
        if payload.get("template") == ACTIVATION:
            message = activation_message(session, payload)
            if message is None:
                _audit(session, job, "email.dropped", "Activation email dropped: account gone.")
                return
            to, subject, body = message.to, message.subject, message.body
        else:
            to, subject, body = payload["to"], payload["subject"], payload["body"]
        send(settings.smtp_url, to, subject, body)
        _audit(session, job, "email.sent", f"{subject} → {to}")

    return run


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
