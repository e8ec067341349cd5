"""Rows of orgs.csv, academicSessions.csv, courses.csv, classes.csv and enrollments.csv: created
or updated through the domain (``server.domain.roster``, ``server.domain.enrollments``)."""

from __future__ import annotations

from typing import Any

from server.db import (
    AcademicSession,
    Connection,
    Course,
    Enrollment,
    Org,
    RecordStatus,
    SchoolClass,
    new_id,
)
from server.db.roster import SyncedRecord
from server.domain import bulk_roster, guard, roster, roster_status
from server.domain.enrollments import Enrolled, NewEnrollment, enroll_many
from server.domain.import_records import (
    ImportRecord,
    Outcome,
    RowResult,
)
from server.domain.record_refs import ClassRef
from server.errors import NotFound
from server.imports.contract import ImportContext
from server.imports.oneroster_csv.lookups import _batch_user, _resolve, _result, none_stored


def _upsert(
    ctx: ImportContext, record: ImportRecord, model: Any, fields: dict[str, Any], create: Any
) -> RowResult:
    if ctx.unchanged(record):
        return _result(record, Outcome.UNCHANGED)
    existing: SyncedRecord | None = ctx.batch.get("own", {}).get(record.key)
    if existing is None:
        if record.status == "tobedeleted":
            return _result(record, Outcome.UNCHANGED, message="Not present: nothing to deactivate.")
        created = create(ctx.session, ctx.actor, {**fields, "sourced_id": record.key})
        cache = ctx.cache.get(model.__tablename__)
        if cache is not None:
            cache[record.key] = created.id
        ctx.synced(record, model, created)
        return _result(record, Outcome.CREATED)
    owner = ctx.session.get(Connection, existing.connection_id)
    assert owner is not None
    guard.check_change(ctx.actor, owner, ["sourced_id"])
    if record.status == "tobedeleted":
        changed = roster_status.set_status(ctx.session, ctx.actor, existing, RecordStatus.INACTIVE)
        outcome = Outcome.DEACTIVATED if changed else Outcome.UNCHANGED
        return _result(
            record, outcome, {"status": [RecordStatus.ACTIVE, "inactive"]} if changed else {}
        )
    changes = roster.update_record(ctx.session, ctx.actor, existing, fields)
    if existing.status != RecordStatus.ACTIVE:
        before = existing.status
        roster_status.set_status(ctx.session, ctx.actor, existing, RecordStatus.ACTIVE)
        return _result(
            record,
            Outcome.REACTIVATED,
            {**changes, "status": [before, RecordStatus.ACTIVE]},
            code="W202",
            message="Matches an inactive record, which is reactivated.",
        )
    ctx.synced(record, model, existing)
    return _result(record, Outcome.UPDATED if changes else Outcome.UNCHANGED, changes)


def _updatable(ctx: ImportContext, record: ImportRecord) -> SyncedRecord | None:
    """The stored active record a row may change together with its batch, or None (a row
    that creates, reactivates, deactivates or is unchanged goes through :func:`_upsert`)."""
    if ctx.unchanged(record) or record.status == "tobedeleted":
        return None
    existing: SyncedRecord | None = ctx.batch.get("own", {}).get(record.key)
    if existing is None or existing.status != RecordStatus.ACTIVE:
        return None
    return existing


def _update_all(
    ctx: ImportContext, model: Any, updates: list[tuple[ImportRecord, SyncedRecord, dict[str, Any]]]
) -> dict[int, list[RowResult]]:
    """Rows changing stored active records: together (``roster.update_records``)."""
    for _, existing, _ in updates:
        owner = ctx.session.get(Connection, existing.connection_id)
        assert owner is not None
        guard.check_change(ctx.actor, owner, ["sourced_id"])
    changed = roster.update_records(
        ctx.session, ctx.actor, [(existing, fields) for _, existing, fields in updates]
    )
    outcomes: dict[int, list[RowResult]] = {}
    for (record, existing, _), changes in zip(updates, changed, strict=True):
        ctx.synced(record, model, existing)
        outcome = Outcome.UPDATED if changes else Outcome.UNCHANGED
        outcomes[record.number] = [_result(record, outcome, changes)]
    return outcomes


