"""The roster state: a value that differs after every committed write to the roster.

What a OneRoster read counts (:data:`ROSTER_TABLES`) is kept in the process only while the
roster state it was counted at is the current one (:mod:`server.domain.roster_reads`); an
import recognises an unchanged roster by it (:mod:`server.domain.package_runs`), and an import
prepared on a copy of a SQLite database checks it, with :func:`writes_state`, before replaying
its writes (:mod:`server.imports.prepared`).

PostgreSQL keeps it per tenant, written by statement triggers (migration
``0014_roster_versions``). SQLite keeps one for the whole database, moved by an engine hook on
the first write to a roster table in each transaction (:func:`_bump_sqlite_state`), with a
second counter for the other tables an import may read.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Connection, Engine, event, func, select
from sqlalchemy.orm import Session

from server.db import RosterChange, RosterVersion
from server.db.base import Base
from server.db.replay import WRITE_STATEMENT

# The tables a OneRoster read counts (the same list as migration 0014_roster_versions).
ROSTER_TABLES = frozenset(
    {
        "users",
        "user_roles",
        "user_grades",
        "orgs",
        "academic_sessions",
        "courses",
        "classes",
        "class_terms",
        "enrollments",
        "tenants",  # deleting a tenant cascades to all of them
    }
)
SQLITE_STATE_ROW = "*"
_BUMPED = "rostering_bumped"


# SQLite: writes to these tables move a second counter (row ``WRITES_STATE_ROW``), which
# :func:`writes_state` reads: what an import prepared on a copy of the database read besides
# the roster (connections, credentials, settings, ...) is unchanged while it stays
# (:mod:`server.imports.prepared`). Not the tables only appended to or kept for the runs
# themselves (audit, reports and their leases, sign-in sessions and throttles, job queue).
QUIET_TABLES = frozenset(
    {
        "audit_events",
        "audit_amendments",
        "import_runs",
        "import_row_results",
        "purge_runs",
        "roster_versions",
        "roster_changes",
        "browser_sessions",
        "login_throttles",
        "oauth_codes",
        "oauth_tokens",
        "oauth1_nonces",
        "staff_tokens",
        "jobs",
        "form_submissions",
        "provider_failures",
    }
)
WRITES_STATE_ROW = "+"
_OTHER_BUMPED = "rostering_other_bumped"


_WATCHED = frozenset(Base.metadata.tables) - ROSTER_TABLES - QUIET_TABLES


def _bump(state_row: str) -> str:
    return (
        "INSERT INTO roster_versions (tenant_id, epoch, version) "
        f"VALUES ('{state_row}', lower(hex(randomblob(16))), 1) "
        "ON CONFLICT (tenant_id) DO UPDATE SET version = version + 1"
    )


_BUMP = _bump(SQLITE_STATE_ROW)
_BUMP_OTHER = _bump(WRITES_STATE_ROW)


@event.listens_for(Engine, "after_cursor_execute")
def _bump_sqlite_state(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
) -> None:
    """SQLite: the first write to a roster table in a transaction moves the database's roster
    state, in that transaction (row triggers cost 2-3x a bulk insert there; PostgreSQL's
    statement triggers, migration 0014, cost one row per statement); the first write to
    another watched table (:data:`QUIET_TABLES`) moves the second counter. Every statement
    sent through SQLAlchemy passes here: the domain, bulk imports, migrations, SQL in tests."""
    info = conn.info
    if conn.dialect.name != "sqlite" or (info.get(_BUMPED) and info.get(_OTHER_BUMPED)):
        return
    written = WRITE_STATEMENT.match(statement)
    if written is None:
        return
    table = written.group(1).lower()
    if table in ROSTER_TABLES:
        flag, bump = _BUMPED, _BUMP
    elif table in _WATCHED:
        flag, bump = _OTHER_BUMPED, _BUMP_OTHER
    else:
        return
    if info.get(flag):
        return
    try:
        # on a cursor of its own: the statement's cursor keeps its rowcount (an executemany
        # UPDATE checks its rows' versions by it: server.domain.bulk_updates)
        cursor.connection.execute(bump)
    except sqlite3.OperationalError as error:
        if "no such table" not in str(error):
            raise
        return  # a migration before 0014: nothing can be kept yet
    if getattr(cursor.connection, "in_transaction", False):
        info[flag] = True  # the next bump is in the next transaction


@event.listens_for(Engine, "commit")
@event.listens_for(Engine, "rollback")
@event.listens_for(Engine, "rollback_savepoint")
def _transaction_over(conn: Connection, *_: Any) -> None:
    conn.info.pop(_BUMPED, None)
    conn.info.pop(_OTHER_BUMPED, None)


def writes_state(session: Session) -> tuple[Any, ...]:
    """SQLite: the counter of writes to the watched tables (:data:`QUIET_TABLES`), which
    differs after every committed write to one; PostgreSQL: ``()`` (not kept)."""
    if session.get_bind().dialect.name != "sqlite":
        return ()
    row = session.execute(
        select(RosterVersion.epoch, RosterVersion.version).where(
            RosterVersion.tenant_id == WRITES_STATE_ROW
        )
    ).first()
    return tuple(row) if row is not None else ()


def roster_state(session: Session, tenant_id: str) -> tuple[Any, ...]:
    """The roster state in one statement: (epoch, version, count and highest id of the
    unfolded changes) of the tenant on PostgreSQL, of the whole database on SQLite. It
    differs after every committed write to a counted table."""
    if session.get_bind().dialect.name == "sqlite":
        tenant_id = SQLITE_STATE_ROW
    versions = select(RosterVersion.epoch, RosterVersion.version).where(
        RosterVersion.tenant_id == tenant_id
    )
    changes = select(func.count(), func.max(RosterChange.id)).where(
        RosterChange.tenant_id == tenant_id
    )
    kept, changed = versions.subquery(), changes.subquery()
    row = session.execute(
        select(
            select(kept.c.epoch).scalar_subquery(),
            select(kept.c.version).scalar_subquery(),
            *changed.c,
        )
    ).one()
    return tuple(row)


def wrote_roster(session: Session) -> bool:
    """Whether the session's transaction has written to a roster table (SQLite: its state moved
    at that first write, not at each)."""
    return bool(session.connection().info.get(_BUMPED))
