"""Issue 13 defect 2: with ``--workers N`` every process writes redacted JSON lines."""

from __future__ import annotations

import json

import httpx

SECRET = "rc_" + "k7Qm2VxL9pT4wZ8sN1bR6yH3"


def test_every_worker_process_writes_redacted_json_request_lines(rollcall_process):
    server = rollcall_process("serve", "--workers", "2")
    with httpx.Client(base_url=server.url) as client:
        for _ in range(20):
            answer = client.get(
                f"/scim/v2/Users/{SECRET}", headers={"Authorization": f"Bearer {SECRET}"}
            )
            assert answer.status_code == 401
    server.stop()
    lines = server.log.splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    requests = [e for e in entries if e["message"] == "request" and e["path"].startswith("/scim")]
    assert len(requests) == 20
    assert {e["pid"] for e in requests}.isdisjoint({server.popen.pid})
    assert all(e["status"] == 401 and "[redacted]" in e["path"] for e in requests)
    assert SECRET not in server.log
