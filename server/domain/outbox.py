"""Outgoing email as the domain sees it: a message queued for the background worker.

Queuing writes a job in the same unit of work as the change that caused it, so an email is
sent only if that change commits; :mod:`server.mail` delivers it over SMTP with retries.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from server.domain import jobs

EMAIL_JOB = "email"
NEW_PASSWORD = "new_password"  # a reset's new temporary password (server.domain.password_emails)


def queue_email(
    session: Session,
    tenant_id: str,
    to: str,
    subject: str,
    body: str,
    *,
    about_user: str | None = None,
) -> None:
    """Queue one message; the worker sends it and audits the send."""
    payload = {"to": to, "subject": subject, "body": body, "user_id": about_user}
    jobs.enqueue(session, EMAIL_JOB, payload, tenant_id=tenant_id)


def queue_reference(
    session: Session, tenant_id: str, template: str, reference: dict[str, str]
) -> None:
    """Queue a message that the worker writes when it sends it (``template``, e.g. an
    activation email): the job holds only ``reference`` (ids), never the message."""
    jobs.enqueue(session, EMAIL_JOB, {"template": template, **reference}, tenant_id=tenant_id)
