"""Imports over HTTP run in the background, never inside the request (issue 13, defect 4).

:class:`ImportRunner` starts each import on its own thread, after recording a ``running``
row in ``import_runs`` so the run can be polled at once. The HTTP handler waits for it up to
``ROLLCALL_IMPORT_WAIT_SECONDS`` (default 30): a run that finishes in time is answered with
its report as before, a longer one with 202 and the run's URL. Parsing and writing happen
off the event loop, so ``/healthz``, SCIM and OneRoster keep answering meanwhile.

Shutdown is bounded: when the process is told to stop (SIGTERM/SIGINT, or the app's
lifespan ends), runs still in flight get ``ROLLCALL_SHUTDOWN_GRACE_SECONDS`` (default 30)
to finish; then each is stopped at its next batch, rolled back, and recorded as
``interrupted`` so operators see what was aborted.

Every run (HTTP, ``rollcall import``, a pull) is leased to its process while it runs
(``import_runs.owner``/``lease_until``, renewed by a heartbeat): a run whose process was killed
is marked ``interrupted`` by the next worker poll or start-up of any process
(:func:`~server.domain.import_runs.interrupt_abandoned_runs`).

Example (what :mod:`server.web.imports_api` does)::

    started = runner.submit(job)
    if await runner.wait(started, settings.import_wait_seconds):
        report = started.future.result()
    else:
        ...  # 202, Location: /admin/api/imports/{started.run_id}
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from server.context import AppContext
from server.db import new_id
from server.domain import leases
from server.domain.actors import Actor
from server.domain.import_runs import Report, RunStatus, finish_unreported, record_running
from server.errors import DomainError, Interrupted
from server.imports.engine import ImportOptions, import_source, open_source
from server.shutdown import Shutdown

log = logging.getLogger("rollcall.imports")


@dataclass
class ImportJob:
    """One import to run: who, as which connection, what file (owned by the job), how."""

    tenant_id: str
    connection_id: str
    stream: IO[bytes] | str | Path  # a path: a file or folder the caller owns (CLI)
    filename: str | None
    options: ImportOptions
    actor_name: str
    person: Actor | None = None  # the staff member who uploaded the file (the audit names them)


@dataclass
class Started:
    """A run in flight: its id (already stored as ``running``) and its future report."""

    run_id: str
    future: Future[Report]


class ImportRunner:
    """Runs imports on background threads and stops them within the grace period."""

    def __init__(self, context: AppContext, shutdown: Shutdown | None = None) -> None:
        self.context = context
        self.stop = shutdown or Shutdown(context.settings.shutdown_grace_seconds)
        self.grace = self.stop.grace
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    @property
    def stopping(self) -> bool:
        return self.stop.stopping

    def submit(self, job: ImportJob) -> Started:
        """Record the run as ``running`` and start it; the job's stream is closed after."""
        run_id = start_run(
            self.context, job.tenant_id, job.connection_id, job.actor_name, job.options
        )
        future: Future[Report] = Future()
        # the run's log lines carry the request id of the upload (issue 13, defect 8)
        request = contextvars.copy_context()
        thread = threading.Thread(
            target=request.run,
            args=(self._run, job, run_id, future),
            name=f"import-{run_id}",
            daemon=True,
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return Started(run_id, future)

    async def wait(self, started: Started, seconds: float) -> bool:
        """Wait up to ``seconds`` for the run (less once shutdown begins); True if done.

        A wait of 0 never waits: every run is answered 202 (useful to hubs that poll anyway).
        """
        if seconds <= 0:
            return False
        waiting = asyncio.wrap_future(started.future)
        deadline = time.monotonic() + seconds
        while not waiting.done():
            left = deadline - time.monotonic()
            if left <= 0 or self.stopping:
                return False
            await asyncio.wait({waiting}, timeout=min(left, 0.25))
        return True

    def release(self, started: Started) -> None:
        """Nobody will read this run's report from memory (it was answered 202): close it
        when it ends (the stored run is what is polled)."""
        started.future.add_done_callback(_close_report)

    def begin_shutdown(self) -> None:
        """Start the grace period: runs still going when it ends are interrupted."""
        self.stop.begin()

    def shutdown(self) -> None:
        """Begin shutdown (if not begun) and wait for every run to finish or be interrupted."""
        self.begin_shutdown()
        deadline = time.monotonic() + self.grace
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            # after the grace period a run stops at its next batch and rolls back
            thread.join(timeout=max(deadline - time.monotonic(), 0) + 60)

    def watch_signals(self) -> None:
        """Start the grace period on SIGTERM/SIGINT too, before passing the signal on to the
        server's own handler (uvicorn's), so waiting requests answer 202 at once."""
        self.stop.watch_signals()

    def _run(self, job: ImportJob, run_id: str, future: Future[Report]) -> None:
        try:
            future.set_result(run_started(self.context, job, run_id, self.stop.check))
        except BaseException as error:  # handed to whoever waits; recorded on the run
            future.set_exception(error)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())


