"""SQLite's WAL checkpoints, run beside the requests instead of inside their commits (issue 15).

SQLite copies the WAL back into the database (a checkpoint) in whichever commit takes the WAL
past ``wal_autocheckpoint`` pages: at 1,000 pages that was one SCIM create in 17, which then
took ~4.6 ms more CPU and ~43 ms more wall (the copy and its fsync), the p99 of creates. The
write units of work of a :class:`server.db.session.Database` now tell a :class:`Checkpointer`
when they commit; every :data:`WRITES_PER_CHECKPOINT` commits its thread runs a ``PASSIVE``
checkpoint on a connection of its own (it never waits for a lock, and pysqlite releases the
GIL while it copies). ``wal_autocheckpoint`` stays as the bound of the WAL, raised to
:data:`AUTOCHECKPOINT_PAGES`, for the writes that come faster than the thread keeps up and for
the other processes (``rollcall import``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("rollcall.db")

AUTOCHECKPOINT_PAGES = 10_000  # ~40 MiB of 4 KiB pages: the WAL's bound
WRITES_PER_CHECKPOINT = 16  # a SCIM create writes 60-90 pages: ~1,000-1,400 pages apart


class Checkpointer:
    """Checkpoints the WAL of the database file at ``path`` in a thread of its own, started
    at the first checkpoint it is asked for, every ``every`` write commits."""

    def __init__(self, path: str, every: int = WRITES_PER_CHECKPOINT) -> None:
        self.path = path
        self.every = every
        self.checkpoints = 0  # run so far (tests count them)
        self._commits = 0
        self._wake = threading.Event()
        self._stopping = False
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def committed(self) -> None:
        """A write unit of work committed."""
        with self._lock:
            self._commits += 1
            if self._commits < self.every or self._stopping:
                return
            self._commits = 0
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._run, name="rollcall-checkpoint", daemon=True
                )
                self.thread.start()
        self._wake.set()

    def stop(self) -> None:
        """End the thread (its connection closed); later commits start none."""
        with self._lock:
            self._stopping = True
            thread = self.thread
        self._wake.set()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.checkpoints += 1
                except sqlite3.Error as error:  # another checkpoint runs: the next one will do
                    log.debug("checkpoint skipped", extra={"reason": str(error)})
        finally:
            connection.close()
