"""PostgreSQL's planner statistics kept up with a long write into its own tables (issue 15).

PostgreSQL plans each statement from statistics that only ``ANALYZE`` (or autovacuum, after a
commit) refreshes. During a district's first import they lag the import's own transaction:
``users`` and ``enrollments`` look empty, or hold one tenant's rows in the planner's belief,
while the transaction has written thousands. Reads by tenant and key were then planned as
scans of the tenant's rows, once per batch or once per row: a 20,000-user first import spent
most of its minutes of database CPU reading enrollments it had just written (quadratic in the
district; ``bench/README.md``).

:func:`refresh_stale` analyses, inside the import's transaction, each of the roster's tables
that has grown to more than twice the size its statistics describe (PostgreSQL counts the
transaction's own new rows when it analyses in it). Growth doubles before the next one, so a
district costs a few analyses per table, a sample of at most 30,000 rows each. An ``ANALYZE``
takes a lock that only another ``ANALYZE``, ``VACUUM`` or schema change of the table waits for,
held to the end of the transaction. A table another transaction holds that lock on (another
import analysing it, autovacuum) is left as it is, and the lock is asked for with a short
``lock_timeout`` in a savepoint (a race): an import goes on with the statistics it has rather
than wait for another one to commit. SQLite plans from its indexes
without statistics: nothing is done there.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

log = logging.getLogger("rollcall.db")

# the tables an import reads back by tenant and key while it fills them, one or more rows per
# user (orgs, courses and terms stay small: a plan that scans them costs little); each check
# costs about a millisecond of the database's per table (the size of its file)
ROSTER_TABLES = ("classes", "credentials", "enrollments", "user_roles", "users")
LEAST_PAGES = 8  # a table is analysed once it outgrows twice this, or twice what was analysed
LOCK_WAIT = "100ms"  # how long an ANALYZE may wait for another one of the same table
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout expires

_STALE = text(
    "SELECT c.relname FROM unnest(CAST(:tables AS text[])) AS t(name)"
    " JOIN pg_class c ON c.oid = to_regclass(t.name)"
    " WHERE pg_relation_size(c.oid) / current_setting('block_size')::int"
    " > 2 * greatest(c.relpages, :least)"
    " ORDER BY c.relname"
)
# another transaction analysing (or vacuuming) the table: pg_locks reads every lock of the
# server, so it is asked only of a table found stale
_HELD_ELSEWHERE = text(
    "SELECT EXISTS (SELECT FROM pg_locks WHERE relation = to_regclass(:table) AND granted"
    " AND mode = 'ShareUpdateExclusiveLock' AND pid <> pg_backend_pid())"
)


def refresh_stale(session: Session) -> list[str]:
    """Analyse, in the session's transaction, the roster's tables grown past twice what their
    statistics describe; returns those analysed (none on SQLite)."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    stale = session.scalars(_STALE, {"tables": list(ROSTER_TABLES), "least": LEAST_PAGES})
    return [
        table
        for table in stale.all()
        if not session.scalar(_HELD_ELSEWHERE, {"table": table}) and _analysed(session, table)
    ]


def _analysed(session: Session, table: str) -> bool:
    """``ANALYZE table`` in a savepoint, waiting at most :data:`LOCK_WAIT` for its lock;
    False when another transaction holds it (the import goes on without)."""
    kept = session.scalar(text("SELECT current_setting('lock_timeout')"))
    try:
        with session.begin_nested():
            _lock_timeout(session, LOCK_WAIT)
            session.execute(text(f'ANALYZE "{table}"'))  # a name of ROSTER_TABLES
            _lock_timeout(session, kept)
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        log.info(
            "statistics not refreshed: another transaction is analysing", extra={"table": table}
        )
        return False  # the savepoint's rollback restored the lock_timeout
    return True


def _lock_timeout(session: Session, value: str) -> None:
    session.execute(text("SELECT set_config('lock_timeout', :value, true)"), {"value": value})
