"""Prometheus metrics, served at ``GET /metrics`` (text exposition format) by prometheus-client.

- ``rollcall_http_requests_total{surface,status}`` and
  ``rollcall_http_request_duration_seconds{surface}`` (a histogram), from the request log;
- ``rollcall_jobs{status}``: the job queue by state, read from the database at each scrape
  (so every process reports the same queue);
- ``rollcall_job_failures_total{kind}``, ``rollcall_import_rows_total{format,trial}``,
  ``rollcall_signin_failures_total{surface}``.

With ``rollcall serve --workers N`` each process writes its counters to files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, set up by ``serve``) and
a scrape of any process adds them all up.

Who may read it: clients on the loopback interface that did not come through a proxy, or
anyone with ``Authorization: Bearer $ROLLCALL_METRICS_TOKEN``; everyone else gets 404.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select

from server.db import Job

__all__ = ["CONTENT_TYPE_LATEST", "allowed", "render", "surface_of"]

REQUESTS = Counter(
    "rollcall_http_requests", "HTTP requests answered, by surface and status", ["surface", "status"]
)
LATENCY = Histogram(
    "rollcall_http_request_duration_seconds", "Time to answer a request, by surface", ["surface"]
)
JOB_FAILURES = Counter("rollcall_job_failures", "Background job runs that failed", ["kind"])
IMPORT_ROWS = Counter(
    "rollcall_import_rows", "Rows of import runs (trial runs included)", ["format", "trial"]
)
SIGNIN_FAILURES = Counter(
    "rollcall_signin_failures", "Refused sign-ins (wrong credentials)", ["surface"]
)

_SURFACES = (
    ("/scim/", "scim"),
    ("/ims/oneroster/", "oneroster"),
    ("/oneroster/", "oneroster_csv"),
    ("/oauth/", "oauth"),
    ("/.well-known/", "oauth"),
    ("/login", "signin"),
    ("/activate/", "signin"),
    ("/admin/api/", "admin_api"),
    ("/admin", "admin"),
    ("/healthz", "health"),
    ("/metrics", "metrics"),
)
_LOOPBACK = {"127.0.0.1", "::1"}


def surface_of(path: str) -> str:
    """The surface a path belongs to (a small, fixed label set: never the path itself)."""
    for prefix, surface in _SURFACES:
        if path.startswith(prefix):
            return surface
    return "other"


def observe_request(path: str, status: int, seconds: float) -> None:
    surface = surface_of(path)
    _requests(surface, status).inc()
    _latency(surface).observe(seconds)


# The labelled children, looked up once per label set (``labels()`` takes a lock and builds
# the key on every call); the label sets are few: surfaces x statuses.
@lru_cache(maxsize=512)
def _requests(surface: str, status: int) -> Any:
    return REQUESTS.labels(surface, str(status))


@lru_cache(maxsize=64)
def _latency(surface: str) -> Any:
    return LATENCY.labels(surface)


def allowed(client: str | None, headers: Any, token: str | None) -> bool:
    """May this caller read the metrics? A bearer token equal to ``token``, or a loopback
    client whose request did not pass a proxy (a proxy on the same machine is loopback too)."""
    bearer = headers.get("authorization", "")
    if token and bearer.lower().startswith("bearer "):
        return hmac.compare_digest(bearer[7:].strip().encode(), token.encode())
    proxied = "x-forwarded-for" in headers or "forwarded" in headers
    return client in _LOOPBACK and not proxied


class QueueCollector:
    """The job queue by state, counted in the database at scrape time."""

    def __init__(self, database: Any) -> None:
        self.database = database

    def collect(self) -> Iterator[Metric]:
        with self.database.session() as session:
            counts = dict(
                session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
            )
        gauge = GaugeMetricFamily("rollcall_jobs", "Background jobs by state", labels=["status"])
        for status in ("queued", "running", "failed", "done"):
            gauge.add_metric([status], counts.get(status, 0))
        yield gauge


def render(database: Any) -> bytes:
    """The exposition text: this process's metrics (or all processes' in multiprocess mode)
    and the queue."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
        body = generate_latest(processes)
    else:
        body = generate_latest(REGISTRY)
    queue = CollectorRegistry()
    queue.register(QueueCollector(database))
    return body + generate_latest(queue)