def _batch_handler(model: Any, fields_of: Any, create: Any) -> Any:
    """The batch handler of a file of ``model`` (orgs, academic sessions, courses): new
    records created together (:func:`server.domain.bulk_roster.create_records`), changes of
    stored records together, every other row one by one through :func:`_upsert`."""

    def handle_batch(ctx: ImportContext, records: list[ImportRecord]) -> dict[int, list[RowResult]]:
        outcomes: dict[int, list[RowResult]] = {}
        updates: list[tuple[ImportRecord, SyncedRecord, dict[str, Any]]] = []
        new: list[tuple[ImportRecord, dict[str, Any]]] = []
        for record in records:
            existing = _updatable(ctx, record)
            if existing is not None:
                updates.append((record, existing, fields_of(ctx, record)))
            elif _creatable(ctx, record):
                new.append((record, _new_fields(ctx, model, record, fields_of(ctx, record))))
            else:
                outcomes |= _create_all(ctx, model, new)  # a row may name the new ones
                new = []
                outcomes[record.number] = [
                    _upsert(ctx, record, model, fields_of(ctx, record), create)
                ]
        return outcomes | _create_all(ctx, model, new) | _update_all(ctx, model, updates)

    return handle_batch


def _creatable(ctx: ImportContext, record: ImportRecord) -> bool:
    """A row that creates its record (the others change, keep or deactivate one)."""
    return not (
        ctx.unchanged(record) or record.status == "tobedeleted" or record.key in ctx.batch["own"]
    )


def _new_fields(
    ctx: ImportContext, model: Any, record: ImportRecord, fields: dict[str, Any]
) -> dict[str, Any]:
    """A new record's fields with the id it will have: a later row of the batch may name it
    (a school's parent district), so its id is known before the batch is written."""
    made = new_id()
    cache = ctx.cache.get(model.__tablename__)
    if cache is not None:
        cache[record.key] = made
    return {**fields, "id": made, "sourced_id": record.key}


def _create_all(
    ctx: ImportContext, model: Any, new: list[tuple[ImportRecord, dict[str, Any]]]
) -> dict[int, list[RowResult]]:
    """Rows creating records: together (``bulk_roster.create_records``)."""
    made = bulk_roster.create_records(
        ctx.session, ctx.actor, model, [f for _, f in new], [_digest(ctx, r) for r, _ in new]
    )
    outcomes: dict[int, list[RowResult]] = {}
    _report_created(ctx, model, [record for record, _ in new], made, outcomes)
    return outcomes


def _digest(ctx: ImportContext, record: ImportRecord) -> str | None:
    """The row digest a new record is inserted with (what :meth:`ImportContext.synced` would
    store after it): the prefetch's, or for a row naming a record of its own batch (a school,
    its new district listed first) its digest now that the record named has its id."""
    found: str | None = ctx.batch.get("digests", {}).get(record.number)
    later = ctx.batch.get("digest_later")
    if found is None and later is not None:
        found = later(record)
    return found


def _report_created(
    ctx: ImportContext,
    model: Any,
    records: list[ImportRecord],
    made: list[Any],
    outcomes: dict[int, list[RowResult]],
) -> None:
    """Remember the records a batch created (the kind's cache, their row hashes) and report
    their rows ``created``."""
    cache = ctx.cache.get(model.__tablename__)
    for record, created in zip(records, made, strict=True):
        if cache is not None:
            cache[record.key] = created.id
        if not getattr(created, "sealed", False):  # a sealed one was inserted with its hash
            ctx.synced(record, model, created)
        outcomes[record.number] = [_result(record, Outcome.CREATED)]


def _org_fields(ctx: ImportContext, record: ImportRecord) -> dict[str, Any]:
    fields = dict(record.fields)
    parent = record.refs.get("parent_key")
    fields["parent_id"] = _resolve(ctx, Org, parent, "org", "parentSourcedId") if parent else None
    return fields