def start_run(
    context: AppContext,
    tenant_id: str,
    connection_id: str,
    actor_name: str,
    options: ImportOptions,
    format: str = "pending",
) -> str:
    """Record a run as ``running``, leased to this process; returns its id."""
    run_id = new_id()
    with context.database.session() as session:
        record_running(
            session,
            run_id,
            tenant_id=tenant_id,
            connection_id=connection_id,
            actor_name=actor_name,
            dry_run=options.dry_run,
            mode=options.mode,
            format=format,
        )
    return run_id


def run_started(
    context: AppContext, job: ImportJob, run_id: str, check: Callable[[int], None]
) -> Report:
    """Run the import of a run recorded by :func:`start_run`, its lease renewed by a heartbeat;
    ``check`` is called between batches (it raises :class:`~server.errors.Interrupted` to stop
    the run, which then rolls back). The stored run always ends: with the report, or
    ``interrupted``/``failed`` and the reason. The job's stream is closed after.

    :raises: whatever stopped the run (also recorded on it).
    """
    try:
        with leases.run_heartbeat(context.database, run_id):
            return _import(context, job, run_id, check)
    except BaseException as error:
        record_failure(context, run_id, error)
        raise
    finally:
        if not isinstance(job.stream, (str, Path)):
            job.stream.close()


def _import(
    context: AppContext, job: ImportJob, run_id: str, check: Callable[[int], None]
) -> Report:
    check(0)
    options = job.options
    source = open_source(
        job.stream, filename=job.filename, lenient=options.lenient, limits=options.limits
    )
    try:
        return import_source(
            context.database,
            context.box,
            job.tenant_id,
            job.connection_id,
            source,
            options,
            actor_name=job.actor_name,
            person=job.person,
            progress=check,
            run_id=run_id,
        )
    finally:
        source.close()


def record_failure(context: AppContext, run_id: str, error: BaseException) -> None:
    """End a running run that stopped on ``error`` without a report: interrupted or failed."""
    if isinstance(error, Interrupted):
        status = RunStatus.INTERRUPTED
        summary = f"Interrupted by {error.reason}: nothing was written. Run it again."
    elif isinstance(error, KeyboardInterrupt):
        status = RunStatus.INTERRUPTED
        summary = "Interrupted (Ctrl-C): nothing was written. Run it again."
    elif isinstance(error, DomainError):
        status, summary = RunStatus.FAILED, error.message
    else:
        log.exception("import failed", extra={"run_id": run_id}, exc_info=error)
        status, summary = RunStatus.FAILED, "The import failed: see the server log."
    try:
        with context.database.session() as session:
            finish_unreported(session, run_id, status, summary)
    except Exception:
        log.exception("recording a failed import failed", extra={"run_id": run_id})


def _close_report(future: Future[Report]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()
