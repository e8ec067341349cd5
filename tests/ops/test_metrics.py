"""Issue 13 defect 8: ``GET /metrics`` in Prometheus format, for loopback clients and the
metrics token only; with ``--workers N`` a scrape adds up every process."""

from __future__ import annotations

from dataclasses import replace

import httpx
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from server.app import create_app


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_sign_in_failures_and_the_queue_for_a_token_holder(
    settings, database, district
):
    app = create_app(replace(settings, metrics_token="metrics-token-123"), database=database)
    token = {"Authorization": "Bearer metrics-token-123"}
    with TestClient(app, base_url="http://rollcall.example") as client:
        before = _samples(client.get("/metrics", headers=token).text)
        client.get("/scim/v2/Users", headers={"Authorization": "Bearer rc_wrong-token-value"})
        client.post("/admin/login", data={"username": "skinner", "password": "wrong"})
        scraped = client.get("/metrics", headers=token)
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain; version=")
        after = _samples(scraped.text)

        def grew(name: str, **labels: str) -> float:
            return _value(after, name, **labels) - _value(before, name, **labels)

        assert grew("rollcall_http_requests_total", surface="scim", status="401") == 1
        assert grew("rollcall_signin_failures_total", surface="staff") == 1
        assert grew("rollcall_http_request_duration_seconds_count", surface="scim") == 1
        assert ("rollcall_jobs", (("status", "queued"),)) in after
        # TestClient's address is not loopback: no token, no metrics (and no hint they exist)
        assert client.get("/metrics").status_code == 404
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 404


def test_loopback_scrapes_of_several_worker_processes_add_up_and_proxied_ones_are_refused(
    rollcall_process,
):
    server = rollcall_process("serve", "--workers", "2")
    with httpx.Client(base_url=server.url) as client:
        for _ in range(30):
            client.get("/scim/v2/Users", headers={"Authorization": "Bearer rc_not-a-token-1"})
        samples = _samples(client.get("/metrics").text)
        proxied = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert _value(samples, "rollcall_http_requests_total", surface="scim", status="401") == 30
    assert proxied.status_code == 404
