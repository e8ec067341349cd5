"""Issue 13 defect 1: every way of serving runs the background worker, ``rollcall worker`` runs
it alone, and district admins see the queue."""

from __future__ import annotations

import re
from dataclasses import replace

import httpx
from sqlalchemy import select
from starlette.testclient import TestClient

from server.app import create_app
from server.db import Job
from server.domain import jobs
from server.domain.outbox import EMAIL_JOB, queue_email
from server.domain.tenants import create_tenant, get_tenant
from server.mail import email_runner
from tests.ops.conftest import wait_for
from tests.web.conftest import give_bart_an_address, invite, sign_in


def _invite_bart(client, district) -> None:
    sent = invite(client, district.manual_student)
    assert "Activation email queued" in sent.text, sent.text


def test_plain_serve_sends_the_activation_email_a_teacher_queues(
    district, database, smtp, rollcall_process
):
    url, inbox = smtp
    give_bart_an_address(database, district)
    server = rollcall_process("serve", env={"ROLLCALL_SMTP_URL": url})
    with httpx.Client(base_url=server.url, follow_redirects=True) as browser:
        signed_in = browser.post(
            "/admin/login", data={"username": "edna", "password": district.teacher_password}
        )
        assert signed_in.status_code == 200 and signed_in.url.path == "/admin/users"
        _invite_bart(browser, district)
    [message] = wait_for(lambda: inbox.messages, what="the activation email")
    assert message["To"] == "bart@springfield.example"
    assert re.search(r"/activate/\S+", message.get_payload())
    assert '"worker started"' in server.log


def test_serve_no_worker_leaves_the_queue_to_a_worker_service(database, rollcall_process):
    web = rollcall_process("serve", "--no-worker")
    with httpx.Client(base_url=web.url) as client:
        assert client.get("/healthz").status_code == 200  # started up, lifespan done
    web.stop()
    assert '"worker started"' not in web.log and '"Application startup complete."' in web.log


def test_rollcall_worker_alone_sends_what_a_web_only_process_queued(
    settings,
    district,
    database,
    smtp,
    rollcall_process,
):
    url, inbox = smtp
    give_bart_an_address(database, district)
    web = create_app(replace(settings, smtp_url=url), database=database)  # the web, no worker
    _invite_bart(sign_in(web, "skinner", district.admin_password), district)
    worker = rollcall_process("worker", env={"ROLLCALL_SMTP_URL": url})
    [message] = wait_for(lambda: inbox.messages, what="the activation email")
    assert message["To"] == "bart@springfield.example"
    assert '"worker started"' in worker.log
    worker.stop()  # SIGTERM: a supervisor's stop ends it cleanly
    assert worker.popen.returncode == 0 and '"worker stopped"' in worker.log


def test_district_admin_sees_waiting_and_failed_jobs_with_the_last_error(
    district,
    database,
    settings,
):
    give_bart_an_address(database, district)
    # the web has a mail server set up (else it refuses to queue); the worker below has none
    app = create_app(replace(settings, smtp_url="smtp://127.0.0.1:1"), database=database)
    admin = sign_in(app, "skinner", district.admin_password)
    _invite_bart(admin, district)
    with database.session() as session:
        tenant = get_tenant(session, "Springfield")
        jobs.enqueue(
            session,
            EMAIL_JOB,
            {"to": "x@y.example", "subject": "s", "body": "b"},
            tenant_id=tenant.id,
            max_attempts=1,
        )
    # No SMTP server configured: the first try fails; the one-attempt job gives up.
    assert jobs.run_due(database, {EMAIL_JOB: email_runner(replace(settings, smtp_url=None))}) == 2
    queue = admin.get("/admin/jobs")
    assert queue.status_code == 200
    assert re.search(r'id="waiting">1<', queue.text) and re.search(r'id="failed">1<', queue.text)
    assert queue.text.count("ROLLCALL_SMTP_URL is not set") == 2
    assert "/activate/" not in queue.text  # the email body is never shown
    teacher = sign_in(app, "edna", district.teacher_password)
    assert teacher.get("/admin/jobs").status_code == 403
    with TestClient(app) as anonymous:
        assert anonymous.get("/admin/jobs", follow_redirects=False).status_code == 303


def test_two_serve_processes_send_each_queued_email_exactly_once(database, smtp, rollcall_process):
    url, inbox = smtp
    with database.session() as session:
        tenant = create_tenant(session, "Shelbyville")
        for n in range(12):
            queue_email(session, tenant.id, f"pupil{n}@shelbyville.example", "Activate", "Hi")
    for _ in range(2):
        rollcall_process("serve", env={"ROLLCALL_SMTP_URL": url})

    def all_done() -> bool:
        with database.session() as session:
            return set(session.scalars(select(Job.status))) == {"done"}

    wait_for(all_done, timeout=60, what="every email job to be done")
    sent = sorted(message["To"] for message in inbox.messages)
    assert sent == sorted(f"pupil{n}@shelbyville.example" for n in range(12))
