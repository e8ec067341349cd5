"""Append-only records: the audit log and import runs with their row reports.

``audit_events`` is append-only in the database itself (migration ``0013_audit_append_only``):
triggers refuse any UPDATE or DELETE (and TRUNCATE on PostgreSQL) unless the same transaction
holds a row of ``audit_amendments``, which only :func:`server.domain.audit.amending` writes
(purge pseudonymisation, retention, deleting a tenant) and removes before it returns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, new_id, utcnow

AutoIncrement = BigInteger().with_variant(Integer(), "sqlite")


class AuditEvent(Base):
    """Who did what to which record, with the before/after of changed fields (never a secret)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_tenant_at", "tenant_id", "at"),
        Index("ix_audit_events_target", "target_id"),
    )

    id: Mapped[int] = mapped_column(AutoIncrement, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(36))
    actor_name: Mapped[str]
    via: Mapped[str | None]
    action: Mapped[str] = mapped_column(String(60))
    target_kind: Mapped[str | None] = mapped_column(String(30))
    target_id: Mapped[str | None] = mapped_column(String(36))
    target_label: Mapped[str | None]
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    detail: Mapped[str | None] = mapped_column(String(2000))
    override: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditAmendment(Base):
    """The per-transaction marker that lets purge and retention change ``audit_events``.

    A row lives only inside the transaction that inserted it (:func:`server.domain.audit.
    amending` deletes it again), so no other transaction ever sees one.
    """

    __tablename__ = "audit_amendments"

    id: Mapped[int] = mapped_column(AutoIncrement, primary_key=True, autoincrement=True)
    reason: Mapped[str] = mapped_column(String(60))


class ImportRun(Base):
    """One import or trial run of a file or pull, with its counts; rows in ImportRowResult."""

    __tablename__ = "import_runs"
    __table_args__ = (
        Index("ix_import_runs_tenant_started", "tenant_id", "started_at"),
        Index("ix_import_runs_fingerprint", "tenant_id", "package_fingerprint"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    connection_id: Mapped[str | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL")
    )
    actor_name: Mapped[str]
    source_name: Mapped[str | None]
    format: Mapped[str] = mapped_column(String(30))
    mode: Mapped[str] = mapped_column(String(10), default="delta")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(20), default="running")
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    summary: Mapped[str | None] = mapped_column(String(2000))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    # while running: the process that runs it ("host:pid") and its lease, renewed by a
    # heartbeat; a run whose process died is marked interrupted (server/domain/leases.py)
    owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    # an applied clean run: its package's fingerprint and the roster state at which the
    # database was proven to equal it (server/domain/package_runs.py, issue 15)
    package_fingerprint: Mapped[str | None] = mapped_column(String(64))
    proven_state: Mapped[str | None] = mapped_column(String(80))
    # and the fingerprint of each of its files (file name -> fingerprint)
    file_prints: Mapped[dict[str, Any] | None]
    # and, of those files, how many rows it stored as reading the file reports them (file
    # name -> rows; server/domain/import_runs.py: a later run copies them)
    file_rows: Mapped[dict[str, Any] | None]


class ImportRowResult(Base):
    """The outcome of one row of an import: created/updated/unchanged/…, with a status code."""

    __tablename__ = "import_row_results"
    __table_args__ = (
        Index("ix_import_row_results_run", "run_id", "id"),
        # Only the rows that stand for another run's rows (few): a run's, and a run's referrers
        Index(
            "ix_import_row_results_refs",
            "run_id",
            "id",
            sqlite_where=text("rows_of IS NOT NULL"),
            postgresql_where=text("rows_of IS NOT NULL"),
        ),
        Index(
            "ix_import_row_results_rows_of",
            "rows_of",
            "file",
            sqlite_where=text("rows_of IS NOT NULL"),
            postgresql_where=text("rows_of IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(AutoIncrement, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("import_runs.id", ondelete="CASCADE"))
    file: Mapped[str | None] = mapped_column(String(60))
    row_number: Mapped[int | None] = mapped_column(Integer)
    record_key: Mapped[str | None]
    outcome: Mapped[str] = mapped_column(String(20))
    code: Mapped[str | None] = mapped_column(String(8))
    message: Mapped[str | None] = mapped_column(String(2000))
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # set on the one row that stands for every row of ``file`` as run ``rows_of`` stored them,
    # each reported unchanged (a file left unread: server/domain/import_runs.py, issue 15);
    # its ``row_number`` says how many
    rows_of: Mapped[str | None] = mapped_column(String(36))
