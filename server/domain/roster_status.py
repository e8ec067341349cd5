"""Status changes of orgs, sessions, courses, classes and enrollments: activate, deactivate,
delete (one record or a batch), and purging deleted ones after the retention period.

The same rules as every roster write (:mod:`server.domain.roster`): a manual change to a
connection's record needs an override, each change is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import Connection, Enrollment, RecordStatus, SchoolClass, utcnow
from server.db.roster import SyncedRecord
from server.domain import audit, guard
from server.domain.actors import Actor
from server.domain.bulk_updates import write_changes
from server.domain.record_fields import kind_of, label
from server.domain.tenants import tenant_setting
from server.errors import NotFound


def set_status(
    session: Session, actor: Actor, record: SyncedRecord, status: str, *, override: bool = False
) -> bool:
    """Activate, deactivate (``inactive``, OneRoster ``tobedeleted``) or delete a record.

    :raises NotFound: the record is another tenant's.
    """
    change = _status_change(session, actor, record, status, override)
    if change is None:
        return False
    session.flush()
    kind = kind_of(type(record))
    audit.record(session, actor, f"{kind}.status", **_status_event(record, change, status))
    return True


def set_statuses(
    session: Session, actor: Actor, records: Sequence[SyncedRecord], status: str
) -> list[bool]:
    """:func:`set_status` for records of one kind at once (what a full import deactivates):
    the same checks and changes, one flush, the audit events in one ``executemany`` (issue
    15). Returns, per record, whether it changed.

    :raises: the first error :func:`set_status` raises for a record (the caller rolls back).
    """
    with session.no_autoflush:  # written below with one UPDATE, not one per record
        changes = [_status_change(session, actor, record, status, False) for record in records]
    changed = [record for record, change in zip(records, changes, strict=True) if change]
    write_changes(session, changed, ("status", "updated_at"))  # what _status_change sets
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for record, change in zip(records, changes, strict=True):
        if change is not None:
            event = _status_event(record, change, status)
            by_kind.setdefault(kind_of(type(record)), []).append(event)
    for kind, events in by_kind.items():
        audit.record_many(session, actor, f"{kind}.status", events)
    return [change is not None for change in changes]


def _status_change(
    session: Session, actor: Actor, record: SyncedRecord, status: str, override: bool
) -> tuple[str, bool] | None:
    """Check and set a record's status (not flushed); returns (status before, overridden),
    or None when it already has ``status``. :raises NotFound:"""
    if record.tenant_id != actor.tenant_id:
        raise NotFound("No such record.")
    if record.status == status:
        return None
    owner = session.get(Connection, record.connection_id)
    assert owner is not None
    overridden = guard.check_change(actor, owner, ["status"], override=override)
    before, record.status = record.status, status
    record.updated_at = utcnow()
    return before, overridden


def _status_event(record: SyncedRecord, change: tuple[str, bool], status: str) -> dict[str, Any]:
    before, overridden = change
    return {
        "target_kind": kind_of(type(record)),
        "target_id": record.id,
        "target_label": label(record),
        "changes": {"status": [before, status]},
        "override": overridden,
    }


def purge_deleted_records(session: Session, actor: Actor, *, now: datetime | None = None) -> int:
    """Remove enrollments and classes deleted longer ago than the tenant's retention period."""
    days = int(tenant_setting(session, actor.tenant_id, "retention_days"))
    cutoff = (now or utcnow()) - timedelta(days=days)
    purged = 0
    purgeable: tuple[type[SyncedRecord], ...] = (Enrollment, SchoolClass)
    for model in purgeable:
        due = session.scalars(
            select(model).where(
                model.tenant_id == actor.tenant_id,
                model.status == RecordStatus.DELETED,
                model.updated_at <= cutoff,
            )
        ).all()
        for record in due:
            kind = kind_of(model)
            audit.record(session, actor, f"{kind}.purge", target_kind=kind, target_id=record.id)
            session.delete(record)
        purged += len(due)
    session.flush()
    return purged
