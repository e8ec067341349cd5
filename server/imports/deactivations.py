"""What a full import deactivates (SPEC §5, W201) and the shrink guard that stops it.

After its rows, a full import deactivates the connection's records in scope that the file
does not list (those whose keys the run did not claim); the shrink guard stops it when that
would deactivate more than a threshold (tenant setting ``shrink_threshold``, default 20%) of
the connection's active users in scope, unless ``allow_shrink``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from server.domain.import_records import Outcome, RowResult
from server.domain.tenants import tenant_setting
from server.errors import DomainError
from server.imports.batches import BATCH_SIZE, empty_session
from server.imports.contract import Deactivation, ImportContext


def deactivate_missing(ctx: ImportContext, source: Any) -> None:
    plans = list(source.deactivations(ctx))
    for plan in plans:
        if not plan.counts_for_shrink or plan.count_active is None:
            continue
        missing = ctx.session.scalar(
            select(func.count()).select_from(plan.select_missing(ctx).subquery())
        )
        shrink(ctx, missing or 0, plan.count_active(ctx))
        empty_session(ctx)
    for plan in plans:
        query = plan.select_missing(ctx)
        model = query.column_descriptions[0]["entity"]
        ids = list(ctx.session.scalars(query.with_only_columns(model.id)))
        for start in range(0, len(ids), BATCH_SIZE):
            chunk = ids[start : start + BATCH_SIZE]
            records = list(ctx.session.scalars(select(model).where(model.id.in_(chunk))))
            if not _deactivate_all(ctx, plan, records):
                for record in records:
                    _deactivate_one(ctx, plan, record)
            ctx.session.flush()
            empty_session(ctx)


def shrink(ctx: ImportContext, missing: int, active: int) -> bool:
    """Report what the shrink guard found; whether it trips."""
    threshold = ctx.options.shrink_threshold
    if threshold is None:
        threshold = float(tenant_setting(ctx.session, ctx.tenant_id, "shrink_threshold"))
    tripped = active > 0 and missing > threshold * active
    ctx.report.shrink = {
        "would_deactivate": missing,
        "active_in_scope": active,
        "threshold": threshold,
        "tripped": tripped,
        "allowed": ctx.options.allow_shrink,
    }
    return tripped


def _deactivate_all(ctx: ImportContext, plan: Deactivation, records: list[Any]) -> bool:
    """Deactivate a chunk in one savepoint (``plan.deactivate_many``); False when the plan
    has no such operation or a record failed (rolled back: the caller goes one by one)."""
    if plan.deactivate_many is None or len(records) < 2:
        return False
    try:
        with ctx.session.begin_nested():
            changed = plan.deactivate_many(ctx, records)
    except DomainError:
        return False
    for record, done in zip(records, changed, strict=True):
        if done:
            _report_deactivated(ctx, plan, record)
    return True


def _deactivate_one(ctx: ImportContext, plan: Deactivation, record: Any) -> None:
    key = plan.key(record)
    try:
        with ctx.session.begin_nested():
            changed = plan.deactivate(ctx, record)
    except DomainError as error:
        ctx.report.add(RowResult(plan.file, None, key, Outcome.ERROR, error.code, error.message))
        return
    if changed:
        _report_deactivated(ctx, plan, record)


def _report_deactivated(ctx: ImportContext, plan: Deactivation, record: Any) -> None:
    ctx.report.add(
        RowResult(
            plan.file,
            None,
            plan.key(record),
            Outcome.DEACTIVATED,
            "W201",
            f"Not in this full import: the {plan.kind} is deactivated.",
            {"status": ["active", "inactive"]},
        )
    )
