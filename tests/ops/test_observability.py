"""Issue 13 defect 8: one request id per request, on every line it causes (the job it queued
included), failed jobs logged with their reason, slow queries logged, and ``/metrics``."""

from __future__ import annotations

import json

import httpx

from tests.imports.conftest import bearer
from tests.imports.packages import district as sis_district
from tests.imports.packages import package
from tests.ops.conftest import wait_for
from tests.web.conftest import csrf_of, give_bart_an_address


def _entries(process) -> list[dict]:
    """The complete lines so far (the process may be writing the last one)."""
    complete = process.log.rpartition("\n")[0]
    return [json.loads(line) for line in complete.splitlines()]


def test_a_request_id_follows_the_request_into_its_job_and_slow_queries(
    district, database, rollcall_process
):
    # a mail server that refuses connections: the email job the request queues fails, says why
    refusing = {"ROLLCALL_SMTP_URL": "smtp://127.0.0.1:1"}
    server = rollcall_process("serve", env={"ROLLCALL_SLOW_QUERY_MS": "0", **refusing})
    with httpx.Client(base_url=server.url, follow_redirects=True) as browser:
        browser.post(
            "/admin/login", data={"username": "skinner", "password": district.admin_password}
        )
        page = browser.get(f"/admin/users/{district.manual_student}")
        give_bart_an_address(database, district)
        sent = browser.post(
            f"/admin/users/{district.manual_student}/invite",
            data={"csrf_token": csrf_of(page.text)},
            headers={"X-Request-Id": "trace-7f3a"},
            follow_redirects=False,
        )
        assert sent.headers["x-request-id"] == "trace-7f3a"
        assert len(browser.get("/healthz").headers["x-request-id"]) == 16  # made up when not sent

    def failed_job():
        return [e for e in _entries(server) if e["message"].startswith("job failed")]

    [failure] = wait_for(failed_job, what="the failed email job's log line")
    assert failure["request_id"] == "trace-7f3a"
    assert "ConnectionRefusedError" in failure["reason"] and failure["kind"] == "email"
    mine = [e for e in _entries(server) if e.get("request_id") == "trace-7f3a"]
    assert {"request", "slow query", "job failed; will retry"} <= {e["message"] for e in mine}
    slow = next(e for e in mine if e["message"] == "slow query")
    assert slow["sql"].startswith(("SELECT", "INSERT", "UPDATE", "BEGIN")) and "duration_ms" in slow


def test_an_http_imports_log_lines_carry_the_request_id_of_its_upload(
    tenancy, rollcall_process, tmp_path
):
    """The import runs on a thread of its own (issue 13 defect 4); its lines still name the
    request that started it."""
    body = package(tmp_path / "sis.zip", "1.1", sis_district()).read_bytes()
    server = rollcall_process("serve", env={"ROLLCALL_IMPORT_WAIT_SECONDS": "0"})
    started = httpx.post(
        f"{server.url}/oneroster/csv?dry_run=true",
        content=body,
        headers={**bearer(tenancy.tokens["SIS"]), "X-Request-Id": "push-91c2"},
    )
    assert started.status_code == 202, started.text

    def import_line():
        return [e for e in _entries(server) if e["message"] == "import"]

    [line] = wait_for(import_line, what="the import's log line")
    assert line["run_id"] == started.json()["id"] and line["request_id"] == "push-91c2"
