"""Staff workflow records: teachers' account requests, and the background job queue."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, new_id, utcnow


class AccountRequest(Base):
    """A teacher's request for a new student account, approved or declined by a school admin."""

    __tablename__ = "account_requests"
    __table_args__ = (Index("ix_account_requests_tenant_status", "tenant_id", "status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    requested_by: Mapped[str] = mapped_column(ForeignKey("staff_accounts.id", ondelete="CASCADE"))
    requester_name: Mapped[str]
    school_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    class_id: Mapped[str | None] = mapped_column(ForeignKey("classes.id", ondelete="SET NULL"))
    given_name: Mapped[str]
    family_name: Mapped[str]
    birth_date: Mapped[date | None]
    note: Mapped[str | None] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    decided_by: Mapped[str | None]
    decided_at: Mapped[datetime | None]
    decline_reason: Mapped[str | None] = mapped_column(String(1000))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    """A unit of background work (an email, a scheduled pull, the purge), queued in the database.

    Whichever process holds the lease runs it; an expired lease (a crashed process) lets
    another take it over. ``attempts`` counts tries for retries with back-off.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_due", "status", "run_after"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(12), default="queued")
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    last_error: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class FormSubmission(Base):
    """A one-time form token, claimed by the first post of a form (POST/redirect/GET).

    A repeated post of the same token (a reload, a double click) is answered with the first
    post's ``result_location`` instead of making the change again; a secret the result shows
    (a new password or bearer token) is kept sealed for a short while so the result page can
    be reloaded.
    """

    __tablename__ = "form_submissions"
    __table_args__ = (Index("ix_form_submissions_created", "created_at"),)

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff_accounts.id", ondelete="CASCADE"))
    result_location: Mapped[str | None] = mapped_column(String(2000))
    sealed_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
