"""Leases: a process holds a job or a connection's pull for a short time and renews it while it
works (SPEC §9), so work is never done twice at once and a dead process's work is taken over
within one lease.

A lease is a row's ``owner`` and ``until`` columns, taken with one conditional ``UPDATE``
(free, expired, or already ours), which is atomic on SQLite and PostgreSQL alike.
:class:`Heartbeat` renews a lease from a background thread, each renewal in its own short
unit of work, until the work is done.

Example::

    with pull_lease(database, connection_id):   # raises Conflict if another pull runs
        walk_the_upstream()
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, cast

from sqlalchemy import or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from server.db import Connection, ImportRun, Job, utcnow
from server.errors import Conflict

LEASE = timedelta(seconds=45)
HEARTBEAT = timedelta(seconds=15)
OWNER = f"{socket.gethostname()}:{os.getpid()}"


def process_owner() -> str:
    """This process as a lease owner, ``host:pid`` (read now: a forked child has its own)."""
    return f"{socket.gethostname()}:{os.getpid()}"


log = logging.getLogger("rollcall.leases")


def renew_job(session: Session, job_id: str, owner: str, lease: timedelta = LEASE) -> bool:
    """Extend a running job's lease; False if it is no longer ours (another took it over)."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == owner, Job.status == "running")
        .values(lease_until=utcnow() + lease)
    )
    return cast("CursorResult[Any]", result).rowcount == 1


def renew_run(session: Session, run_id: str, owner: str, lease: timedelta = LEASE) -> bool:
    """Extend a running import run's lease; False once it is no longer running."""
    result = session.execute(
        update(ImportRun)
        .where(ImportRun.id == run_id, ImportRun.owner == owner, ImportRun.status == "running")
        .values(lease_until=utcnow() + lease)
    )
    return cast("CursorResult[Any]", result).rowcount == 1


def run_heartbeat(database: Any, run_id: str) -> AbstractContextManager[Any]:
    """Renew a running import run's lease while the block runs.

    Not on SQLite: one machine, where the owner's process id answers (:func:`owner_gone`),
    and where the import's write lock would make every renewal wait and fail.
    """
    if database.engine.dialect.name == "sqlite":
        return nullcontext()
    renew = partial(renew_run, run_id=run_id, owner=process_owner())
    return Heartbeat(database, renew, what=f"import run {run_id}")


def owner_gone(owner: str | None, lease_until: datetime | None, now: datetime) -> bool:
    """Whether the process that holds a lease is gone, so its work will never finish.

    On this host the process id answers at once (``owner`` is ``host:pid``), and a live
    process keeps its work even when a long SQLite write kept its heartbeat from renewing
    (a process id reused by another process keeps it too, until that one ends); a process on
    another host is gone when its lease ran out.

    >>> owner_gone(process_owner(), None, utcnow())
    False
    """
    host, _, pid = (owner or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return not _alive(int(pid))
    if lease_until is None:
        return True
    if lease_until.tzinfo is None:
        lease_until = lease_until.replace(tzinfo=UTC)
    return lease_until < now


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def take_pull(session: Session, connection_id: str, owner: str, lease: timedelta = LEASE) -> bool:
    """Take (or renew) the pull lease of a connection; False while another process holds it.

    The lease of a process that is gone is free at once (:func:`owner_gone`): a dead worker's
    sync job, taken over once the job's lease ran out, finds the pull lease free even when its
    own beat renewed it a moment later.
    """
    now = utcnow()
    free = [Connection.pull_until.is_(None), Connection.pull_until < now]
    holder = session.execute(
        select(Connection.pull_owner, Connection.pull_until).where(Connection.id == connection_id)
    ).one_or_none()
    if holder is not None and holder.pull_owner not in (None, owner):
        process = holder.pull_owner.rpartition(":")[0]  # "host:pid:tag" → "host:pid"
        if owner_gone(process, holder.pull_until, now):
            free.append(Connection.pull_owner == holder.pull_owner)
    result = session.execute(
        update(Connection)
        .where(Connection.id == connection_id, or_(*free, Connection.pull_owner == owner))
        .values(pull_owner=owner, pull_until=now + lease)
    )
    return cast("CursorResult[Any]", result).rowcount == 1


def release_pull(session: Session, connection_id: str, owner: str) -> None:
    session.execute(
        update(Connection)
        .where(Connection.id == connection_id, Connection.pull_owner == owner)
        .values(pull_owner=None, pull_until=None)
    )


class Heartbeat:
    """Call ``renew(session)`` in its own unit of work every ``interval`` until stopped.

    A renewal that fails (a busy database) is logged and tried again at the next beat: the
    lease is several beats long.
    """

    def __init__(
        self,
        database: Any,
        renew: Callable[[Session], bool],
        interval: timedelta = HEARTBEAT,
        what: str = "lease",
    ) -> None:
        self.database = database
        self.renew = renew
        self.interval = interval.total_seconds()
        self.what = what
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="rollcall-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.database.session() as session:
                    if not self.renew(session):
                        log.warning("lease lost", extra={"lease": self.what})
            except Exception:
                log.warning("lease renewal failed", extra={"lease": self.what}, exc_info=True)


@contextmanager
def pull_lease(
    database: Any,
    connection_id: str,
    *,
    lease: timedelta = LEASE,
    interval: timedelta = HEARTBEAT,
) -> Iterator[None]:
    """Hold the connection's pull lease (renewed by a heartbeat) while the block runs.

    :raises Conflict: another pull of this connection is running (in any process or thread).
    """
    owner = f"{OWNER}:{uuid.uuid4().hex[:8]}"
    with database.session() as session:
        if not take_pull(session, connection_id, owner, lease):
            raise Conflict("Another pull of this connection is running; this one was not started.")
    try:
        renew = lambda s: take_pull(s, connection_id, owner, lease)  # noqa: E731
        with Heartbeat(database, renew, interval, what=f"pull {connection_id}"):
            yield
    finally:
        with database.session() as session:
            release_pull(session, connection_id, owner)
