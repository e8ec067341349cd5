"""The background worker: runs due jobs from the database queue (SPEC §9).

It runs on a thread of every ``rollcall serve`` process (unless ``--no-worker``), or alone in
the foreground as ``rollcall worker``.
"""

from __future__ import annotations

import logging
import threading

from server.context import AppContext
from server.domain import jobs, retention
from server.mail import EMAIL_JOB, email_runner
from server.shutdown import Shutdown

log = logging.getLogger("rollcall.worker")


def runners(context: AppContext, shutdown: Shutdown | None = None) -> dict[str, jobs.Runner]:
    """The runner of each job kind; long ones (a pull) stop when ``shutdown``'s grace ends."""
    from server.imports.drop_folder import SCAN_JOB, scan_runner
    from server.imports.pull import SYNC_JOB, sync_runner

    return {
        EMAIL_JOB: email_runner(context.settings),
        SYNC_JOB: sync_runner(context, shutdown),
        SCAN_JOB: scan_runner(context, shutdown),
        retention.PURGE_JOB: retention.purge_runner(context.settings.secret_keys),
    }


def enqueue_due_syncs(context: AppContext) -> int:
    """Queue the scheduled pulls and drop-folder scans that are due (one check per poll)."""
    from server.imports.drop_folder import enqueue_due_scans
    from server.imports.pull import enqueue_due_syncs as enqueue

    with context.database.session() as session:
        settle = context.settings.drop_settle_seconds
        return enqueue(session) + enqueue_due_scans(session, settle)


def interrupt_abandoned_runs(context: AppContext) -> int:
    """Mark ``interrupted`` the import runs whose process died (issue 13)."""
    from server.domain.import_runs import interrupt_abandoned_runs as interrupt

    return interrupt(context.database)


def enqueue_due_purges(context: AppContext) -> int:
    """Queue the daily retention job of each tenant that is due (docs/retention.md)."""
    with context.database.session() as session:
        return retention.enqueue_due_purges(session)


class Worker:
    """Polls the job queue every ``interval`` seconds on a daemon thread until stopped.

    When ``shutdown`` begins it takes no more jobs; the job in hand has the grace period,
    then stops (a pull rolls back, its run is recorded as interrupted, the job is queued
    again for another process).
    """

    def __init__(
        self, context: AppContext, interval: float = 2.0, shutdown: Shutdown | None = None
    ) -> None:
        self.context = context
        self.interval = interval
        self.shutdown = shutdown or Shutdown(context.settings.shutdown_grace_seconds)
        self.shutdown.on_begin(self.stop_soon)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rollcall-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop taking jobs and wait for the job in hand (interrupted after the grace)."""
        self.shutdown.begin()
        self._thread.join(timeout=self.shutdown.grace + 30)

    def stop_soon(self) -> None:
        """Ask the loop to end after the job in hand (safe from a signal handler)."""
        self._stop.set()

    def run(self) -> None:
        """Run the loop in the calling thread until :meth:`stop_soon` (``rollcall worker``)."""
        self._loop()

    def _loop(self) -> None:
        log.info("worker started", extra={"worker": jobs.WORKER_ID})
        table = runners(self.context, self.shutdown)
        while not self._stop.is_set():
            for step, failure in (
                (interrupt_abandoned_runs, "marking abandoned import runs failed"),
                (enqueue_due_syncs, "scheduling due syncs failed"),
                (enqueue_due_purges, "scheduling the retention job failed"),
            ):
                try:
                    step(self.context)
                except Exception:
                    log.exception(failure)
            try:
                ran = jobs.run_due(
                    self.context.database,
                    table,
                    lease=self.context.settings.job_lease,
                    heartbeat=self.context.settings.job_heartbeat,
                    until=self._stop,
                )
            except Exception:
                log.exception("job queue poll failed")
                ran = 0
            if not ran:
                self._stop.wait(self.interval)
        log.info("worker stopped", extra={"worker": jobs.WORKER_ID})