def _session_fields(ctx: ImportContext, record: ImportRecord) -> dict[str, Any]:
    fields = dict(record.fields)
    parent = record.refs.get("parent_key")
    fields["parent_id"] = (
        _resolve(ctx, AcademicSession, parent, "academic session", "parentSourcedId")
        if parent
        else None
    )
    return fields


def _course_fields(ctx: ImportContext, record: ImportRecord) -> dict[str, Any]:
    fields = dict(record.fields)
    org, year = record.refs.get("org_key"), record.refs.get("school_year_key")
    fields["org_id"] = _resolve(ctx, Org, org, "org", "orgSourcedId") if org else None
    fields["school_year_id"] = (
        _resolve(ctx, AcademicSession, year, "academic session", "schoolYearSourcedId")
        if year
        else None
    )
    return fields


def handle_org(ctx: ImportContext, record: ImportRecord) -> RowResult:
    return _upsert(ctx, record, Org, _org_fields(ctx, record), roster.create_org)


def handle_session(ctx: ImportContext, record: ImportRecord) -> RowResult:
    fields = _session_fields(ctx, record)
    return _upsert(ctx, record, AcademicSession, fields, roster.create_academic_session)


def handle_course(ctx: ImportContext, record: ImportRecord) -> RowResult:
    return _upsert(ctx, record, Course, _course_fields(ctx, record), roster.create_course)


handle_orgs = _batch_handler(Org, _org_fields, roster.create_org)
handle_sessions = _batch_handler(AcademicSession, _session_fields, roster.create_academic_session)
handle_courses = _batch_handler(Course, _course_fields, roster.create_course)


def handle_classes(ctx: ImportContext, records: list[ImportRecord]) -> dict[int, list[RowResult]]:
    """A batch of classes.csv rows: new classes created together
    (:func:`server.domain.bulk_roster.create_classes`), every other row one by one."""
    outcomes: dict[int, list[RowResult]] = {}
    new: list[tuple[ImportRecord, dict[str, Any]]] = []
    for record in records:
        known = record.key in ctx.batch["own"]
        if ctx.unchanged(record) or record.status == "tobedeleted" or known:
            outcomes[record.number] = [handle_class(ctx, record)]
        else:
            new.append((record, {**_class_fields(ctx, record), "sourced_id": record.key}))
    made = bulk_roster.create_classes(
        ctx.session, ctx.actor, [f for _, f in new], [_digest(ctx, r) for r, _ in new]
    )
    _report_created(ctx, SchoolClass, [record for record, _ in new], made, outcomes)
    return outcomes


def handle_class(ctx: ImportContext, record: ImportRecord) -> RowResult:
    return _upsert(ctx, record, SchoolClass, _class_fields(ctx, record), roster.create_class)


def _class_fields(ctx: ImportContext, record: ImportRecord) -> dict[str, Any]:
    """A classes.csv row's fields with its references resolved (R108)."""
    fields = dict(record.fields)
    fields["school_id"] = _resolve(ctx, Org, record.refs["school_key"], "school", "schoolSourcedId")
    course = record.refs.get("course_key")
    fields["course_id"] = (
        _resolve(ctx, Course, course, "course", "courseSourcedId") if course else None
    )
    fields["term_ids"] = [
        _resolve(ctx, AcademicSession, key, "term", "termSourcedIds")
        for key in record.refs.get("term_keys", [])
    ]
    return fields


def handle_enrollment(ctx: ImportContext, record: ImportRecord) -> RowResult:
    if ctx.unchanged(record):
        return _result(record, Outcome.UNCHANGED)
    result = _apply_enrollment(ctx, record)
    existing = ctx.batch["own"].get(record.key)
    if existing is not None and result.outcome in (Outcome.UPDATED, Outcome.UNCHANGED):
        ctx.synced(record, Enrollment, existing)
    return result


