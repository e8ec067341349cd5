"""What PostgreSQL's planner believes of a table, faked for a test (catalog writes need the
superuser the test database runs as)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, text


def fake_statistics(connection: Connection, tables: Iterable[str], tuples: int, pages: int) -> None:
    """Make ``tables`` look ``tuples`` rows over ``pages`` pages (``-1, 0``: never analysed),
    without column statistics, for as long as ``connection``'s transaction holds."""
    describe = text(
        "UPDATE pg_class SET reltuples = :n, relpages = :p WHERE oid = CAST(:t AS regclass)"
    )
    forget = text("DELETE FROM pg_statistic WHERE starelid = CAST(:t AS regclass)")
    for table in tables:
        connection.execute(describe, {"n": tuples, "p": pages, "t": table})
        connection.execute(forget, {"t": table})
