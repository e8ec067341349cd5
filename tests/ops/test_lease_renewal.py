"""Issue 13, defect 3: a job's lease is renewed while it runs, so a walk of a slow upstream that
lasts several leases runs once, in one process; a killed process's job is taken over by another
within about one lease.

Two real ``rollcall serve`` processes (each with its worker thread) on one PostgreSQL, the
lease shortened to 3 s (``ROLLCALL_JOB_LEASE_SECONDS``, renewed every second); the upstream is
the suite's ``FakeHub`` (``tests/imports/hubs.py``) answering each page slowly. On SQLite
one machine's process ids decide (``server/domain/leases.py``): the test needs PostgreSQL.
"""

from __future__ import annotations

import signal
import socket

import pytest
from sqlalchemy import select

from server.db import ImportRun, Job
from server.domain.connections import get_connection
from server.domain.jobs import enqueue_for_connection
from server.imports.pull import SYNC_JOB
from tests.imports.hubs import FakeHub, connect
from tests.live import Process, serving
from tests.ops.conftest import wait_for

LEASE = 3  # seconds; the heartbeat renews it every second
POLL = 2  # seconds between a worker's looks at the queue (server/worker.py)
PAGE = 1.25  # seconds per page: a walk of the 7 collections, a 429 and a 503 takes over 12 s

pytestmark = pytest.mark.postgres_only


def _sync_job(database) -> Job:
    """The newest sync job (read in a fresh transaction: the workers change it meanwhile)."""
    with database.session() as session:
        query = select(Job).where(Job.kind == SYNC_JOB).order_by(Job.created_at.desc())
        job = session.scalars(query).first()
        session.expunge_all()
        return job


def _ended(database) -> Job | None:
    """The sync job once it ended (done, or failed: a pull refused while another walks)."""
    job = _sync_job(database)
    return job if job.status in ("done", "failed") else None


def _runs(database, connection_id: str) -> list[tuple[str, str]]:
    with database.session() as session:
        query = (
            select(ImportRun.id, ImportRun.status)
            .where(ImportRun.connection_id == connection_id)
            .order_by(ImportRun.started_at, ImportRun.id)
        )
        return [tuple(row) for row in session.execute(query)]


def _holder(job: Job | None, processes: list[Process]) -> Process | None:
    """The process whose worker holds ``job`` (its lease owner is ``host:pid``)."""
    if job is None or job.status != "running":
        return None
    owners = {f"{socket.gethostname()}:{process.popen.pid}": process for process in processes}
    return owners.get(job.lease_owner or "")


def test_a_walk_longer_than_many_leases_runs_once_and_a_killed_holders_job_is_taken_over(
    context, rollcall_process
):
    fake = FakeHub()
    fake.page_seconds = PAGE
    env = {"ROLLCALL_JOB_LEASE_SECONDS": str(LEASE)}
    with serving(fake.app()) as base:
        here = connect(context, base, "c", "s", token_url="/token", every_minutes=60)
        with context.database.session() as session:
            connection_id = get_connection(session, here.tenant_id, "District hub").id
        servers = [rollcall_process("serve", env=env), rollcall_process("serve", env=env)]

        # the scheduled pull: one process claims it and walks for several leases
        first = wait_for(lambda: _holder(_sync_job(context.database), servers), what="a claim")
        job = wait_for(lambda: _ended(context.database), timeout=60, what="the walk")
        assert job.status == "done", job.last_error
        # never claimed again: the first process renewed its lease all along
        assert (job.lease_owner, job.attempts) == (f"{socket.gethostname()}:{first.popen.pid}", 1)
        # the walk outlived several leases (timed by the hub: this test may look late)
        assert fake.last_page_at - fake.first_page_at > 3 * LEASE
        assert [status for _, status in _runs(context.database, connection_id)] == ["applied"]
        assert fake.walks == 1

        # a second pull; its holder is killed mid-walk and the other process takes it over
        with context.database.session() as session:
            enqueue_for_connection(
                session, SYNC_JOB, get_connection(session, here.tenant_id, "District hub")
            )
        holder = wait_for(lambda: _holder(_sync_job(context.database), servers), what="a claim")
        wait_for(lambda: fake.walks == 2, what="the second walk")
        holder.popen.send_signal(signal.SIGKILL)
        holder.popen.wait(timeout=30)
        [other] = [process for process in servers if process is not holder]
        wait_for(
            lambda: _holder(_sync_job(context.database), servers) is other,
            timeout=LEASE + POLL + 3,  # about one lease (and a poll), not the 45 s default
            what="the other process to take the job over",
        )
        job = wait_for(lambda: _ended(context.database), timeout=60, what="the retaken walk")
        assert job.status == "done", job.last_error
    statuses = [status for _, status in _runs(context.database, connection_id)]
    assert statuses == ["applied", "interrupted", "applied"], statuses
    assert fake.walks == 3
