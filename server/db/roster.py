"""Orgs, academic sessions, courses, classes, enrollments and plain groups (OneRoster rostering)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from server.db.base import Base, new_id, new_record_id, utcnow
from server.db.people import RecordStatus


class SyncedRecord:
    """Columns every synced roster record has: tenant, owner, sourcedId, status, version."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_record_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id"), index=True)
    sourced_id: Mapped[str]
    status: Mapped[str] = mapped_column(String(12), default=RecordStatus.ACTIVE)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # What the last import wrote, with the version it left (server.domain.sync_hashes)
    content_hash: Mapped[str | None] = mapped_column(String(64))

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.version}

    @property
    def active(self) -> bool:
        return self.status == RecordStatus.ACTIVE


class Org(SyncedRecord, Base):
    """The district and its schools (OneRoster ``orgs``)."""

    __tablename__ = "orgs"
    __table_args__ = (UniqueConstraint("tenant_id", "sourced_id", name="uq_orgs_tenant_sourced"),)

    name: Mapped[str]
    type: Mapped[str] = mapped_column(String(20), default="school")
    identifier: Mapped[str | None]
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("orgs.id", ondelete="SET NULL"))


class AcademicSession(SyncedRecord, Base):
    """A school year, semester, term or grading period."""

    __tablename__ = "academic_sessions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "sourced_id", name="uq_academic_sessions_tenant_sourced"),
    )

    title: Mapped[str]
    type: Mapped[str] = mapped_column(String(20), default="term")
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]
    school_year: Mapped[str | None] = mapped_column(String(8))
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("academic_sessions.id", ondelete="SET NULL")
    )
    org_id: Mapped[str | None] = mapped_column(ForeignKey("orgs.id", ondelete="SET NULL"))


class Course(SyncedRecord, Base):
    __tablename__ = "courses"
    __table_args__ = (
        UniqueConstraint("tenant_id", "sourced_id", name="uq_courses_tenant_sourced"),
    )

    title: Mapped[str]
    course_code: Mapped[str | None]
    org_id: Mapped[str | None] = mapped_column(ForeignKey("orgs.id", ondelete="SET NULL"))
    school_year_id: Mapped[str | None] = mapped_column(
        ForeignKey("academic_sessions.id", ondelete="SET NULL")
    )
    grades: Mapped[list[str]] = mapped_column(default=list)
    subjects: Mapped[list[str]] = mapped_column(default=list)


class_terms = Table(
    "class_terms",
    Base.metadata,
    Column("class_id", ForeignKey("classes.id", ondelete="CASCADE"), primary_key=True),
    Column("session_id", ForeignKey("academic_sessions.id", ondelete="CASCADE"), primary_key=True),
)


class SchoolClass(SyncedRecord, Base):
    """A class (section) at a school: OneRoster ``classes``, or a SCIM group marked as one."""

    __tablename__ = "classes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "sourced_id", name="uq_classes_tenant_sourced"),
        Index("ix_classes_connection_external_id", "connection_id", "external_id_folded"),
        Index(
            "ix_classes_tenant_connection_external_id",
            "tenant_id",
            "connection_id",
            "external_id_folded",
        ),
        Index("ix_classes_tenant_school", "tenant_id", "school_id"),
    )

    # no index of its own: ix_classes_connection_external_id leads with it (issue 15)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id"))
    title: Mapped[str]
    title_folded: Mapped[str] = mapped_column(default="")
    class_code: Mapped[str | None]
    class_type: Mapped[str] = mapped_column(String(20), default="scheduled")
    location: Mapped[str | None]
    external_id: Mapped[str | None]
    external_id_folded: Mapped[str | None]
    school_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"))
    course_id: Mapped[str | None] = mapped_column(ForeignKey("courses.id", ondelete="SET NULL"))
    grades: Mapped[list[str]] = mapped_column(default=list)
    subjects: Mapped[list[str]] = mapped_column(default=list)
    periods: Mapped[list[str]] = mapped_column(default=list)

    terms: Mapped[list[AcademicSession]] = relationship(secondary=class_terms, lazy="selectin")


class Enrollment(SyncedRecord, Base):
    """A user in a class with a role (student, teacher, aide…)."""

    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "sourced_id", name="uq_enrollments_tenant_sourced"),
        Index("ix_enrollments_class_user", "class_id", "user_id"),
        Index("ix_enrollments_user", "user_id"),
        Index("ix_enrollments_school_user", "school_id", "user_id"),
    )

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    class_id: Mapped[str] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"))
    school_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"))
    role: Mapped[str] = mapped_column(String(40), default="student")
    primary: Mapped[bool] = mapped_column(Boolean, default=False)
    begin_date: Mapped[date | None]
    end_date: Mapped[date | None]


class Group(Base):
    """A SCIM group that is not a class: staff groups, clubs."""

    __tablename__ = "groups"
    __table_args__ = (
        Index("ix_groups_connection_external_id", "connection_id", "external_id_folded"),
        Index(
            "ix_groups_tenant_connection_external_id",
            "tenant_id",
            "connection_id",
            "external_id_folded",
        ),
        Index("ix_groups_tenant_name", "tenant_id", "display_name_folded"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # no index of its own: ix_groups_connection_external_id leads with it (issue 15)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id"))
    display_name: Mapped[str]
    display_name_folded: Mapped[str]
    external_id: Mapped[str | None]
    external_id_folded: Mapped[str | None]
    status: Mapped[str] = mapped_column(String(12), default=RecordStatus.ACTIVE)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class RosterVersion(Base):
    """How often a tenant's roster changed (issue 15): bumped by database triggers (migration
    ``0014_roster_versions``) on every write to the tables a OneRoster read counts, so a kept
    page total is checked against it instead of recounted. ``epoch`` is drawn when the row is
    made: a row deleted and made again (a wiped database) never repeats an earlier state."""

    __tablename__ = "roster_versions"

    tenant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    epoch: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class RosterChange(Base):
    """PostgreSQL only: one row per roster-writing statement and tenant, inserted (never
    updated) so concurrent writers take no common lock; folded into ``roster_versions`` now and
    then. SQLite (one writer at a time) bumps ``roster_versions`` directly."""

    __tablename__ = "roster_changes"
    __table_args__ = (Index("ix_roster_changes_tenant", "tenant_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    tenant_id: Mapped[str] = mapped_column(String(36))
