"""Retention: what is kept how long, enforced by one daily job (issue 12, points 1, 3 and 4).

One table, :data:`WINDOWS`, names every kind of record that grows and the tenant setting that
says for how many days it is kept (``docs/retention.md`` is the same table for people).
:func:`enforce` applies all of it in one tenant, in one unit of work:

1. deactivated students whose keep-until date passed are deleted (:func:`leaver_keep_until`:
   the end of the school year they left in, plus a grace period);
2. deleted users whose retention period (``retention_days``) is over are erased
   (:mod:`server.domain.erasure`), and so are deleted classes and enrollments;
3. every window of :data:`WINDOWS` is pruned;
4. a :class:`~server.db.PurgeRun` records when it ran and how many rows of what it removed.

``now`` is a parameter everywhere, so tests set the clock instead of waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import Session

from server.db import (
    AccountRequest,
    ActivationToken,
    AuditEvent,
    AuthorizationCode,
    BrowserSession,
    Connection,
    ImportRun,
    Job,
    LoginThrottle,
    OAuthToken,
    ProviderFailure,
    PurgeRun,
    RecordStatus,
    User,
    utcnow,
)
from server.domain import audit
from server.domain.actors import Actor
from server.domain.tenants import tenant_setting
from server.errors import InvalidValue

PURGE_JOB = "retention.purge"
EVERY = timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """Rows of ``model`` kept ``setting`` days after the moment ``condition`` measures from."""

    model: type
    setting: str
    description: str
    condition: Callable[[str, datetime], ColumnElement[bool]]


def _tenant_connections(tenant_id: str) -> Any:
    return select(Connection.id).where(Connection.tenant_id == tenant_id)


WINDOWS: dict[str, Window] = {
    "audit_events": Window(
        AuditEvent,
        "audit_retention_days",
        "audit events, reads included",
        lambda t, cut: (AuditEvent.tenant_id == t) & (AuditEvent.at < cut),
    ),
    "import_runs": Window(
        ImportRun,
        "import_retention_days",
        "applied import runs and their row results",
        lambda t, cut: (
            (ImportRun.tenant_id == t) & ~ImportRun.dry_run & (ImportRun.started_at < cut)
        ),
    ),
    "trial_runs": Window(
        ImportRun,
        "trial_run_retention_days",
        "trial (dry) runs and their row results",
        lambda t, cut: (
            (ImportRun.tenant_id == t) & ImportRun.dry_run & (ImportRun.started_at < cut)
        ),
    ),
    "oauth_codes": Window(
        AuthorizationCode,
        "oauth_code_retention_days",
        "used or expired authorization codes",
        lambda t, cut: (
            (AuthorizationCode.tenant_id == t)
            & or_(AuthorizationCode.used_at < cut, AuthorizationCode.expires_at < cut)
        ),
    ),
    "oauth_tokens": Window(
        OAuthToken,
        "token_retention_days",
        "expired or revoked OAuth tokens",
        lambda t, cut: (
            (OAuthToken.tenant_id == t)
            & or_(
                OAuthToken.revoked_at < cut,
                (OAuthToken.expires_at < cut)
                & or_(OAuthToken.refresh_expires_at.is_(None), OAuthToken.refresh_expires_at < cut),
            )
        ),
    ),
    "browser_sessions": Window(
        BrowserSession,
        "session_retention_days",
        "ended or expired browser sessions",
        lambda t, cut: (
            (BrowserSession.tenant_id == t)
            & or_(BrowserSession.ended_at < cut, BrowserSession.expires_at < cut)
        ),
    ),
    "activation_tokens": Window(
        ActivationToken,
        "token_retention_days",
        "used or expired activation links",
        lambda t, cut: (
            (ActivationToken.tenant_id == t)
            & or_(ActivationToken.used_at < cut, ActivationToken.expires_at < cut)
        ),
    ),
    "jobs": Window(
        Job,
        "job_retention_days",
        "finished or failed background jobs",
        lambda t, cut: (
            (Job.tenant_id == t)
            & Job.status.in_(("done", "failed", "dropped"))
            & (Job.finished_at < cut)
        ),
    ),
    "account_requests": Window(
        AccountRequest,
        "account_request_retention_days",
        "approved or declined account requests",
        lambda t, cut: (
            (AccountRequest.tenant_id == t)
            & (AccountRequest.status != "pending")
            & (AccountRequest.decided_at < cut)
        ),
    ),
    "provider_failures": Window(
        ProviderFailure,
        "provider_failure_retention_days",
        "refused requests of connections, with their excerpts",
        lambda t, cut: (
            ProviderFailure.connection_id.in_(_tenant_connections(t)) & (ProviderFailure.at < cut)
        ),
    ),
}
# Throttle rows belong to no tenant; a failure is forgotten after an hour anyway
# (server.domain.signin.FORGET_FAILURES_AFTER), so a day keeps every live delay.
THROTTLE_RETENTION = timedelta(days=1)


def leaver_keep_until(session: Session, tenant_id: str, deactivated_at: datetime) -> datetime:
    """When a student deactivated at ``deactivated_at`` is deleted: the next end of the school
    year (tenant setting ``school_year_end``, ``MM-DD``, default 31 July) on or after that day,
    plus ``leaver_grace_days`` (default 30).

    >>> # deactivated 2026-12-01 → school year ends 2027-07-31 → deleted from 2027-08-30
    """
    month, day = parse_month_day(str(tenant_setting(session, tenant_id, "school_year_end")))
    grace = int(tenant_setting(session, tenant_id, "leaver_grace_days"))
    end = date(deactivated_at.year, month, day)
    if end < deactivated_at.date():
        end = date(deactivated_at.year + 1, month, day)
    start_of_day = datetime.combine(end, datetime.min.time(), tzinfo=deactivated_at.tzinfo)
    return start_of_day + timedelta(days=1 + grace)


def parse_month_day(text: str) -> tuple[int, int]:
    """``"07-31"`` → ``(7, 31)``. :raises InvalidValue: not a real month and day."""
    try:
        month, day = (int(part) for part in text.split("-"))
        date(2000, month, day)
    except ValueError:
        raise InvalidValue(
            f"school_year_end must be MM-DD (such as 07-31), not {text!r}.",
            field="school_year_end",
        ) from None
    return month, day


def enforce(
    session: Session, actor: Actor, *, secret_key: str, now: datetime | None = None
) -> dict[str, int]:
    """Apply every retention rule in ``actor``'s tenant; returns the counts it recorded."""
    from server.domain import roster, users

    now = now or utcnow()
    for leaver in _undated_leavers(session, actor.tenant_id):
        leaver.purge_after = leaver_keep_until(session, actor.tenant_id, leaver.updated_at)
    counts = {
        "students_deleted": users.delete_due_leavers(session, actor, now=now),
        "users_purged": users.purge_deleted_users(session, actor, secret_key=secret_key, now=now),
        "records_purged": roster.purge_deleted_records(session, actor, now=now),
    }
    with audit.amending(session, "retention"):
        for name, window in WINDOWS.items():
            days = int(tenant_setting(session, actor.tenant_id, window.setting))
            condition = window.condition(actor.tenant_id, now - timedelta(days=days))
            result = session.execute(
                delete(window.model).where(condition).execution_options(synchronize_session=False)
            )
            counts[name] = result.rowcount or 0
    result = session.execute(
        delete(LoginThrottle)
        .where(LoginThrottle.last_failure_at < now - THROTTLE_RETENTION)
        .execution_options(synchronize_session=False)
    )
    counts["login_throttles"] = result.rowcount or 0
    session.add(PurgeRun(tenant_id=actor.tenant_id, ran_at=now, counts=counts))
    session.flush()
    return counts


