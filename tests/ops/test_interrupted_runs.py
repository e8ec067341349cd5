"""Issue 13: no import run is left ``running`` forever. A run whose process was killed is marked
``interrupted`` by the next process; a worker's pull and a ``rollcall import`` stopped by
SIGTERM/SIGINT roll back and record their run as ``interrupted`` within the grace period.

Real ``rollcall`` processes on the test database; the slow upstream is the test suite's
``FakeHub`` answering 429 to every page (``tests/imports/hubs.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from sqlalchemy import select

from server.db import Connection, ImportRun, Job, User, new_id
from server.domain import jobs, staff
from server.domain.actors import system_actor
from server.domain.connections import get_connection
from server.domain.jobs import enqueue_for_connection
from server.domain.sources import set_drop_dir
from server.imports.drop_folder import SCAN_JOB
from server.imports.pull import SYNC_JOB
from server.shutdown import Shutdown
from server.worker import enqueue_due_syncs, runners
from tests.imports.conftest import bearer
from tests.imports.hubs import FakeHub, connect, here, hub  # noqa: F401
from tests.imports.packages import district, package
from tests.imports.test_background import run_status
from tests.live import ROOT, serving
from tests.ops.conftest import wait_for


def _runs(database, **where) -> list[ImportRun]:
    with database.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        query = select(ImportRun.id, ImportRun.status, ImportRun.summary)
        for name, value in where.items():
            query = query.where(getattr(ImportRun, name) == value)
        return list(connection.execute(query))


def _staff_password(tenancy) -> str:
    with tenancy.database.session() as session:
        actor = system_actor(tenancy.tenant_id)
        return staff.create_staff(session, actor, "ops-admin", "district_admin").password


def test_a_run_whose_process_was_killed_is_interrupted_once_another_process_starts(
    tenancy,
    rollcall_process,
    environment,
    tmp_path,
):
    body = package(tmp_path / "big.zip", "1.1", district(students=3000)).read_bytes()
    sis = bearer(tenancy.tokens["SIS"])
    password = _staff_password(tenancy)
    first = rollcall_process("serve", env={"ROLLCALL_IMPORT_WAIT_SECONDS": "0"})
    started = httpx.post(f"{first.url}/oneroster/csv", content=body, headers=sis, timeout=60)
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    time.sleep(0.5)  # mid-import
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(timeout=30)
    assert run_status(tenancy.database, run_id) == "running"  # what the killed process left

    second = rollcall_process("serve")
    wait_for(lambda: run_status(tenancy.database, run_id) == "interrupted", what="the sweep")

    polled = httpx.get(f"{second.url}/oneroster/csv/{run_id}", headers=sis).json()
    assert polled["status"] == "interrupted"
    assert "killed or crashed" in polled["summary"] and "nothing was written" in polled["summary"]
    with httpx.Client(base_url=second.url, follow_redirects=True) as browser:
        signed_in = browser.post(
            "/admin/login", data={"username": "ops-admin", "password": password}
        )
        assert signed_in.status_code == 200, signed_in.text
        imports_page = browser.get("/admin/import").text
    assert '<span class="badge">interrupted</span>' in imports_page
    listed = subprocess.run(
        [sys.executable, "-m", "server.cli.main", "import-report", "--json"],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    [run] = [run for run in json.loads(listed.stdout) if run["id"] == run_id]
    assert run["status"] == "interrupted"
    assert tenancy.count(User) == 0


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_sigterm_stops_a_workers_pull_of_a_slow_hub_and_records_it_interrupted(
    context, rollcall_process, command
):
    fake = FakeHub()
    fake.always_busy = True  # every page answers 429 Retry-After: 1: the walk never ends
    with serving(fake.app()) as base:
        connect(context, base, "c", "s", token_url="/token", every_minutes=1)
        server = rollcall_process(command, env={"ROLLCALL_SHUTDOWN_GRACE_SECONDS": "1"})
        [pulling] = wait_for(
            lambda: _runs(context.database, status="running"), what="the pull's run"
        )
        wait_for(lambda: fake.user_calls >= 1, what="the walk")
        asked = time.monotonic()
        server.popen.send_signal(signal.SIGTERM)
        # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly
        assert server.popen.wait(timeout=20) in (0, -signal.SIGTERM)
        assert time.monotonic() - asked < 10  # the grace period (1 s), not the walk's 120 s
    [(_, status, summary)] = _runs(context.database, id=pulling.id)
    assert status == "interrupted", summary
    assert "shutdown" in summary
    with context.database.session() as session:
        job = session.scalars(select(Job).where(Job.kind == "sync")).one()
        assert job.status == "queued" and "Interrupted" in job.last_error  # for the next start


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_cli_import_stopped_by_a_signal_rolls_back_and_records_its_run_interrupted(
    tenancy,
    environment,
    tmp_path,
    stop,
):
    path = package(tmp_path / "big.zip", "1.1", district(students=3000))
    cli = subprocess.Popen(
        [sys.executable, "-m", "server.cli.main", "import", str(path), "--connection", "SIS"],
        env=environment,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        [running] = wait_for(
            lambda: _runs(tenancy.database, status="running"), what="the CLI's run"
        )
        cli.send_signal(stop)
        out, err = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 128 + stop, err
    assert "Traceback" not in err and "interrupted" in (out + err).lower()
    [(_, status, summary)] = _runs(tenancy.database, id=running.id)
    assert status == "interrupted", summary
    assert "nothing was written" in summary
    assert tenancy.count(User) == 0


class _EndsAsTheImportBegins(Shutdown):
    """A shutdown whose grace period ends once the walk is done and the first batch of the
    import is in (the import's checks count rows; the walk's count none)."""

    def check(self, done: int = 0) -> None:
        if done > 0:
            self.interrupt_now()
        super().check(done)


def test_a_pull_interrupted_in_its_import_writes_nothing_and_its_job_is_queued_again(
    context,
    here,  # noqa: F811 (the fixture of tests/imports/hubs.py: a hub with 64 users)
):
    with context.database.session() as session:
        hub = session.scalars(select(Connection).where(Connection.name == "District hub")).one()
        enqueue_for_connection(session, SYNC_JOB, hub)
    stop, worker_stops = _EndsAsTheImportBegins(30), threading.Event()
    stop.on_begin(worker_stops.set)  # as the worker does: no more jobs once stopping
    assert jobs.run_due(context.database, runners(context, stop), until=worker_stops) == 1
    [(_, status, summary)] = _runs(context.database)
    assert status == "interrupted" and "nothing was written" in summary, summary
    assert here.active(User) == set()
    with context.database.session() as session:
        job = session.scalars(select(Job).where(Job.kind == SYNC_JOB)).one()
        assert job.status == "queued", job.last_error
        hub = session.get(Connection, hub.id)
        assert hub.last_sync_at is None  # not a sync: the schedule does not wait an interval


def test_a_drop_folder_import_interrupted_by_a_shutdown_leaves_its_file_for_the_next_scan(
    context, tenancy, tmp_path
):
    drop = tmp_path / "sftp" / "sis"
    drop.mkdir(parents=True)
    with tenancy.database.session() as session:
        actor = system_actor(tenancy.tenant_id, "test")
        sis = get_connection(session, tenancy.tenant_id, "SIS")
        set_drop_dir(session, actor, sis, str(drop), root=tmp_path)
    delivered = package(drop / "roster.zip", "1.1", district(students=600))
    os.utime(delivered, (time.time() - 3600,) * 2)  # delivered an hour ago: complete
    stop, worker_stops = _EndsAsTheImportBegins(30), threading.Event()
    stop.on_begin(worker_stops.set)
    enqueue_due_syncs(context)
    assert jobs.run_due(context.database, runners(context, stop), until=worker_stops) == 1
    [(_, status, summary)] = _runs(tenancy.database)
    assert status == "interrupted" and "nothing was written" in summary, summary
    assert delivered.exists()  # not moved to failed/: the next scan imports it
    assert not (drop / "failed").exists()
    assert tenancy.count(User) == 0
    with tenancy.database.session() as session:
        job = session.scalars(select(Job).where(Job.kind == SCAN_JOB)).one()
        assert job.status == "queued", job.last_error


def test_a_run_of_another_host_is_interrupted_only_once_its_lease_ran_out(tenancy):
    """Several hosts on one PostgreSQL: another host's process id means nothing here, so its
    runs are judged by their lease (renewed by its heartbeat while it lives)."""
    from datetime import timedelta

    from server.db import utcnow
    from server.domain.import_runs import interrupt_abandoned_runs, record_running
    from server.imports.engine import ImportOptions

    def run_of(owner: str, lease_left: timedelta) -> str:
        with tenancy.database.session() as session:
            sis = get_connection(session, tenancy.tenant_id, "SIS")
            run = record_running(
                session, new_id(), tenant_id=tenancy.tenant_id, connection_id=sis.id,
                actor_name="SIS", dry_run=False, mode=ImportOptions().mode,
            )  # fmt: skip
            run.owner, run.lease_until = owner, utcnow() + lease_left
            return run.id

    alive = run_of("web-2.district.internal:4242", timedelta(seconds=30))
    lapsed = run_of("web-3.district.internal:4242", timedelta(seconds=-1))
    assert interrupt_abandoned_runs(tenancy.database) == 1
    statuses = {run_id: status for run_id, status, _ in _runs(tenancy.database)}
    assert statuses == {alive: "running", lapsed: "interrupted"}
