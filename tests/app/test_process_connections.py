"""Database connections and request threads of a serving process (issue 15: ``rollcall serve
--workers N``). The N processes share one budget of connections (``ROLLCALL_DATABASE_CONNECTIONS``);
a process under load keeps its connections instead of opening and closing them.

Counted, never timed: connections opened, pool and thread-pool sizes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace

import anyio.to_thread
import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from server.app import create_app
from server.config import load_settings


@contextmanager
def serving(settings) -> Iterator[TestClient]:
    """The app as a process builds it from ``settings`` (its own engine), lifespan run."""
    app = create_app(settings)
    try:
        with TestClient(app) as client:
            yield client
    finally:
        app.state.context.database.dispose()


@pytest.mark.parametrize(("processes", "share"), [(1, 32), (2, 16), (4, 8), (16, 4)])
def test_each_process_of_n_keeps_its_share_of_the_connections_and_as_many_threads(
    settings, processes, share
):
    environ = {
        "ROLLCALL_DATA_DIR": str(settings.data_dir),
        "ROLLCALL_DATABASE_URL": settings.database_url,
        "ROLLCALL_SECRET_KEY": "s" * 32,
        "ROLLCALL_SERVE_PROCESSES": str(processes),  # what `rollcall serve --workers N` sets
    }
    loaded = load_settings(environ)
    assert loaded.process_connections == share  # 32 by default, 4 at least
    with serving(loaded) as client:
        assert client.app.state.context.database.engine.pool.size() == share
        assert client.portal is not None
        limiter = client.portal.call(anyio.to_thread.current_default_thread_limiter)
        assert limiter.total_tokens == share


def test_the_budget_is_the_operators_to_set(settings):
    loaded = load_settings(
        {
            "ROLLCALL_DATA_DIR": str(settings.data_dir),
            "ROLLCALL_DATABASE_CONNECTIONS": "60",
            "ROLLCALL_SERVE_PROCESSES": "3",
        }
    )
    assert loaded.process_connections == 20


def test_a_process_under_load_reuses_its_connections(settings):
    # 12 requests whose connections are all checked out at once, twice: the second burst
    # finds the first's connections in the pool. (A pool of 5 closed 7 of the 12 after the
    # first burst and opened 7 again: on PostgreSQL each a new backend, ~30 ms of its CPU.)
    at_once = 12
    with serving(replace(settings, serve_processes=1)) as client:
        engine = client.app.state.context.database.engine
        opened: list[int] = []
        together = threading.Barrier(at_once, timeout=10)
        event.listen(engine, "connect", lambda *_: opened.append(1))
        event.listen(engine, "checkout", lambda *_: together.wait())

        def burst() -> list[int]:
            with ThreadPoolExecutor(at_once) as pool:
                return list(pool.map(lambda _: client.get("/healthz").status_code, range(at_once)))

        assert burst() == [200] * at_once
        first = len(opened)
        assert burst() == [200] * at_once
    assert first == at_once
    assert len(opened) - first == 0
