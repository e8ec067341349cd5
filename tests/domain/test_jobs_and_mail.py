"""The background job queue and outgoing email, with a real SMTP server on loopback."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from server.config import Settings
from server.db import AuditEvent, Job, utcnow
from server.domain import jobs
from server.domain.outbox import EMAIL_JOB, queue_email
from server.mail import email_runner


@pytest.fixture
def tenant(database):
    """A committed tenant (these tests open their own units of work, like worker processes)."""
    from server.domain.tenants import create_tenant

    with database.session() as session:
        return create_tenant(session, "Springfield")


def test_queued_email_is_sent_by_the_worker_and_audited(database, tenant, settings, smtp):
    url, inbox = smtp
    with database.session() as session:
        queue_email(session, tenant.id, "bart@example.org", "Activate your account", "Hello Bart")
    mailer = Settings(settings.data_dir, settings.database_url, settings.secret_key, smtp_url=url)
    assert jobs.run_due(database, {EMAIL_JOB: email_runner(mailer)}) == 1
    assert [m["To"] for m in inbox.messages] == ["bart@example.org"]
    assert inbox.messages[0]["From"] == "noreply@springfield.example"
    with database.session() as session:
        assert session.scalars(select(Job.status)).one() == "done"
        assert session.scalars(select(AuditEvent.action)).all() == ["email.sent"]
    assert jobs.run_due(database, {EMAIL_JOB: email_runner(mailer)}) == 0


def test_failed_jobs_are_retried_with_back_off_then_given_up(database, tenant, settings):
    with database.session() as session:
        queue_email(session, tenant.id, "x@example.org", "s", "b")
    broken = Settings(
        settings.data_dir, settings.database_url, settings.secret_key, smtp_url="smtp://127.0.0.1:1"
    )
    runner = {EMAIL_JOB: email_runner(broken)}
    assert jobs.run_due(database, runner) == 1
    with database.session() as session:
        job = session.scalars(select(Job)).one()
        assert job.status == "queued" and job.attempts == 1 and job.run_after > utcnow()
        assert "Error" in job.last_error
        job.run_after, job.attempts = utcnow(), job.max_attempts - 1
    jobs.run_due(database, runner)
    with database.session() as session:
        assert session.scalars(select(Job.status)).one() == "failed"


def test_a_leased_job_is_not_taken_twice_but_an_expired_lease_is(database, tenant):
    with database.session() as session:
        jobs.enqueue(session, "noop", {}, tenant_id=tenant.id)
    with database.session() as session:
        assert len(jobs.claim(session, worker="a")) == 1
    with database.session() as session:
        assert jobs.claim(session, worker="b") == []
        job = session.scalars(select(Job)).one()
        job.lease_until = utcnow() - timedelta(seconds=1)
    with database.session() as session:
        [taken] = jobs.claim(session, worker="b")
        assert taken.lease_owner == "b" and taken.attempts == 2


@pytest.mark.postgres_only  # SKIP LOCKED is PostgreSQL's; SQLite serialises writers instead
def test_two_workers_claim_disjoint_jobs_on_postgresql(database, tenant):
    with database.session() as session:
        for _ in range(4):
            jobs.enqueue(session, "noop", {}, tenant_id=tenant.id)
    first = database.sessions()
    second = database.sessions()
    try:
        mine = {j.id for j in jobs.claim(first, limit=2, worker="a")}
        theirs = {j.id for j in jobs.claim(second, limit=4, worker="b")}
        assert len(mine) == 2 and len(theirs) == 2 and not mine & theirs
    finally:
        first.rollback(), second.rollback(), first.close(), second.close()


# --- issue 13 defect 3: leases are renewed while a job runs, and short when nobody renews ----


def test_a_job_running_past_its_lease_is_not_taken_over_while_its_worker_lives(database, tenant):
    with database.session() as session:
        jobs.enqueue(session, "slow", {}, tenant_id=tenant.id)
    started, release = threading.Event(), threading.Event()

    def slow(payload: dict) -> None:
        started.set()
        release.wait(timeout=30)

    lease, beat = timedelta(seconds=1), timedelta(seconds=0.2)
    runner = threading.Thread(
        target=jobs.run_due,
        args=(database, {"slow": jobs.Standalone(slow)}),
        kwargs={"worker": "a", "lease": lease, "heartbeat": beat},
    )
    runner.start()
    assert started.wait(timeout=10)
    release.wait(timeout=3 * lease.total_seconds())  # three leases long, still running
    with database.session() as session:
        assert jobs.claim(session, worker="b") == []  # the heartbeat kept it
    release.set()
    runner.join(timeout=10)
    with database.session() as session:
        job = session.scalars(select(Job)).one()
        assert (job.status, job.attempts) == ("done", 1)


def test_a_dead_workers_job_is_free_again_within_a_minute(database, tenant):
    with database.session() as session:
        jobs.enqueue(session, "email", {}, tenant_id=tenant.id)
    with database.session() as session:
        [job] = jobs.claim(session, worker="dies-now")
        assert job.lease_until - utcnow() <= timedelta(minutes=1)


def test_a_slow_mail_server_does_not_hold_the_database_while_a_message_is_sent(
    database, database_url, tenant, settings, smtp
):
    """SQLite has one writer: a job must not hold the write lock while it talks to SMTP."""
    url, inbox = smtp
    gate, arrived = threading.Event(), threading.Event()
    original = inbox.handle_message

    def slow_handle(message) -> None:
        arrived.set()
        gate.wait(timeout=30)  # the mail server takes its time answering DATA
        original(message)

    inbox.handle_message = slow_handle
    with database.session() as session:
        queue_email(session, tenant.id, "bart@example.org", "Activate", "Hello Bart")
    mailer = Settings(settings.data_dir, settings.database_url, settings.secret_key, smtp_url=url)
    sender = threading.Thread(
        target=jobs.run_due, args=(database, {EMAIL_JOB: email_runner(mailer)})
    )
    sender.start()
    try:
        assert arrived.wait(timeout=20)
        from server.db.session import Database
        from server.domain.tenants import create_tenant

        impatient = Database(database_url, busy_timeout=0.5)
        with impatient.session() as session:  # another request writes meanwhile
            create_tenant(session, "Shelbyville")
        impatient.dispose()
    finally:
        gate.set()
        sender.join(timeout=30)
    with database.session() as session:
        assert session.scalars(select(Job.status)).one() == "done"
        assert session.scalars(select(AuditEvent.action)).all() == ["email.sent"]
    assert [m["To"] for m in inbox.messages] == ["bart@example.org"]


def test_a_pull_lease_of_a_killed_process_on_this_host_is_free_at_once(database, tenant):
    """A dead worker's sync job is taken over once its job lease ran out; its pull lease, renewed
    on its own beat, may run out a moment later: the pull must not be refused meanwhile."""
    import socket
    import subprocess
    import sys

    from server.db import Connection
    from server.domain.actors import system_actor
    from server.domain.connections import create_connection
    from server.domain.leases import pull_lease, take_pull

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with database.session() as session:
        actor = system_actor(tenant.id, "test")
        connection = create_connection(session, actor, "Hub", "oneroster_rest").connection
        connection.pull_owner = f"{socket.gethostname()}:{dead.pid}:0a1b2c3d"
        connection.pull_until = utcnow() + timedelta(seconds=45)
        connection_id = connection.id
    # not refused (its holder is gone); while this one holds it, another host is refused
    with pull_lease(database, connection_id), database.session() as session:
        assert not take_pull(session, connection_id, "web-2.district.internal:4242:ffff0000")
    with database.session() as session:
        assert session.get(Connection, connection_id).pull_owner is None
