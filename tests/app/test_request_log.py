"""Issue 15: the request log middleware's fixed cost, without losing what it promises.

Every request is logged once with its request id, method, redacted path and status, counted in
``/metrics`` and answered with the request id and the hardening headers, however many run at
once; and the stack does that with a bounded amount of work per request (a count of calls,
like the statement counts of the SCIM tests: deterministic, never a timing).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor

from starlette.testclient import TestClient

from server import metrics
from server.app import RequestLogMiddleware, create_app
from server.logs import configure_logging
from server.security_headers import SecurityHeadersMiddleware

REQUESTS = 40


def _served(surface: str, status: str) -> float:
    return metrics.REQUESTS.labels(surface, status)._value.get()


def test_no_request_line_is_lost_when_requests_run_at_once(settings, database):
    stream = io.StringIO()
    configure_logging(stream=stream)
    before = _served("health", "200"), _served("signin", "410")
    try:
        with TestClient(create_app(settings, database=database)) as client:

            def send(i: int):
                path = "/healthz" if i % 2 else f"/activate/secret-link-{i}"
                return i, client.get(path, headers={"X-Request-Id": f"req-{i}"})

            with ThreadPoolExecutor(8) as pool:
                answers = dict(pool.map(send, range(REQUESTS)))
    finally:
        logging.getLogger().handlers[:] = []
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    logged = [line for line in lines if line["message"] == "request"]
    assert sorted(line["request_id"] for line in logged) == sorted(
        f"req-{i}" for i in range(REQUESTS)
    )
    for line in logged:
        i = int(line["request_id"].removeprefix("req-"))
        assert line["method"] == "GET" and line["status"] == answers[i].status_code
        assert line["path"] == ("/healthz" if i % 2 else "/activate/[redacted]")
    for i, answer in answers.items():
        assert answer.headers.get_list("x-request-id") == [f"req-{i}"]
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
    assert "secret-link" not in stream.getvalue()
    half = REQUESTS // 2
    assert (_served("health", "200"), _served("signin", "410")) == (
        before[0] + half,
        before[1] + half,
    )


async def _page(scope, receive, send) -> None:
    headers = [(b"content-type", b"text/html; charset=utf-8"), (b"x-frame-options", b"SAMEORIGIN")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"<p>hi</p>"})


def test_the_log_metrics_and_headers_cost_a_bounded_number_of_calls_per_request():
    """229 calls per request before issue 15 (four regex substitutions per logged field, a
    stack walk per log record, ``labels()`` per observation, ``MutableHeaders``); now ~140."""
    stream = io.StringIO()
    configure_logging(stream=stream)
    stack = SecurityHeadersMiddleware(RequestLogMiddleware(_page), https=True)
    sent: list[dict] = []
    calls = 0

    def count(frame, event, arg) -> None:
        nonlocal calls
        calls += event in ("call", "c_call")

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message) -> None:
        sent.append(message)

    async def request() -> None:
        scope = {"type": "http", "method": "GET", "path": "/admin", "headers": [(b"host", b"h")]}
        await stack(scope, receive, send)

    async def counted() -> None:
        sys.setprofile(count)
        try:
            await request()
        finally:
            sys.setprofile(None)

    try:
        # a thread of its own: Playwright's sync API (tests/browser, earlier in the same
        # worker) leaves this thread's event loop running, and asyncio.run refuses to start there
        with ThreadPoolExecutor(max_workers=1) as thread:
            thread.submit(asyncio.run, request()).result()  # first use: caches filled
            thread.submit(asyncio.run, counted()).result()
    finally:
        logging.getLogger().handlers[:] = []
    assert calls <= 160, calls
    headers = dict(sent[-2]["headers"])
    assert len(headers[b"x-request-id"]) == 16 and headers[b"x-frame-options"] == b"DENY"
    assert headers[b"strict-transport-security"].startswith(b"max-age=")
    assert headers[b"content-security-policy"].startswith(b"default-src 'self'")
    [_, line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["path"] == "/admin" and line["request_id"] == headers[b"x-request-id"].decode()


def test_a_new_request_id_costs_no_system_call(settings, database):
    """Issue 15: each new request id was ``os.urandom(8)``, a system call on the event loop's
    thread that gives up the GIL (under load the loop then waits for a worker thread to hand
    it back). Ids now come from a generator seeded once; they stay 16 hex digits, all distinct."""
    import os
    import threading

    syscalls, on = 0, False

    def count(frame, event, arg) -> None:
        nonlocal syscalls
        syscalls += on and event == "c_call" and arg is os.urandom

    threading.setprofile(count)  # the app runs in the TestClient's portal thread
    try:
        with TestClient(create_app(settings, database=database)) as client:
            client.get("/healthz")
            on = True
            ids = [client.get("/healthz").headers["x-request-id"] for _ in range(50)]
            on = False
    finally:
        threading.setprofile(None)
    assert syscalls == 0, syscalls
    assert len(set(ids)) == 50 and all(len(i) == 16 and int(i, 16) >= 0 for i in ids), ids
