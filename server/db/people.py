"""Users, their roles and grades, and their credentials."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from server.db.base import Base, new_record_id, utcnow
from server.db.tenancy import Connection


class RecordStatus(StrEnum):
    """Lifecycle of every synced record: deactivated records keep their data, deleted ones wait
    for the purge job."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    DELETED = "deleted"


# the deleted status written into the SQL, not bound: see :func:`not_deleted`
_DELETED = literal_column(f"'{RecordStatus.DELETED.value}'", String)


def not_deleted(status: Any) -> ColumnElement[bool]:
    """``status != 'deleted'`` with the status written into the SQL: the one way any table's
    query leaves out deleted records. SQLite prepares a statement again on every execution when
    a bound value is compared with the condition of a partial index, such as
    ``uq_users_tenant_username`` (``WHERE status != 'deleted'``), so a bound status made each
    read of users parsed and planned anew (https://sqlite.org/c3ref/prepare.html, issue 15)."""
    return cast(ColumnElement[bool], status != _DELETED)


class User(Base):
    """One person: student, teacher, administrator, aide, guardian…"""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "sourced_id", name="uq_users_tenant_sourced_id"),
        Index(
            "uq_users_tenant_username",
            "tenant_id",
            "username_folded",
            unique=True,
            sqlite_where=text("status != 'deleted'"),
            postgresql_where=text("status != 'deleted'"),
        ),
        Index("ix_users_connection_external_id", "connection_id", "external_id_folded"),
        # SCIM `externalId eq` names the tenant, the connection and the value: with all three
        # in one index SQLite's planner picks it even without statistics (issue 15).
        Index(
            "ix_users_tenant_connection_external_id",
            "tenant_id",
            "connection_id",
            "external_id_folded",
        ),
        Index(
            "ix_users_tenant_status_name",
            "tenant_id",
            "status",
            "family_folded",
            "given_folded",
            "id",
        ),
        Index(
            "ix_users_tenant_family",
            "tenant_id",
            "family_folded",
            postgresql_ops={"family_folded": "varchar_pattern_ops"},
        ),
        Index(
            "ix_users_tenant_given",
            "tenant_id",
            "given_folded",
            postgresql_ops={"given_folded": "varchar_pattern_ops"},
        ),
        Index(
            "ix_users_tenant_email",
            "tenant_id",
            "email_folded",
            postgresql_ops={"email_folded": "varchar_pattern_ops"},
        ),
        Index(
            "ix_users_tenant_username_prefix",
            "tenant_id",
            "username_folded",
            postgresql_ops={"username_folded": "varchar_pattern_ops"},
        ),
        Index("ix_users_tenant_identifier", "tenant_id", "identifier"),
        Index("ix_users_tenant_role", "tenant_id", "primary_role"),
        Index("ix_users_tenant_updated", "tenant_id", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_record_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # no index of its own: ix_users_connection_external_id leads with it (issue 15)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id"))
    sourced_id: Mapped[str]
    external_id: Mapped[str | None]
    external_id_folded: Mapped[str | None]
    username: Mapped[str]
    username_folded: Mapped[str]
    given_name: Mapped[str] = mapped_column(default="")
    family_name: Mapped[str] = mapped_column(default="")
    middle_name: Mapped[str | None]
    preferred_given_name: Mapped[str | None]
    preferred_family_name: Mapped[str | None]
    given_folded: Mapped[str] = mapped_column(default="")
    family_folded: Mapped[str] = mapped_column(default="")
    email: Mapped[str | None]
    email_folded: Mapped[str | None]
    identifier: Mapped[str | None]
    primary_role: Mapped[str] = mapped_column(String(40), default="student")
    # OneRoster 1.2 ``primaryOrg``: as the source names it, else the org of a primary role
    # (server/domain/users.py).
    primary_org_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("orgs.id", ondelete="SET NULL"), index=True
    )
    birth_date: Mapped[date | None]
    gender: Mapped[str | None] = mapped_column(String(40))
    ethnicity: Mapped[str | None] = mapped_column(String(40))
    demographic_flags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(12), default=RecordStatus.ACTIVE)
    deleted_at: Mapped[datetime | None]
    purge_after: Mapped[datetime | None] = mapped_column(index=True)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # What the last import wrote, with the version it left (server.domain.sync_hashes)
    content_hash: Mapped[str | None] = mapped_column(String(64))

    connection: Mapped[Connection] = relationship(lazy="joined")
    roles: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )
    grade_rows: Mapped[list[UserGrade]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="UserGrade.grade"
    )
    credential: Mapped[Credential | None] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin", uselist=False
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def active(self) -> bool:
        return self.status == RecordStatus.ACTIVE

    @property
    def grades(self) -> list[str]:
        return [row.grade for row in self.grade_rows]

    @property
    def school_ids(self) -> list[str]:
        return sorted({role.org_id for role in self.roles})

    @property
    def display_name(self) -> str:
        given = self.preferred_given_name or self.given_name
        return f"{given} {self.family_name}".strip() or self.username


class UserRole(Base):
    """A role of a user at an org (OneRoster 1.2 ``roles[]``: roleType, role, org)."""

    __tablename__ = "user_roles"
    __table_args__ = (
        UniqueConstraint("user_id", "org_id", "role", name="uq_user_roles"),
        Index("ix_user_roles_org_user", "org_id", "user_id"),
        Index("ix_user_roles_role_user", "role", "user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # no index of its own: uq_user_roles (user_id, org_id, role) leads with it (issue 15)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(40))
    role_type: Mapped[str] = mapped_column(String(12), default="primary")
    begin_date: Mapped[date | None]
    end_date: Mapped[date | None]
    # OneRoster 1.2 roles.csv keys, kept so an export carries the identifiers it was given
    sourced_id: Mapped[str | None]
    user_profile_sourced_id: Mapped[str | None]

    user: Mapped[User] = relationship(back_populates="roles")


class UserGrade(Base):
    """A grade (CEDS code: PK, KG, 01…13) of a user; a row each so grade searches use an index."""

    __tablename__ = "user_grades"
    __table_args__ = (Index("ix_user_grades_grade", "grade", "user_id"),)

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    grade: Mapped[str] = mapped_column(String(8), primary_key=True)


class CredentialState(StrEnum):
    PENDING = "pending"
    ISSUED = "issued"
    ACTIVE = "active"
    SSO = "sso"


class Credential(Base):
    """How a user signs in locally. Kept apart from ``users`` so no rendering of a user can leak it.

    ``temporary_secret`` holds the AES-GCM encrypted temporary password only while the state is
    ``issued``; it is erased at activation.
    """

    __tablename__ = "credentials"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(12), default=CredentialState.PENDING)
    password_hash: Mapped[str | None] = mapped_column(String(500))
    must_change: Mapped[bool] = mapped_column(Boolean, default=False)
    temporary_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    issued_at: Mapped[datetime | None]
    activated_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="credential")
