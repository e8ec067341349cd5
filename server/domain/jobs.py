"""The background job queue (SPEC §9): queued in the database, run by whichever process leases
a job first.

On PostgreSQL a worker claims due jobs with ``SELECT … FOR UPDATE SKIP LOCKED``, so several
processes never take the same job; on SQLite the write lock serialises claims. A running job's
lease (45 s by default, ``ROLLCALL_JOB_LEASE_SECONDS``) is renewed by a heartbeat every third
of it; a job whose lease expired (its process died) is claimed again within about one lease.
Failures are logged with their reason and retried with exponential back-off up to
``max_attempts``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from server import metrics
from server.db import Connection, Job, utcnow
from server.domain import leases
from server.domain.access import ensure_can_manage_connections
from server.domain.actors import Actor
from server.errors import Interrupted
from server.logs import request_id

LEASE = leases.LEASE
WORKER_ID = leases.OWNER
log = logging.getLogger("rollcall.jobs")


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    tenant_id: str | None = None,
    max_attempts: int = 5,
) -> Job:
    cause = request_id.get()
    if cause:  # the job's log lines carry the id of the request that queued it
        payload = {**payload, "request_id": cause}
    job = Job(kind=kind, payload=payload, tenant_id=tenant_id, max_attempts=max_attempts)
    session.add(job)
    session.flush()
    return job


def enqueue_for_connection(session: Session, kind: str, connection: Connection) -> Job:
    """Queue one try of a connection's background work (a scheduled pull, a drop-folder scan);
    the payload names the connection, the runner resolves it when the job runs."""
    payload = {
        "tenant_id": connection.tenant_id,
        "connection": connection.name,
        "connection_id": connection.id,
    }
    return enqueue(session, kind, payload, tenant_id=connection.tenant_id, max_attempts=1)


def claim(
    session: Session, *, limit: int = 10, worker: str = WORKER_ID, lease: timedelta = LEASE
) -> list[Job]:
    """Lease up to ``limit`` due jobs for ``worker`` (commit promptly to publish the lease)."""
    now = utcnow()
    query = (
        select(Job)
        .where(
            Job.run_after <= now,
            or_(
                Job.status == "queued",
                (Job.status == "running") & (Job.lease_until < now),
            ),
        )
        .order_by(Job.run_after)
        .limit(limit)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    jobs = list(session.scalars(query))
    for job in jobs:
        job.status, job.lease_owner, job.lease_until = "running", worker, now + lease
        job.attempts += 1
    session.flush()
    return jobs


def finish(session: Session, job: Job) -> None:
    job.status, job.finished_at, job.lease_until = "done", utcnow(), None


def fail(session: Session, job: Job, error: str) -> None:
    """Record a failure: retry later with back-off, or give up after ``max_attempts``."""
    job.last_error = error[:2000]
    job.lease_until = None
    if job.attempts >= job.max_attempts:
        job.status, job.finished_at = "failed", utcnow()
    else:
        job.status = "queued"
        job.run_after = utcnow() + timedelta(seconds=min(3600, 2**job.attempts * 5))


def requeue(session: Session, job: Job, reason: str) -> None:
    """Put back a job its process stopped (a shutdown): not an attempt, another process or
    the next start runs it."""
    job.status, job.lease_owner, job.lease_until = "queued", None, None
    job.attempts = max(job.attempts - 1, 0)
    job.last_error = reason[:2000]


Runner = Callable[[Session, Job], None]


class Standalone:
    """A runner whose work happens outside any unit of work: a sync writes in transactions of
    its own, an email waits on a mail server. It gets the job's payload, never a session, so
    it holds no lock (SQLite's single write lock above all) while it works; ``record``, if
    given, then writes its outcome in the short unit of work that marks the job done.
    ``prepare``, if given, turns the job into what ``work`` gets, in the short unit of work
    that reads the job (an activation email mints its link there)."""

    def __init__(
        self,
        work: Callable[[Any], Any],
        record: Callable[[Session, Job, Any], None] | None = None,
        prepare: Callable[[Session, Job], Any] | None = None,
    ) -> None:
        self.work = work
        self.record = record
        self.prepare = prepare

    def input_of(self, session: Session, job: Job) -> Any:
        """What ``work`` gets: the prepared input, or a copy of the payload."""
        return self.prepare(session, job) if self.prepare else dict(job.payload or {})

    def __call__(self, session: Session, job: Job) -> None:
        result = self.work(self.input_of(session, job))
        if self.record:
            self.record(session, job, result)


def run_due(
    database: Any,
    runners: dict[str, Runner],
    *,
    limit: int = 10,
    worker: str = WORKER_ID,
    lease: timedelta = LEASE,
    heartbeat: timedelta = leases.HEARTBEAT,
    until: threading.Event | None = None,
) -> int:
    """Claim due jobs one at a time and run each in its own unit of work, its lease renewed
    by a heartbeat while it runs; returns how many ran (at most ``limit``, none once ``until``
    is set: the process is stopping).

    One at a time: a claimed job is never left waiting behind others while its lease runs
    out, so a dead worker's job is taken over within one lease (45 s), not after a batch.
    """
    ran = 0
    while ran < limit and not (until is not None and until.is_set()):
        with database.session() as session:
            claimed = [job.id for job in claim(session, limit=1, worker=worker, lease=lease)]
        if not claimed:
            break
        ran += 1
        job_id = claimed[0]
        renew = partial(leases.renew_job, job_id=job_id, owner=worker, lease=lease)
        with leases.Heartbeat(database, renew, heartbeat, what=f"job {job_id}"):
            _run_one(database, runners, job_id)
    return ran


def _run_one(database: Any, runners: dict[str, Runner], job_id: str) -> None:
    with database.session() as session:
        cause = (session.get(Job, job_id).payload or {}).get("request_id")
    token = request_id.set(cause)
    try:
        _run_job(database, runners, job_id)
    finally:
        request_id.reset(token)


def _run_job(database: Any, runners: dict[str, Runner], job_id: str) -> None:
    try:
        with database.session() as session:
            job = session.get(Job, job_id)
            runner = runners[job.kind]
            alone = runner if isinstance(runner, Standalone) else None
            if alone is not None:
                payload = alone.input_of(session, job)
            else:
                runner(session, job)
                finish(session, job)
        if alone is not None:
            result = alone.work(payload)
            with database.session() as session:
                job = session.get(Job, job_id)
                if alone.record:
                    alone.record(session, job, result)
                finish(session, job)
    except Interrupted as stop:
        with database.session() as session:
            job = session.get(Job, job_id)
            requeue(session, job, f"Interrupted by {stop.reason}; queued again.")
            kind = job.kind
        log.warning("job interrupted; queued again", extra={"job": job_id, "kind": kind})
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        with database.session() as session:
            job = session.get(Job, job_id)
            fail(session, job, reason)
            status, attempts, kind = job.status, job.attempts, job.kind
        metrics.JOB_FAILURES.labels(kind).inc()
        log.warning(
            "job failed" if status == "failed" else "job failed; will retry",
            extra={"job": job_id, "kind": kind, "attempt": attempts, "reason": reason},
        )


# --- what staff see of the queue ------------------------------------------------------------


@dataclass(frozen=True)
class QueueReport:
    """The tenant's queue as a district admin sees it: counts by state, and the jobs that wait,
    run or failed (never a payload: an email's body holds an activation link)."""

    waiting: int
    running: int
    failed: int
    jobs: list[Job]


def queue_report(session: Session, actor: Actor, *, limit: int = 50) -> QueueReport:
    """The queue of the actor's tenant.

    :raises NotAllowed: unless the actor is a district admin.
    """
    ensure_can_manage_connections(actor)
    mine = Job.tenant_id == actor.tenant_id
    counts = dict(
        session.execute(select(Job.status, func.count()).where(mine).group_by(Job.status)).all()
    )
    shown = session.scalars(
        select(Job)
        .where(mine, Job.status.in_(("queued", "running", "failed")))
        .order_by(Job.status.desc(), Job.created_at.desc())
        .limit(limit)
    ).all()
    return QueueReport(
        waiting=counts.get("queued", 0),
        running=counts.get("running", 0),
        failed=counts.get("failed", 0),
        jobs=list(shown),
    )
