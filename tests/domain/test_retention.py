"""Retention (issue 12, points 1, 3, 4): leavers kept until the end of the school year plus a
grace period, deleted users erased after their retention period, and every window of
``docs/retention.md`` pruned by the daily job, with the clock set by the test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from server.db import (
    AccountRequest,
    AuditEvent,
    ImportRun,
    Job,
    LoginThrottle,
    PurgeRun,
    RecordStatus,
    User,
    utcnow,
)
from server.districts import school, student
from server.domain import jobs, retention, roster, users
from server.domain.actors import system_actor
from server.domain.tenants import create_tenant, update_settings
from server.errors import InvalidValue
from tests.conftest import TEST_SECRET

DEC_1 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def test_a_leaver_is_kept_until_the_end_of_the_school_year_plus_grace(session, tenant):
    keep = retention.leaver_keep_until(session, tenant.id, DEC_1)
    assert keep == datetime(2027, 8, 31, tzinfo=UTC)  # 31 July 2027, then 30 days
    on_the_day = retention.leaver_keep_until(session, tenant.id, datetime(2027, 7, 31, tzinfo=UTC))
    assert on_the_day == datetime(2027, 8, 31, tzinfo=UTC)


def test_the_school_year_end_and_grace_are_tenant_settings(session, tenant):
    update_settings(session, tenant, {"school_year_end": "06-30", "leaver_grace_days": 10})
    keep = retention.leaver_keep_until(session, tenant.id, DEC_1)
    assert keep == datetime(2027, 7, 11, tzinfo=UTC)
    with pytest.raises(InvalidValue, match="MM-DD"):
        update_settings(session, tenant, {"school_year_end": "02-30"})
    with pytest.raises(InvalidValue, match="whole number of days"):
        update_settings(session, tenant, {"audit_retention_days": "forever"})


def test_a_deactivated_student_is_deleted_after_keep_until_then_erased(session, system):
    pupil = student(session, system, school(session, system), "Ola", "Brandt")
    users.deactivate_user(session, system, pupil)
    keep = pupil.purge_after
    assert keep is not None and keep > utcnow() + timedelta(days=30)
    retention.enforce(session, system, secret_key=TEST_SECRET, now=keep - timedelta(hours=1))
    assert pupil.status == RecordStatus.INACTIVE
    counts = retention.enforce(session, system, secret_key=TEST_SECRET, now=keep)
    assert counts["students_deleted"] == 1 and pupil.status == RecordStatus.DELETED
    assert counts["users_purged"] == 0  # deleted now: erased after retention_days
    kept = retention.enforce(session, system, secret_key=TEST_SECRET, now=keep + timedelta(days=29))
    assert kept["users_purged"] == 0
    erased = retention.enforce(
        session, system, secret_key=TEST_SECRET, now=keep + timedelta(days=30)
    )
    assert erased["users_purged"] == 1
    assert session.get(User, pupil.id) is None


def test_reactivating_a_leaver_clears_the_keep_until_date(session, system):
    pupil = student(session, system, school(session, system), "Ola", "Brandt")
    users.deactivate_user(session, system, pupil)
    users.reactivate_user(session, system, pupil)
    assert pupil.purge_after is None
    retention.enforce(session, system, secret_key=TEST_SECRET, now=utcnow() + timedelta(days=800))
    assert pupil.status == RecordStatus.ACTIVE


def test_staff_leavers_are_not_deleted_by_the_student_rule(session, system):
    org = school(session, system)
    teacher = student(session, system, org, "Tom", "Teach", primary_role="teacher")
    users.deactivate_user(session, system, teacher)
    assert teacher.purge_after is None


def _aged(session, tenant_id, now, age_days):
    """One row of each kind, ``age_days`` old at ``now``."""
    at = now - timedelta(days=age_days)
    session.add(
        AuditEvent(tenant_id=tenant_id, at=at, actor_kind="system", actor_name="t", action="x.y")
    )
    for dry in (True, False):
        session.add(
            ImportRun(tenant_id=tenant_id, actor_name="t", format="csv", dry_run=dry, started_at=at)
        )
    session.add(
        Job(tenant_id=tenant_id, kind="email", status="done", created_at=at, finished_at=at)
    )
    session.add(LoginThrottle(key=f"address:{age_days}", failures=1, last_failure_at=at))
    session.flush()


def _count(session, model, tenant_id=None):
    query = select(func.count()).select_from(model)
    if tenant_id is not None:
        query = query.where(model.tenant_id == tenant_id)
    return session.scalar(query)


def test_each_window_removes_only_what_is_older_than_its_setting(session, tenant):
    system = system_actor(tenant.id, "retention")
    now = utcnow() + timedelta(days=2000)
    for age in (0, 2, 20, 60, 200, 1200):
        _aged(session, tenant.id, now, age)
    counts = retention.enforce(session, system, secret_key=TEST_SECRET, now=now)
    assert counts["trial_runs"] == 4  # older than 7 days
    assert counts["import_runs"] == 2  # older than 90 days
    assert counts["jobs"] == 3  # older than 30 days
    assert counts["login_throttles"] == 5  # older than a day
    audit_left = session.scalars(
        select(AuditEvent.action).where(AuditEvent.tenant_id == tenant.id, AuditEvent.at <= now)
    ).all()
    assert len(audit_left) == 5  # only the one older than 3 years went
    update_settings(session, tenant, {"audit_retention_days": 30})
    later = retention.enforce(session, system, secret_key=TEST_SECRET, now=now)
    assert later["audit_events"] == 2
    assert _count(session, PurgeRun, tenant.id) == 2


def test_decided_account_requests_go_after_their_window(session, system, tenant):
    from server.domain.staff import create_staff

    org = roster.create_org(session, system, {"name": "Lincoln", "sourced_id": "lincoln"})
    teacher = create_staff(session, system, "edna", "teacher", school_sourced_ids=["lincoln"]).staff
    now = utcnow()
    for status, decided in (
        ("approved", now - timedelta(days=200)),
        ("approved", now - timedelta(days=40)),  # approved ones are kept 180 days
        ("declined", now - timedelta(days=40)),  # declined ones only 30
        ("pending", None),
    ):
        session.add(
            AccountRequest(
                tenant_id=tenant.id,
                requested_by=teacher.id,
                requester_name="edna",
                school_id=org.id,
                given_name="Ralph",
                family_name="Wiggum",
                status=status,
                decided_at=decided,
                created_at=now - timedelta(days=300),
            )
        )
    session.flush()
    counts = retention.enforce(session, system, secret_key=TEST_SECRET, now=now)
    assert counts["account_requests"] == 1 and counts["declined_requests"] == 1
    left = session.scalars(select(AccountRequest.status).order_by(AccountRequest.status)).all()
    assert left == ["approved", "pending"]


def test_the_worker_queues_the_daily_job_once_per_tenant_and_runs_it(context):
    with context.database.session() as session:
        first = create_tenant(session, "North").id
        create_tenant(session, "South")
    with context.database.session() as session:
        assert retention.enqueue_due_purges(session) == 2
        assert retention.enqueue_due_purges(session) == 0  # already queued
    runners = {retention.PURGE_JOB: retention.purge_runner(TEST_SECRET)}
    assert jobs.run_due(context.database, runners) == 2
    with context.database.session() as session:
        assert _count(session, PurgeRun) == 2
        assert retention.last_run(session, first) is not None
        assert retention.enqueue_due_purges(session) == 0  # ran less than a day ago
        assert retention.enqueue_due_purges(session, now=utcnow() + timedelta(days=1)) == 2


def test_the_worker_knows_the_retention_job(context):
    from server.worker import runners

    assert retention.PURGE_JOB in runners(context)


def test_erasure_rewrites_only_events_that_quote_the_student_as_a_whole_word(session, system):
    from server.domain import audit
    from server.domain.erasure import pseudonym
    from server.domain.pseudonyms import tenant_key

    org = school(session, system)
    ann = student(session, system, org, "Ann", "Lee", username="ann")
    joanna = student(session, system, org, "Joanna", "Ray", username="joanna")
    audit.record(session, system, "note", detail="Swapped seats: ann and joanna.")
    audit.record(session, system, "note", detail="Called joanna's parents.")
    audit.record(session, system, "note", detail="Moved to the front: ann.")
    audit.record(session, system, "note", detail="Wrote to ann.lee@home.example")
    users.delete_user(session, system, ann)
    retention.enforce(session, system, secret_key=TEST_SECRET, now=utcnow() + timedelta(days=31))
    details = session.scalars(
        select(AuditEvent.detail).where(AuditEvent.action == "note").order_by(AuditEvent.id)
    ).all()
    alias = pseudonym(tenant_key(session, ann.tenant_id, TEST_SECRET), ann.id)
    assert details == [
        alias,
        "Called joanna's parents.",
        alias,
        "Wrote to ann.lee@home.example",  # another address, not the student's username
    ]
    assert session.get(User, joanna.id) is not None


def test_docs_retention_lists_every_window_and_its_default():
    from pathlib import Path

    from server.domain.tenants import RETENTION_DEFAULTS

    table = (Path(__file__).parents[2] / "docs" / "retention.md").read_text()
    for setting, default in RETENTION_DEFAULTS.items():
        assert f"`{setting}` (" in table, setting
        assert f"({default}" in table or f"(`{default}`" in table, (setting, default)
    assert "`retention_days` (30)" in table
