"""The audit log is append-only in the database itself (SECURITY.md, Audit; SPEC §8): any
UPDATE, DELETE or TRUNCATE of ``audit_events`` is refused, on SQLite and on PostgreSQL,
unless it runs inside ``audit.amending`` — which only purge, retention and tenant deletion
use. These tests play a buggy or hostile code path holding a database connection."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import AuditAmendment, AuditEvent, Tenant, User, utcnow
from server.districts import school, student
from server.domain import audit, erasure, retention, users
from server.domain.actors import system_actor
from server.domain.tenants import create_tenant
from tests.conftest import TEST_SECRET

REFUSED = "append-only"


@pytest.fixture
def logged(database):
    """A district whose audit log holds the events of creating a school and a student."""
    with database.session() as session:
        tenant = create_tenant(session, "Springfield District")
        actor = system_actor(tenant.id, "test")
        pupil = student(session, actor, school(session, actor), "Ola", "Brandt")
        ids = session.scalars(select(AuditEvent.id).where(AuditEvent.tenant_id == tenant.id)).all()
        assert ids
        return tenant.id, pupil.id, list(ids)


def _events(database, tenant_id):
    with database.engine.connect() as connection:
        return connection.execute(
            select(AuditEvent.id, AuditEvent.actor_name, AuditEvent.action)
            .where(AuditEvent.tenant_id == tenant_id)
            .order_by(AuditEvent.id)
        ).all()


def test_editing_or_deleting_an_event_in_sql_is_refused(database, logged):
    tenant_id, _, _ = logged
    before = _events(database, tenant_id)
    statements = [
        update(AuditEvent).values(actor_name="nobody"),
        update(AuditEvent).where(AuditEvent.id == before[0].id).values(action="user.read"),
        delete(AuditEvent).where(AuditEvent.id == before[-1].id),
        delete(AuditEvent),
    ]
    for statement in statements:
        with pytest.raises(IntegrityError, match=REFUSED), database.engine.begin() as connection:
            connection.execute(statement)
    assert _events(database, tenant_id) == before


def test_editing_or_deleting_an_event_through_the_orm_is_refused(database, logged):
    tenant_id, _, ids = logged
    before = _events(database, tenant_id)
    with pytest.raises(IntegrityError, match=REFUSED), database.session() as session:
        session.get(AuditEvent, ids[0]).detail = "rewritten"
    with pytest.raises(IntegrityError, match=REFUSED), database.session() as session:
        session.delete(session.get(AuditEvent, ids[0]))
    assert _events(database, tenant_id) == before


def test_deleting_the_district_row_cannot_take_its_audit_log_with_it(database, logged):
    """The foreign key cascades from ``tenants``: only ``erase_tenant`` may use it."""
    tenant_id, _, _ = logged
    before = _events(database, tenant_id)
    with pytest.raises(IntegrityError, match=REFUSED), database.engine.begin() as connection:
        connection.execute(delete(Tenant).where(Tenant.id == tenant_id))
    assert _events(database, tenant_id) == before


@pytest.mark.postgres_only  # SQLite has no TRUNCATE: DELETE without WHERE is refused above
def test_truncating_the_audit_log_is_refused_on_postgresql(database, logged):
    tenant_id, _, _ = logged
    before = _events(database, tenant_id)
    with pytest.raises(IntegrityError, match=REFUSED), database.engine.begin() as connection:
        connection.execute(text("TRUNCATE audit_events"))
    assert _events(database, tenant_id) == before


def test_the_permission_ends_with_the_amending_block(database, logged):
    _, _, ids = logged
    with Session(database.engine) as session:
        with audit.amending(session, "test"):
            session.get(AuditEvent, ids[0]).detail = "inside"
        with pytest.raises(IntegrityError, match=REFUSED):
            session.execute(update(AuditEvent).values(detail="after"))
        session.rollback()
    with database.session() as session:
        with pytest.raises(RuntimeError), audit.amending(session, "test"):
            raise RuntimeError("a failed purge that the caller catches and carries on")
        assert session.scalar(select(func.count()).select_from(AuditAmendment)) == 0
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditAmendment)) == 0
        assert session.get(AuditEvent, ids[0]).detail is None  # the first block rolled back


def test_purge_and_retention_still_change_the_log_and_leave_no_marker(database, logged):
    tenant_id, pupil_id, ids = logged
    with database.session() as session:
        actor = system_actor(tenant_id, "test")
        users.delete_user(session, actor, session.get(User, pupil_id))
    later = utcnow() + timedelta(days=4000)  # past retention_days and audit_retention_days
    with database.session() as session:
        counts = retention.enforce(session, actor, secret_key=TEST_SECRET, now=later)
    assert counts["users_purged"] == 1 and counts["audit_events"] >= len(ids)
    with database.session() as session:
        assert not set(ids) & set(session.scalars(select(AuditEvent.id)))
        assert session.scalar(select(func.count()).select_from(AuditAmendment)) == 0
        erasure.erase_tenant(session, tenant_id)
    with database.session() as session:
        assert session.get(Tenant, tenant_id) is None
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0
        assert session.scalar(select(func.count()).select_from(AuditAmendment)) == 0
