"""What each run of the daily retention job removed (counts only, never what the rows held)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, utcnow
from server.db.records import AutoIncrement


class PurgeRun(Base):
    """One run of the retention job in one tenant: when, and how many rows of what it removed."""

    __tablename__ = "purge_runs"
    __table_args__ = (Index("ix_purge_runs_tenant_ran", "tenant_id", "ran_at"),)

    id: Mapped[int] = mapped_column(AutoIncrement, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    ran_at: Mapped[datetime] = mapped_column(default=utcnow)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