def last_run(session: Session, tenant_id: str) -> PurgeRun | None:
    """The latest retention run of the tenant, for the staff app."""
    return session.scalars(
        select(PurgeRun).where(PurgeRun.tenant_id == tenant_id).order_by(PurgeRun.ran_at.desc())
    ).first()


def _undated_leavers(session: Session, tenant_id: str) -> list[User]:
    return list(
        session.scalars(
            select(User).where(
                User.tenant_id == tenant_id,
                User.status == RecordStatus.INACTIVE,
                User.primary_role == "student",
                User.purge_after.is_(None),
            )
        )
    )


def enqueue_due_purges(session: Session, *, now: datetime | None = None) -> int:
    """Queue the retention job of every tenant whose last run is a day old (or that never ran)
    and has none queued; the worker calls this on each poll. Returns how many were queued."""
    from server.domain import jobs
    from server.domain.tenants import list_tenants

    now = now or utcnow()
    waiting = set(
        session.scalars(
            select(Job.tenant_id).where(
                Job.kind == PURGE_JOB, Job.status.in_(("queued", "running"))
            )
        )
    )
    queued = 0
    for tenant in list_tenants(session):
        latest = last_run(session, tenant.id)
        if tenant.id in waiting or (latest is not None and now - latest.ran_at < EVERY):
            continue
        jobs.enqueue(session, PURGE_JOB, {"tenant_id": tenant.id}, tenant_id=tenant.id)
        queued += 1
    return queued


def purge_runner(secret_key: str) -> Callable[[Session, Job], None]:
    """The worker's runner for :data:`PURGE_JOB`: :func:`enforce` in the job's tenant."""
    from server.domain.actors import system_actor

    def run(session: Session, job: Job) -> None:
        tenant_id = str((job.payload or {}).get("tenant_id") or job.tenant_id)
        enforce(session, system_actor(tenant_id, "retention"), secret_key=secret_key)

    return run
