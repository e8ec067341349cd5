"""Tenants, the connections that feed them, and the staff who manage them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum, nonmember
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db.base import Base, new_id, utcnow


class Tenant(Base):
    """A district. Every other record belongs to exactly one tenant."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(unique=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # the key of purged users' pseudonyms and typed-name hashes (server/domain/pseudonyms.py)
    sealed_pseudonym_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConnectionKind(StrEnum):
    SCIM = "scim"
    ONEROSTER_REST = "oneroster_rest"
    ONEROSTER_CSV = "oneroster_csv"
    CSV = "csv"
    MANUAL = "manual"


class Connection(Base):
    """A source of records. It owns what it provisions; SSO connections guard credentials."""

    __tablename__ = "connections"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_connections_tenant_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # no index of its own: uq_connections_tenant_name leads with it (issue 15)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str]
    kind: Mapped[str] = mapped_column(String(20))
    sso: Mapped[bool] = mapped_column(Boolean, default=False)
    sso_provider: Mapped[str | None]
    profile: Mapped[str | None] = mapped_column(String(20))
    adopt_by: Mapped[str | None] = mapped_column(String(20))
    school_ids: Mapped[list[str]] = mapped_column(default=list)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sync_at: Mapped[datetime | None]
    last_sync_result: Mapped[str | None] = mapped_column(String(2000))
    # the lease of the pull in progress (server/domain/leases.py): one walk of an upstream at once
    pull_owner: Mapped[str | None] = mapped_column(String(64))
    pull_until: Mapped[datetime | None]

    tenant: Mapped[Tenant] = relationship(lazy="joined")
    tokens: Mapped[list[ConnectionToken]] = relationship(
        back_populates="connection", cascade="all, delete-orphan"
    )

    @property
    def provider_name(self) -> str:
        """What staff and students are told manages the account ("Clever", "Entra ID")."""
        return self.sso_provider or self.name


class ConnectionToken(Base):
    """A bearer token of a connection, stored only as its SHA-256 digest."""

    __tablename__ = "connection_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), index=True
    )
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    connection: Mapped[Connection] = relationship(back_populates="tokens")


class StaffRole(StrEnum):
    DISTRICT_ADMIN = "district_admin"
    SCHOOL_ADMIN = "school_admin"
    TEACHER = "teacher"

    ALL = nonmember((DISTRICT_ADMIN, SCHOOL_ADMIN, TEACHER))


class StaffAccount(Base):
    """A person who signs in to the admin UI or API: district admin, school admin, teacher."""

    __tablename__ = "staff_accounts"
    __table_args__ = (
        Index("uq_staff_accounts_tenant_username", "tenant_id", "username_folded", unique=True),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # no index of its own: uq_staff_accounts_tenant_username leads with it (issue 15)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    username: Mapped[str]
    username_folded: Mapped[str]
    display_name: Mapped[str | None]
    email: Mapped[str | None]
    role: Mapped[str] = mapped_column(String(20))
    school_ids: Mapped[list[str]] = mapped_column(default=list)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    password_hash: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaffToken(Base):
    """A bearer token for the admin JSON API, bound to one staff account."""

    __tablename__ = "staff_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    staff_id: Mapped[str] = mapped_column(
        ForeignKey("staff_accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str]
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class ProviderFailure(Base):
    """A request from a connection that Rollcall refused: what it asked and why it failed."""

    __tablename__ = "provider_failures"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    status: Mapped[int]
    error: Mapped[str] = mapped_column(String(2000))
    request_excerpt: Mapped[str | None] = mapped_column(String(2000))
