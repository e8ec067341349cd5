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
from server.domain.outbox import EMAIL_JOB, queue_email

__all__ = ["EMAIL_JOB", "email_runner", "queue_email", "send"]


def email_runner(settings: Settings) -> jobs.Standalone:
    """The job runner that delivers queued email through the configured SMTP server.

    The message is sent outside any unit of work (a slow mail server must not hold the
    database), then the send is audited as the job is marked done.
    """

    def deliver(payload: dict[str, Any]) -> None:
        if not settings.smtp_url:
            raise RuntimeError("ROLLCALL_SMTP_URL is not set: email cannot be sent")
        send(settings.smtp_url, payload["to"], payload["subject"], payload["body"])

    def audit_send(session: Session, job: Job, _: None) -> None:
        if job.tenant_id:
            record(
                session,
                system_actor(job.tenant_id, "mailer"),
                "email.sent",
                target_kind="user",
                target_id=job.payload.get("user_id"),
                detail=f"{job.payload['subject']} → {job.payload['to']}",
            )

    return jobs.Standalone(deliver, audit_send)


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
