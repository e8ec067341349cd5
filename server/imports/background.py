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

Example (what :mod:`server.web.imports_api` does)::

    started = runner.submit(job)
    if await runner.wait(started, settings.import_wait_seconds):
        report = started.future.result()
    else:
        ...  # 202, Location: /admin/api/imports/{started.run_id}
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from types import FrameType
from typing import IO, Any

from server.context import AppContext
from server.db import new_id
from server.domain.actors import Actor
from server.domain.import_runs import Report, RunStatus, finish_unreported, record_running
from server.errors import DomainError
from server.imports.engine import ImportInterrupted, ImportOptions, import_source, open_source

log = logging.getLogger("rollcall.imports")


@dataclass
class ImportJob:
    """One import to run: who, as which connection, what file (owned by the job), how."""

    tenant_id: str
    connection_id: str
    stream: IO[bytes]
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

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.grace = context.settings.shutdown_grace_seconds
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._interrupt = threading.Event()
        self._deadline: float | None = None

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def submit(self, job: ImportJob) -> Started:
        """Record the run as ``running`` and start it; the job's stream is closed after."""
        run_id = new_id()
        with self.context.database.session() as session:
            record_running(
                session,
                run_id,
                tenant_id=job.tenant_id,
                connection_id=job.connection_id,
                actor_name=job.actor_name,
                dry_run=job.options.dry_run,
                mode=job.options.mode,
            )
        future: Future[Report] = Future()
        thread = threading.Thread(
            target=self._run, args=(job, run_id, future), name=f"import-{run_id}", daemon=True
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
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._deadline = time.monotonic() + self.grace
        timer = threading.Timer(self.grace, self._interrupt.set)
        timer.daemon = True
        timer.start()

    def shutdown(self) -> None:
        """Begin shutdown (if not begun) and wait for every run to finish or be interrupted."""
        self.begin_shutdown()
        assert self._deadline is not None
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            # after the grace period a run stops at its next batch and rolls back
            thread.join(timeout=max(self._deadline - time.monotonic(), 0) + 60)

    def watch_signals(self) -> None:
        """Start the grace period on SIGTERM/SIGINT too, before passing the signal on to the
        server's own handler (uvicorn's), so waiting requests answer 202 at once."""
        if threading.current_thread() is not threading.main_thread():
            return
        for number in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(number)

            def handler(sig: int, frame: FrameType | None, previous: Any = previous) -> None:
                self.begin_shutdown()
                if callable(previous):
                    previous(sig, frame)

            signal.signal(number, handler)

    def _check(self, done: int) -> None:
        if self._interrupt.is_set():
            raise ImportInterrupted

    def _run(self, job: ImportJob, run_id: str, future: Future[Report]) -> None:
        try:
            future.set_result(self._import(job, run_id))
        except BaseException as error:  # handed to whoever waits; recorded on the run
            self._record_failure(run_id, error)
            future.set_exception(error)
        finally:
            job.stream.close()
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _import(self, job: ImportJob, run_id: str) -> Report:
        self._check(0)
        options = job.options
        source = open_source(
            job.stream, filename=job.filename, lenient=options.lenient, limits=options.limits
        )
        try:
            return import_source(
                self.context.database,
                self.context.box,
                job.tenant_id,
                job.connection_id,
                source,
                options,
                actor_name=job.actor_name,
                person=job.person,
                progress=self._check,
                run_id=run_id,
            )
        finally:
            source.close()

    def _record_failure(self, run_id: str, error: BaseException) -> None:
        if isinstance(error, ImportInterrupted):
            status, summary = RunStatus.INTERRUPTED, "Interrupted by a server shutdown."
        elif isinstance(error, DomainError):
            status, summary = RunStatus.FAILED, error.message
        else:
            log.exception("import failed", extra={"run_id": run_id}, exc_info=error)
            status, summary = RunStatus.FAILED, "The import failed: see the server log."
        try:
            with self.context.database.session() as session:
                finish_unreported(session, run_id, status, summary)
        except Exception:
            log.exception("recording a failed import failed", extra={"run_id": run_id})


def _close_report(future: Future[Report]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()