def _apply_enrollment(ctx: ImportContext, record: ImportRecord) -> RowResult:
    fields = record.fields
    existing: Enrollment | None = ctx.batch["own"].get(record.key)
    if existing is not None and record.status == "tobedeleted":
        return _upsert(ctx, record, Enrollment, dict(fields), None)
    if existing is not None:
        return _upsert(ctx, record, Enrollment, _enrollment_fields(ctx, record), None)
    if record.status == "tobedeleted":
        return _result(record, Outcome.UNCHANGED, message="Not present: nothing to deactivate.")
    user = _batch_user(ctx, record.refs["user_key"], "userSourcedId")
    enrollment = roster.enroll(
        ctx.session,
        ctx.actor,
        user,
        _class_for(ctx, record),
        role=fields["role"],
        primary=fields["primary"],
        sourced_id=record.key,
        begin_date=fields["begin_date"],
        end_date=fields["end_date"],
        school_id=_school_for(ctx, record),
    )
    return _enrolled(record, enrollment)


def _enrollment_fields(ctx: ImportContext, record: ImportRecord) -> dict[str, Any]:
    """A stored enrollment's fields: the same sourcedId may name another user, class or
    school (re-pointed)."""
    refs = {
        "user_id": _batch_user(ctx, record.refs["user_key"], "userSourcedId").id,
        "class_id": _class_for(ctx, record).id,
        "school_id": _school_for(ctx, record),
    }
    return {**record.fields, **refs}


def handle_enrollments(
    ctx: ImportContext, records: list[ImportRecord]
) -> dict[int, list[RowResult]]:
    """A batch of enrollments: new ones through ``enroll_many``, changes of stored active
    ones together (a re-pointed enrollment), the others one by one."""
    outcomes: dict[int, list[RowResult]] = {}
    new: list[tuple[ImportRecord, NewEnrollment]] = []
    updates: list[tuple[ImportRecord, SyncedRecord, dict[str, Any]]] = []
    digests = ctx.batch.get("digests", {})
    for record in records:
        existing = _updatable(ctx, record)
        if existing is not None:
            updates.append((record, existing, _enrollment_fields(ctx, record)))
            continue
        if (
            ctx.unchanged(record)
            or record.key in ctx.batch["own"]
            or record.status == "tobedeleted"
        ):
            outcomes[record.number] = [handle_enrollment(ctx, record)]
            continue
        fields = record.fields
        user = _batch_user(ctx, record.refs["user_key"], "userSourcedId")
        new.append(
            (
                record,
                NewEnrollment(
                    user=user,
                    klass=_class_for(ctx, record),
                    role=fields["role"],
                    primary=fields["primary"],
                    sourced_id=record.key,
                    begin_date=fields["begin_date"],
                    end_date=fields["end_date"],
                    school_id=_school_for(ctx, record),
                    digest=digests.get(record.number),
                ),
            )
        )
    items = [item for _, item in new]
    made = enroll_many(ctx.session, ctx.actor, items, keys_free=none_stored(ctx, Enrollment))
    for (record, _), enrollment in zip(new, made, strict=True):
        outcomes[record.number] = [_enrolled(record, enrollment)]
        # a new enrollment (Enrolled) went in with its row hash
        if enrollment.sourced_id == record.key and not isinstance(enrollment, Enrolled):
            ctx.synced(record, Enrollment, enrollment)
    return outcomes | _update_all(ctx, Enrollment, updates)


def _class_for(ctx: ImportContext, record: ImportRecord) -> ClassRef:
    klass: ClassRef | None = ctx.batch["classes"].get(record.refs["class_key"])
    if klass is None or klass.status == RecordStatus.DELETED:
        raise NotFound(
            f"No class with sourcedId {record.refs['class_key']!r}.", field="classSourcedId"
        )
    return klass


def _school_for(ctx: ImportContext, record: ImportRecord) -> str | None:
    """The enrollment's ``schoolSourcedId`` resolved (R108), or None to use the class's."""
    key = record.refs.get("school_key")
    return _resolve(ctx, Org, key, "school", "schoolSourcedId") if key else None


def _enrolled(record: ImportRecord, enrollment: Enrollment | Enrolled) -> RowResult:
    if enrollment.sourced_id != record.key:
        return _result(
            record,
            Outcome.UNCHANGED,
            message=f"Same user, class and role as enrollment {enrollment.sourced_id!r}.",
        )
    return _result(record, Outcome.CREATED)
