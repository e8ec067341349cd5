"""Imports over HTTP run as background jobs (issue 13, defect 4; issue 11, defect 1).

A run that outlasts ``ROLLCALL_IMPORT_WAIT_SECONDS`` answers 202 with the URL to poll; small
pushes still get their report in the answer; the server keeps answering while a big import
runs; SIGTERM stops a slow import within the grace period, rolled back and recorded as
``interrupted``.
"""

from __future__ import annotations

import signal
import time
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from server.app import create_app
from server.db import ImportRun, User
from tests.imports.conftest import bearer
from tests.imports.packages import district, package
from tests.live import rollcall_serve


@pytest.fixture
def impatient_client(settings, tenancy):
    """An app that answers 202 for every import instead of waiting for it."""
    with TestClient(
        create_app(replace(settings, import_wait_seconds=0), database=tenancy.database)
    ) as client:
        yield client


def poll(get, url: str, headers: dict[str, str]) -> dict:
    """GET ``url`` until the run is no longer running (a client's polling loop)."""
    for _ in range(600):
        body = get(url, headers=headers).json()
        if body["status"] != "running":
            return body
        time.sleep(0.1)
    raise AssertionError(f"{url} still running")


def test_a_push_that_outlasts_the_wait_answers_202_and_its_run_can_be_polled(
    impatient_client, tenancy, tmp_path
):
    body = package(tmp_path / "sis.zip", "1.1", district()).read_bytes()
    sis = bearer(tenancy.tokens["SIS"])
    response = impatient_client.post("/oneroster/csv?dry_run=true", content=body, headers=sis)
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["status"] == "running"
    assert response.headers["location"] == started["url"] == f"/oneroster/csv/{started['id']}"
    finished = poll(impatient_client.get, started["url"], sis)
    assert finished["status"] == "valid" and finished["outcomes"] == {"created": 13}
    other = bearer(tenancy.tokens["Clever"])
    assert impatient_client.get(started["url"], headers=other).status_code == 404
    assert impatient_client.get(started["url"]).status_code == 401


def test_a_staff_upload_that_outlasts_the_wait_is_polled_at_the_admin_api(
    impatient_client, tenancy, admin_token, tmp_path
):
    path = package(tmp_path / "sis.zip", "1.1", district())
    response = impatient_client.post(
        "/admin/api/imports",
        data={"connection": "SIS"},
        files={"file": ("sis.zip", path.read_bytes(), "application/zip")},
        headers=bearer(admin_token),
    )
    assert response.status_code == 202, response.text
    assert response.json()["url"] == f"/admin/api/imports/{response.json()['id']}"
    finished = poll(impatient_client.get, response.json()["url"], bearer(admin_token))
    assert finished["status"] == "applied"
    assert tenancy.count() == 4


def test_a_run_refused_at_start_is_recorded_as_failed_not_left_running(
    impatient_client, tenancy, tmp_path
):
    body = package(tmp_path / "sis.zip", "1.1", district()).read_bytes()
    sis = bearer(tenancy.tokens["SIS"])
    response = impatient_client.post("/oneroster/csv?school=nowhere", content=body, headers=sis)
    assert response.status_code == 202
    finished = poll(impatient_client.get, response.json()["url"], sis)
    assert finished["status"] == "failed" and "nowhere" in finished["summary"]


def run_status(database, run_id: str) -> str:
    """The run's stored status, read outside any transaction (so it never waits for the
    import's write lock on SQLite)."""
    with database.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        query = select(ImportRun.status).where(ImportRun.id == run_id)
        return connection.execute(query).scalar_one()


def test_the_server_answers_health_checks_while_a_big_import_runs(tenancy, database_url, tmp_path):
    body = package(tmp_path / "big.zip", "1.1", district(students=3000)).read_bytes()
    sis = bearer(tenancy.tokens["SIS"])
    with (
        rollcall_serve(database_url, tmp_path, ROLLCALL_IMPORT_WAIT_SECONDS="0") as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):
        started = http.post("/oneroster/csv?dry_run=true", content=body, headers=sis)
        assert started.status_code == 202
        run_id = started.json()["id"]
        assert http.get("/healthz").status_code == 200
        assert run_status(tenancy.database, run_id) == "running", (
            "the import must still be in flight when /healthz answers"
        )
        for _ in range(1200):
            if run_status(tenancy.database, run_id) != "running":
                break
            time.sleep(0.1)
        finished = http.get(started.json()["url"], headers=sis).json()
        assert finished["status"] == "valid" and finished["outcomes"]["created"] > 6000


def _sigterm_during_a_slow_import(tenancy, database_url, tmp_path, grace: str, signals: int):
    """Starts a 3,000-student import in a served process, sends SIGTERM ``signals`` times
    (half a second apart) and returns the import run once the process ended."""
    body = package(tmp_path / "big.zip", "1.1", district(students=3000)).read_bytes()
    sis = bearer(tenancy.tokens["SIS"])
    with rollcall_serve(
        database_url,
        tmp_path,
        ROLLCALL_IMPORT_WAIT_SECONDS="0",
        ROLLCALL_SHUTDOWN_GRACE_SECONDS=grace,
    ) as server:
        started = httpx.post(f"{server.url}/oneroster/csv", content=body, headers=sis, timeout=60)
        assert started.status_code == 202
        for sent in range(signals):
            time.sleep(0.5 if sent else 0)
            server.popen.send_signal(signal.SIGTERM)
        server.popen.wait(timeout=120)
    with tenancy.database.session() as session:
        run = session.get(ImportRun, started.json()["id"])
        session.expunge(run)
        return run


def test_sigterm_interrupts_a_slow_import_after_the_grace_period(tenancy, database_url, tmp_path):
    """The grace period is short against the import (0.2 s): on a quiet machine the whole
    3,000-student import once finished inside a 1 s grace period (CI: applied, not
    interrupted)."""
    run = _sigterm_during_a_slow_import(tenancy, database_url, tmp_path, grace="0.2", signals=1)
    assert run.status == "interrupted", run.summary
    assert "nothing was written" in run.summary or "Interrupted" in run.summary
    assert tenancy.count(User) == 0


def test_a_second_sigterm_ends_the_grace_period_at_once(tenancy, database_url, tmp_path):
    """An operator who sends SIGTERM again wants the process gone now: runs in flight are
    interrupted without waiting out the (here long) grace period."""
    run = _sigterm_during_a_slow_import(tenancy, database_url, tmp_path, grace="600", signals=2)
    assert run.status == "interrupted", run.summary
    assert tenancy.count(User) == 0
