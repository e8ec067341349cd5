"""Retention: what is kept how long, enforced by one daily job (issue 12, points 1, 3 and 4).

One table, :data:`WINDOWS`, names every kind of record that grows and the tenant setting that
says for how many days it is kept (``docs/retention.md`` is the same table for people).
:func:`enforce` applies all of it in one tenant, in one unit of work:

1. deactivated students whose keep-until date passed are deleted
   (:func:`server.domain.leavers.leaver_keep_until`:
   the end of the school year they left in, plus a grace period);
2. deleted users whose retention period (``retention_days``) is over are erased
   (:mod:`server.domain.erasure`), and so are deleted classes and enrollments;
3. every window of :data:`WINDOWS` is pruned;
4. a :class:`~server.db.PurgeRun` records when it ran and how many rows of what it removed.

``now`` is a parameter everywhere, so tests set the clock instead of waiting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.engine import CursorResult
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
from server.domain import audit, erasure, import_runs, pseudonyms, roster_status, users
from server.domain.actors import Actor
from server.domain.leavers import leaver_keep_until
from server.domain.signin import account_key, staff_account_key
from server.domain.tenants import tenant_setting

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
        "approved account requests",
        lambda t, cut: (
            (AccountRequest.tenant_id == t)
            & (AccountRequest.status == "approved")
            & (AccountRequest.decided_at < cut)
        ),
    ),
    # A declined request made no account: initials only from the decision, then removed soon.
    "declined_requests": Window(
        AccountRequest,
        "declined_request_retention_days",
        "declined account requests (initials only from the decision)",
        lambda t, cut: (
            (AccountRequest.tenant_id == t)
            & (AccountRequest.status == "declined")
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


def enforce(
    session: Session,
    actor: Actor,
    *,
    secret_key: str | Sequence[str],
    now: datetime | None = None,
) -> dict[str, int]:
    """Apply every retention rule in ``actor``'s tenant; returns the counts it recorded.

    ``secret_key`` is the key ring (current key first), which opens the tenant's pseudonym key.
    """
    now = now or utcnow()
    for leaver in _undated_leavers(session, actor.tenant_id):
        leaver.purge_after = leaver_keep_until(session, actor.tenant_id, leaver.updated_at)
    counts = {
        "students_deleted": delete_due_leavers(session, actor, now=now),
        "users_purged": purge_deleted_users(session, actor, secret_key=secret_key, now=now),
        "records_purged": roster_status.purge_deleted_records(session, actor, now=now),
    }
    with audit.amending(session, "retention"):
        for name, window in WINDOWS.items():
            days = int(tenant_setting(session, actor.tenant_id, window.setting))
            condition = window.condition(actor.tenant_id, now - timedelta(days=days))
            if window.model is ImportRun:  # rows a later run reports move into it first
                import_runs.keep_referred_rows(session, condition)
            result = session.execute(
                delete(window.model).where(condition).execution_options(synchronize_session=False)
            )
            counts[name] = cast("CursorResult[Any]", result).rowcount or 0
    result = session.execute(
        delete(LoginThrottle)
        .where(LoginThrottle.last_failure_at < now - THROTTLE_RETENTION)
        .execution_options(synchronize_session=False)
    )
    counts["login_throttles"] = cast("CursorResult[Any]", result).rowcount or 0
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


def purge_runner(secret_key: str | Sequence[str]) -> Callable[[Session, Job], None]:
    """The worker's runner for :data:`PURGE_JOB`: :func:`enforce` in the job's tenant."""
    from server.domain.actors import system_actor

    def run(session: Session, job: Job) -> None:
        tenant_id = str((job.payload or {}).get("tenant_id") or job.tenant_id)
        enforce(session, system_actor(tenant_id, "retention"), secret_key=secret_key)

    return run


def delete_due_leavers(session: Session, actor: Actor, *, now: datetime | None = None) -> int:
    """Delete the deactivated students whose keep-until date (``purge_after``, set when they
    were deactivated: see :func:`server.domain.leavers.leaver_keep_until`) has passed."""
    due = _past_keep_until(session, actor.tenant_id, RecordStatus.INACTIVE, now)
    for user in due:
        users.delete_user(
            session,
            actor,
            user,
            override=True,
            reason="Deactivated student kept until the end of the school year and grace period.",
            now=now,
        )
    return len(due)


def purge_deleted_users(
    session: Session, actor: Actor, *, secret_key: str | Sequence[str], now: datetime | None = None
) -> int:
    """Erase the deleted users whose retention period is over (:mod:`server.domain.erasure`):
    nothing of them stays but a pseudonym in the audit log. Returns how many."""
    due = _past_keep_until(session, actor.tenant_id, RecordStatus.DELETED, now)
    key = pseudonyms.tenant_key(session, actor.tenant_id, secret_key) if due else b""
    for user in due:
        keys = [
            account_key(user.tenant_id, user.username, key),
            staff_account_key(user.tenant_id, user.username, key),
        ]
        alias = erasure.purge_user(session, user, pseudonym_key=key, throttle_keys=keys)
        audit.record(session, actor, "user.purge", target_kind="user", target_id=alias)
    session.flush()
    return len(due)


def _past_keep_until(
    session: Session, tenant_id: str, status: str, now: datetime | None
) -> Sequence[User]:
    """The tenant's users in ``status`` whose ``purge_after`` has passed."""
    return session.scalars(
        select(User).where(
            User.tenant_id == tenant_id,
            User.status == status,
            User.purge_after <= (now or utcnow()),
        )
    ).all()
