"""OneRoster CSV 1.1 / 1.2 packages through the import engine: one handler per file.

Files are handled in dependency order (orgs, academicSessions, courses, classes, roles, users,
demographics, enrollments, userProfiles). ``sourcedId`` is the stable key: a row updates the
tenant's record with that sourcedId, which must belong to the importing connection (R109), or
creates it. ``status=tobedeleted`` (delta) and ``enabledUser=false`` deactivate; a listed
inactive record is reactivated with its history (W202).

``roles.csv`` (1.2) rows are applied through their user: valid role rows produce no row of
their own, a role change shows in the user row's ``roles`` change. The role rows are gathered
before ``users.csv`` (one small tuple per role: the only part of a run that grows with the
file, with ``orgs.csv`` and ``academicSessions.csv``, read whole to put parents first). A bulk
``roles.csv`` lists all of a user's roles; a delta one changes those it lists (by role
sourcedId, else org and role), and users it names that ``users.csv`` does not list are updated
after ``users.csv``, reported on their first role row. ``userProfiles.csv`` is kept in the
user's ``extra`` (by profile sourcedId, without its password column).

Enrollments keep their sourcedId when a delta re-points them to another user, class or
school; every reference that names nothing is R108.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Text, cast, exists, func, select
from sqlalchemy.orm import lazyload

from oneroster.csv_files import Package, open_package
from oneroster.csv_records import translate
from server.db import (
    AcademicSession,
    Connection,
    Course,
    Enrollment,
    Org,
    RecordStatus,
    SchoolClass,
    User,
    UserRole,
)
from server.db.roster import SyncedRecord
from server.domain import bulk, credentials, guard, roster, sync_hashes, users
from server.domain.enrollments import NewEnrollment, enroll_many
from server.domain.import_limits import ImportLimits
from server.domain.import_records import (
    FileProblem,
    ImportRecord,
    Outcome,
    RowProblem,
    RowResult,
    empty_line,
)
from server.domain.users import RoleAssignment
from server.domain.vocabulary import check_choice, check_role, parse_date
from server.errors import NotFound
from server.imports.contract import Deactivation, ImportContext, ImportOptions, Progress, Step
from server.imports.read_ahead import Spool, replay

SEXES = ("male", "female", "unspecified", "other")
OTHER_FILES_EXTRA = ("demographics", "userProfiles")
ROLE_TYPES = ("primary", "secondary")
ORDER = (
    "orgs.csv",
    "academicSessions.csv",
    "courses.csv",
    "classes.csv",
    "roles.csv",
    "users.csv",
    "demographics.csv",
    "enrollments.csv",
    "userProfiles.csv",
)


def looks_like_zip(source: Any) -> bool:
    try:
        if hasattr(source, "seek"):
            position = source.tell()
            result = zipfile.is_zipfile(source)
            source.seek(position)
            return result
        return zipfile.is_zipfile(source)
    except OSError:
        return False


class OneRosterSource:
    """An opened OneRoster CSV package; a broken one reports F001-F003 when run."""

    def __init__(
        self,
        path: str | Path | IO[bytes],
        *,
        lenient: bool = True,
        limits: ImportLimits | None = None,
    ) -> None:
        self.lenient = lenient
        self.error: FileProblem | None = None
        self.spools: dict[str, Spool] = {}
        self.package: Package | None = None
        try:
            self.package = open_package(path, lenient=lenient, limits=limits)
        except FileProblem as error:
            self.error = error
        version = self.package.version if self.package else "1.x"
        self.format = f"oneroster-{version}"
        self.source_name = self.package.source_name if self.package else None

    @property
    def warnings(self) -> list[tuple[str, str]]:
        return self.package.warnings if self.package else []

    def default_mode(self) -> str:
        if self.package is None:
            return "delta"
        modes = {self.package.mode(name) for name in self.package.files()}
        return "full" if "bulk" in modes else "delta"

    def file_mode(self, ctx: ImportContext, name: str) -> str:
        return self._mode(ctx.options, name)

    def _mode(self, options: ImportOptions, name: str) -> str:
        assert self.package is not None
        if options.mode == "delta":
            return "delta"
        if options.mode == "full":
            return "bulk"
        return self.package.mode(name)

    def read_ahead(self, options: ImportOptions, check: Progress | None = None) -> None:
        """Read and translate every file now, before the write transaction (issue 11 item 6);
        stops at the first file that cannot be read (the run stops there too)."""
        if self.package is None:
            return
        for name in ORDER:
            if name in self.package.files():
                spool = Spool.of(self._read(name, self._mode(options, name)), check)
                self.spools[name] = spool
                if spool.problem is not None:
                    return

    def steps(self, ctx: ImportContext) -> Iterator[Step]:
        if self.error is not None:
            raise self.error
        assert self.package is not None
        ctx.cache["version"] = {"value": self.package.version}
        ctx.cache["roles_present"] = {"value": self.package.mode("roles.csv") != "absent"}
        ctx.cache["users_mode"] = {"value": self.file_mode(ctx, "users.csv")}
        ctx.cache["roles_mode"] = {"value": self.file_mode(ctx, "roles.csv")}
        present = set(self.package.files())
        for name in ORDER:
            if name not in present:
                continue
            handle, prefetch = HANDLERS[name]
            yield Step(
                file=name,
                mode=self.file_mode(ctx, name),
                records=_parents_first(self._records(name, self.file_mode(ctx, name)))
                if name in ("orgs.csv", "academicSessions.csv")
                else self._records(name, self.file_mode(ctx, name)),
                handle=handle,
                prefetch=prefetch,
                seen_kind=KIND_OF_FILE[name],
                writes=name != "roles.csv",
                handle_batch=BATCH_HANDLERS.get(name),
            )
        if "roles.csv" in present:
            yield Step(
                file="roles.csv",
                mode=self.file_mode(ctx, "roles.csv"),
                records=_users_of_role_rows(ctx),
                handle=handle_user_roles,
                prefetch=_prefetch_user_refs,
            )

    def _records(self, name: str, mode: str) -> Iterator[ImportRecord | RowResult]:
        return replay(self.spools, name, lambda: self._read(name, mode))

    def _read(self, name: str, mode: str) -> Iterator[ImportRecord | RowResult]:
        assert self.package is not None
        version = self.package.version
        for row in self.package.rows(name):
            if not row.values:
                yield empty_line(name, row.number)
                continue
            try:
                yield translate(row, version, mode=mode, lenient=self.lenient)
            except RowProblem as problem:
                key = row.get("sourcedId") or None
                yield RowResult(name, row.number, key, Outcome.ERROR, problem.code, problem.message)

    def deactivations(self, ctx: ImportContext) -> Iterator[Deactivation]:
        if self.package is None:
            return
        present = set(self.package.files())
        if "users.csv" in present and self.file_mode(ctx, "users.csv") == "bulk":
            yield Deactivation(
                file="users.csv",
                kind="user",
                select_missing=_missing_users,
                deactivate=lambda c, user: users.deactivate_user(
                    c.session, c.actor, user, reason="Missing from a full import."
                ),
                key=lambda user: user.sourced_id,
                counts_for_shrink=True,
                count_active=_active_users,
            )
        for name, model, kind in (
            ("enrollments.csv", Enrollment, "enrollment"),
            ("classes.csv", SchoolClass, "class"),
        ):
            if name in present and self.file_mode(ctx, name) == "bulk":
                yield Deactivation(
                    file=name,
                    kind=kind,
                    select_missing=_missing_records(model, kind),
                    deactivate=lambda c, record: roster.set_status(
                        c.session, c.actor, record, RecordStatus.INACTIVE
                    ),
                    key=lambda record: record.sourced_id,
                )

    def close(self) -> None:
        for spool in self.spools.values():
            spool.close()
        if self.package is not None:
            self.package.close()


def _parents_first(items: Iterator[ImportRecord | RowResult]) -> Iterator[ImportRecord | RowResult]:
    """Orgs and academic sessions with their parents first: a package may list a school
    before its district (references are to the whole package, not to earlier rows). These
    files are small (a district's orgs and terms), so they are read whole."""
    items = list(items)
    records: dict[str, ImportRecord] = {}
    for item in items:
        if isinstance(item, ImportRecord):
            records.setdefault(item.key, item)
    done: set[int] = set()  # row numbers: a duplicate key still comes through (R103)

    def visit(record: ImportRecord, path: set[int]) -> Iterator[ImportRecord]:
        if record.number in done or record.number in path:
            return
        parent = records.get(record.refs.get("parent_key") or "")
        if parent is not None:
            yield from visit(parent, path | {record.number})
        done.add(record.number)
        yield record

    for item in items:
        if isinstance(item, ImportRecord):
            yield from visit(item, set())
        else:
            yield item


# --- full imports: what is missing ----------------------------------------------------------


def _user_scope(ctx: ImportContext) -> list[Any]:
    conditions = [User.connection_id == ctx.connection.id, User.status == RecordStatus.ACTIVE]
    if ctx.school_ids:
        conditions.append(
            exists().where(UserRole.user_id == User.id, UserRole.org_id.in_(ctx.school_ids))
        )
    return conditions


def _missing_users(ctx: ImportContext) -> Any:
    return select(User).where(*_user_scope(ctx), ctx.not_seen("user", User.sourced_id))


def _active_users(ctx: ImportContext) -> int:
    return ctx.session.scalar(select(func.count()).select_from(User).where(*_user_scope(ctx))) or 0


def _missing_records(model: Any, kind: str) -> Any:
    def query(ctx: ImportContext) -> Any:
        conditions = [
            model.connection_id == ctx.connection.id,
            model.status == RecordStatus.ACTIVE,
            ctx.not_seen(kind, model.sourced_id),
        ]
        if ctx.school_ids:
            conditions.append(model.school_id.in_(ctx.school_ids))
        return select(model).where(*conditions)

    return query


# --- lookups ----------------------------------------------------------------------------------


def _ids(ctx: ImportContext, model: Any) -> dict[str, str]:
    """sourcedId -> id of every record of a small kind (orgs, sessions, courses), cached."""
    name = model.__tablename__
    if name not in ctx.cache:
        rows = ctx.session.execute(
            select(model.sourced_id, model.id).where(model.tenant_id == ctx.tenant_id)
        )
        ctx.cache[name] = {sourced: id_ for sourced, id_ in rows}
    return ctx.cache[name]


def _resolve(ctx: ImportContext, model: Any, key: str, what: str, field: str) -> str:
    found = _ids(ctx, model).get(key)
    if found is None:
        raise NotFound(f"No {what} with sourcedId {key!r}.", field=field)
    return found


def _by_sourced_id(
    ctx: ImportContext, model: Any, keys: set[str], *, bare: bool = False
) -> dict[str, Any]:
    """The tenant's records of ``model`` with these sourcedIds; ``bare``: without loading
    their relationships up front (an enrollment only needs a user's or class's columns; the
    eager loads of roles, grades and terms were a sixth of a first import, issue 15)."""
    found: dict[str, Any] = {}
    keys_list = sorted(k for k in keys if k)
    for start in range(0, len(keys_list), 900):
        chunk = keys_list[start : start + 900]
        query = select(model).where(model.tenant_id == ctx.tenant_id, model.sourced_id.in_(chunk))
        for record in ctx.session.scalars(query.options(lazyload("*")) if bare else query):
            found[record.sourced_id] = record
    return found


def _prefetch_own(model: Any) -> Any:
    """Diff a batch of orgs, sessions, courses or classes against the stored hashes; load
    only the rows that may change (issue 15)."""

    def prefetch(ctx: ImportContext, records: list[ImportRecord]) -> None:
        found = sync_hashes.stored(ctx.session, model, ctx.tenant_id, [r.key for r in records])
        digests = {r.number: _record_digest(ctx, model, r) for r in records}
        skipped = {
            r.number
            for r in records
            if sync_hashes.unchanged(ctx.actor, found.get(r.key), digests[r.number])
        }
        ctx.batch["digests"], ctx.batch["unchanged"] = digests, skipped
        rest = {r.key for r in records if r.number not in skipped}
        ctx.batch["own"] = _by_sourced_id(ctx, model, rest)

    return prefetch


def _record_digest(ctx: ImportContext, model: Any, record: ImportRecord) -> str | None:
    """What an orgs/academicSessions/courses/classes row's outcome depends on, hashed: its
    fields and the ids its references name now; None when one names nothing (R108)."""
    if record.status == "tobedeleted":
        return None
    ids: dict[str, list[str | None]] = {}
    for ref, target in REFERENCES[model].items():
        value = record.refs.get(ref)
        keys = value if isinstance(value, list) else [value] if value else []
        ids[ref] = [_ids(ctx, target).get(key) for key in keys]
        if None in ids[ref]:
            return None
    return sync_hashes.digest({"fields": record.fields, "refs": record.refs, "ids": ids})


def _prefetch_users(ctx: ImportContext, records: list[ImportRecord]) -> None:
    """Diff the batch against the stored hashes in one SELECT; load only the rows that may
    change (issue 15)."""
    found = sync_hashes.stored(ctx.session, User, ctx.tenant_id, [r.key for r in records])
    digests = {r.number: _user_digest(ctx, r) for r in records}
    skipped = {
        r.number
        for r in records
        if sync_hashes.unchanged(ctx.actor, found.get(r.key), digests[r.number])
    }
    ctx.batch["digests"], ctx.batch["unchanged"] = digests, skipped
    ctx.batch["own"] = _by_sourced_id(
        ctx, User, {r.key for r in records if r.number not in skipped}
    )


def _user_digest(ctx: ImportContext, record: ImportRecord) -> str | None:
    """What a users.csv row's outcome depends on, hashed; None: always apply the row (a
    password, a deactivation, a delta roles.csv that depends on the stored roles, a reference
    that names nothing)."""
    version = ctx.cache["version"]["value"]
    roles_mode = ctx.cache["roles_mode"]["value"] if ctx.cache["roles_present"]["value"] else None
    if record.password or record.status == "tobedeleted" or record.enabled is False:
        return None
    if version == "1.2" and roles_mode not in (None, "bulk"):
        return None
    org_keys = [org for org, _, _ in record.refs.get("roles", [])]
    org_keys += [k for k in (record.refs.get("primary_org_key"),) if k]
    orgs = {key: _ids(ctx, Org).get(key) for key in org_keys}
    if None in orgs.values():
        return None
    return sync_hashes.digest(
        {
            "version": version,
            "users_mode": ctx.cache["users_mode"]["value"],
            "roles_mode": roles_mode,
            "fields": record.fields,
            "refs": record.refs,
            "orgs": orgs,
            "roles": ctx.cache.get("roles_by_user", {}).get(record.key, []),
        }
    )


def _prefetch_user_refs(ctx: ImportContext, records: list[ImportRecord]) -> None:
    ctx.batch["users"] = _by_sourced_id(
        ctx, User, {r.refs.get("user_key") or r.key for r in records}
    )


def _prefetch_enrollments(ctx: ImportContext, records: list[ImportRecord]) -> None:
    """Diff the batch against the stored hashes (one SELECT per kind, nothing loaded); load
    only what the rows that may change need (issue 15)."""
    found = sync_hashes.stored(ctx.session, Enrollment, ctx.tenant_id, [r.key for r in records])
    people = sync_hashes.stored(
        ctx.session, User, ctx.tenant_id, [r.refs["user_key"] for r in records]
    )
    classes = sync_hashes.stored(
        ctx.session, SchoolClass, ctx.tenant_id, [r.refs["class_key"] for r in records]
    )
    digests = {r.number: _enrollment_digest(ctx, r, people, classes) for r in records}
    skipped = {
        r.number
        for r in records
        if sync_hashes.unchanged(ctx.actor, found.get(r.key), digests[r.number])
    }
    ctx.batch["digests"], ctx.batch["unchanged"] = digests, skipped
    rest = [r for r in records if r.number not in skipped]
    ctx.batch["own"] = _by_sourced_id(ctx, Enrollment, {r.key for r in rest})
    users_named = {r.refs["user_key"] for r in rest}
    ctx.batch["users"] = _by_sourced_id(ctx, User, users_named, bare=True)
    classes_named = {r.refs["class_key"] for r in rest}
    ctx.batch["classes"] = _by_sourced_id(ctx, SchoolClass, classes_named, bare=True)


def _enrollment_digest(
    ctx: ImportContext,
    record: ImportRecord,
    people: dict[str, sync_hashes.Stored],
    classes: dict[str, sync_hashes.Stored],
) -> str | None:
    """What an enrollments.csv row's outcome depends on, hashed: its fields and the records
    it names as they stand; None when a reference names nothing (the row reports R108/R109)."""
    user, klass = people.get(record.refs["user_key"]), classes.get(record.refs["class_key"])
    school_key = record.refs.get("school_key")
    school = _ids(ctx, Org).get(school_key) if school_key else None
    if record.status == "tobedeleted" or user is None or klass is None:
        return None
    if not users.may_reference(ctx.actor, user.status, user.connection_id):
        return None
    if klass.status == RecordStatus.DELETED or (school_key and school is None):
        return None
    return sync_hashes.digest(
        {"fields": record.fields, "user": user.id, "class": klass.id, "school": school}
    )


# --- handlers ---------------------------------------------------------------------------------


def _result(
    record: ImportRecord, outcome: str, changes: dict | None = None, **kw: Any
) -> RowResult:
    return RowResult(record.file, record.number, record.key, outcome, changes=changes or {}, **kw)


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
        changed = roster.set_status(ctx.session, ctx.actor, existing, RecordStatus.INACTIVE)
        outcome = Outcome.DEACTIVATED if changed else Outcome.UNCHANGED
        return _result(
            record, outcome, {"status": [RecordStatus.ACTIVE, "inactive"]} if changed else {}
        )
    changes = roster.update_record(ctx.session, ctx.actor, existing, fields)
    if existing.status != RecordStatus.ACTIVE:
        before = existing.status
        roster.set_status(ctx.session, ctx.actor, existing, RecordStatus.ACTIVE)
        return _result(
            record,
            Outcome.REACTIVATED,
            {**changes, "status": [before, RecordStatus.ACTIVE]},
            code="W202",
            message="Matches an inactive record, which is reactivated.",
        )
    ctx.synced(record, model, existing)
    return _result(record, Outcome.UPDATED if changes else Outcome.UNCHANGED, changes)


def handle_org(ctx: ImportContext, record: ImportRecord) -> RowResult:
    fields = dict(record.fields)
    parent = record.refs.get("parent_key")
    fields["parent_id"] = _resolve(ctx, Org, parent, "org", "parentSourcedId") if parent else None
    return _upsert(ctx, record, Org, fields, roster.create_org)


def handle_session(ctx: ImportContext, record: ImportRecord) -> RowResult:
    fields = dict(record.fields)
    parent = record.refs.get("parent_key")
    fields["parent_id"] = (
        _resolve(ctx, AcademicSession, parent, "academic session", "parentSourcedId")
        if parent
        else None
    )
    return _upsert(ctx, record, AcademicSession, fields, roster.create_academic_session)


def handle_course(ctx: ImportContext, record: ImportRecord) -> RowResult:
    fields = dict(record.fields)
    org, year = record.refs.get("org_key"), record.refs.get("school_year_key")
    fields["org_id"] = _resolve(ctx, Org, org, "org", "orgSourcedId") if org else None
    fields["school_year_id"] = (
        _resolve(ctx, AcademicSession, year, "academic session", "schoolYearSourcedId")
        if year
        else None
    )
    return _upsert(ctx, record, Course, fields, roster.create_course)


def handle_class(ctx: ImportContext, record: ImportRecord) -> RowResult:
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
    return _upsert(ctx, record, SchoolClass, fields, roster.create_class)


def handle_role(ctx: ImportContext, record: ImportRecord) -> list[RowResult]:
    """Gather a 1.2 role for its user (checked now, applied with the user row)."""
    org_id = _resolve(ctx, Org, record.refs["org_key"], "org", "orgSourcedId")
    role = check_role(record.fields["role"])
    role_type = check_choice(record.fields["role_type"], ROLE_TYPES, "roleType")
    assignment = RoleAssignment(
        org_id,
        role,
        role_type,
        parse_date(record.fields["begin_date"], "beginDate"),
        parse_date(record.fields["end_date"], "endDate"),
        record.key,
        record.fields["user_profile_key"],
    )
    user_key = record.refs["user_key"]
    ctx.cache.setdefault("role_rows", {}).setdefault(user_key, record.number)
    ctx.cache.setdefault("role_holders", {})[record.key] = user_key
    if record.status == "tobedeleted":
        ctx.cache.setdefault("roles_removed", {}).setdefault(user_key, []).append(assignment)
        return []
    ctx.cache.setdefault("roles_by_user", {}).setdefault(user_key, []).append(
        (assignment, record.refs["org_key"])
    )
    return []


def _roles_for(ctx: ImportContext, key: str, current: list[RoleAssignment]) -> list[RoleAssignment]:
    """The user's roles after this package: a bulk roles.csv lists all of them; a delta one
    changes the roles it lists (matched by sourcedId, else by org and role) and removes
    those marked ``tobedeleted``."""
    gathered = [assignment for assignment, _ in ctx.cache.get("roles_by_user", {}).get(key, [])]
    if ctx.cache["roles_mode"]["value"] == "bulk":
        return gathered
    listed = gathered + ctx.cache.get("roles_removed", {}).get(key, [])
    holders = ctx.cache.get("role_holders", {})

    def replaced(r: RoleAssignment) -> bool:
        moved = r.sourced_id is not None and holders.get(r.sourced_id, key) != key
        return moved or any(
            (r.sourced_id is not None and r.sourced_id == x.sourced_id)
            or (r.org_id, r.role) == (x.org_id, x.role)
            for x in listed
        )

    return [r for r in current if not replaced(r)] + gathered


def _users_of_role_rows(ctx: ImportContext) -> Iterator[ImportRecord]:
    """Users that roles.csv names but users.csv does not list: their roles change alone."""
    named = set(ctx.cache.get("roles_by_user", {})) | set(ctx.cache.get("roles_removed", {}))
    named |= _previous_holders(ctx, sorted(ctx.cache.get("role_holders", {})))
    listed = ctx.seen_keys("user", sorted(named))
    rows = ctx.cache.get("role_rows", {})
    for key in sorted(named - listed, key=lambda k: rows.get(k, 0)):
        yield ImportRecord("roles.csv", rows.get(key, 0), "user_roles", key)


def _previous_holders(ctx: ImportContext, role_keys: list[str]) -> set[str]:
    """Users that hold a role sourcedId which roles.csv now gives to another user."""
    holders = ctx.cache.get("role_holders", {})
    found: set[str] = set()
    for start in range(0, len(role_keys), 900):
        chunk = role_keys[start : start + 900]
        rows = ctx.session.execute(
            select(User.sourced_id, UserRole.sourced_id)
            .join(UserRole, UserRole.user_id == User.id)
            .where(User.tenant_id == ctx.tenant_id, UserRole.sourced_id.in_(chunk))
        )
        found |= {user for user, role in rows if holders.get(role) != user}
    return found


def handle_user_roles(ctx: ImportContext, record: ImportRecord) -> RowResult:
    """Apply roles.csv rows to a user that users.csv does not list (reported on the user's
    first role row)."""
    user = _batch_user(ctx, record.key, "userSourcedId")
    roles = _roles_for(ctx, record.key, users.role_assignments(user))
    if not roles:
        raise RowProblem("R101", "The user would be left without a role.", "roles")
    changes = users.update_user(ctx.session, ctx.actor, user, {"roles": roles})
    return _result(record, Outcome.UPDATED if changes else Outcome.UNCHANGED, changes)


def handle_user(ctx: ImportContext, record: ImportRecord) -> RowResult:
    if ctx.unchanged(record):
        return _result(record, Outcome.UNCHANGED)
    result = _apply_user(ctx, record)
    if result.outcome in (Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED):
        written = ctx.batch["own"].get(record.key) or ctx.batch.get("created", {}).get(record.key)
        if written is not None:
            ctx.synced(record, User, written)
    return result


def _user_fields(ctx: ImportContext, record: ImportRecord) -> dict[str, Any]:
    """A users.csv row's fields in the domain's terms: roles resolved (1.1 ``orgSourcedIds``,
    1.2 roles.csv), primary role and primary org."""
    fields = dict(record.fields)
    version = ctx.cache["version"]["value"]
    if version == "1.1":
        fields["roles"] = [
            RoleAssignment(_resolve(ctx, Org, org, "org", "orgSourcedIds"), role, role_type)
            for org, role, role_type in record.refs["roles"]
        ]
    else:
        _ensure_roles(ctx, record, ctx.cache.get("roles_by_user", {}).get(record.key, []))
    if version == "1.2" and ctx.cache["roles_present"]["value"]:
        gathered = ctx.cache.get("roles_by_user", {}).get(record.key, [])
        known: User | None = ctx.batch["own"].get(record.key)
        fields["roles"] = _roles_for(
            ctx, record.key, users.role_assignments(known) if known is not None else []
        )
        primary_org = record.refs.get("primary_org_key")
        ranked = sorted(
            gathered,
            key=lambda g: (
                g[1] != primary_org,
                g[0].role_type != "primary",
                g[0].role,
                g[0].org_id,
            ),
        )
        if ranked:
            fields["primary_role"] = ranked[0][0].role
    if version == "1.2":
        fields["primary_org_id"] = _primary_org(ctx, record)
    return fields


def handle_users(ctx: ImportContext, records: list[ImportRecord]) -> dict[int, list[RowResult]]:
    """A batch of users.csv rows: new users without a password are created together
    (:func:`server.domain.bulk.create_users`), every other row one by one."""
    outcomes: dict[int, list[RowResult]] = {}
    new: list[tuple[ImportRecord, dict[str, Any]]] = []
    for record in records:
        fields = None if ctx.unchanged(record) else _creatable(ctx, record)
        if fields is None:
            outcomes[record.number] = [handle_user(ctx, record)]
        else:
            new.append((record, {**fields, "sourced_id": record.key}))
    made = bulk.create_users(ctx.session, ctx.actor, [fields for _, fields in new])
    for (record, _), user in zip(new, made, strict=True):
        outcomes[record.number] = [
            _result(record, Outcome.CREATED, {"username": [None, user.username]})
        ]
        ctx.synced(record, User, user)
    return outcomes


def _creatable(ctx: ImportContext, record: ImportRecord) -> dict[str, Any] | None:
    """The fields of a row that only creates a user (no password, not disabled, not stored,
    not adopted), or None."""
    if record.password or record.enabled is False or record.status == "tobedeleted":
        return None
    if record.key in ctx.batch["own"]:
        return None
    fields = _user_fields(ctx, record)
    if users.find_adoptable(ctx.session, ctx.actor, fields) is not None:
        return None
    return fields


def _apply_user(ctx: ImportContext, record: ImportRecord) -> RowResult:
    fields = _user_fields(ctx, record)
    existing: User | None = ctx.batch["own"].get(record.key)
    if existing is None:
        existing = users.adopt_matching(ctx.session, ctx.actor, fields)
        if existing is not None:
            fields["sourced_id"] = record.key
    if existing is None:
        if record.status == "tobedeleted":
            return _result(record, Outcome.UNCHANGED, message="Not present: nothing to deactivate.")
        user = users.create_user(ctx.session, ctx.actor, {**fields, "sourced_id": record.key})
        ctx.batch.setdefault("created", {})[record.key] = user
        if record.enabled is False:
            users.deactivate_user(ctx.session, ctx.actor, user, reason="enabledUser is false.")
        credentials.sync_password(ctx.session, ctx.actor, user, record.password, box=ctx.box)
        return _result(record, Outcome.CREATED, {"username": [None, user.username]})
    # users.csv owns the extra attributes it carries; demographics.csv and userProfiles.csv
    # own theirs, so a users.csv row keeps them.
    kept = {k: v for k, v in (existing.extra or {}).items() if k in OTHER_FILES_EXTRA}
    fields["extra"] = {**kept, **fields.get("extra", {})}
    if record.status == "tobedeleted" or record.enabled is False:
        changes = (
            {}
            if record.status == "tobedeleted"
            else users.update_user(ctx.session, ctx.actor, existing, fields)
        )
        changed = users.deactivate_user(
            ctx.session, ctx.actor, existing, reason=f"{record.file} row {record.number}."
        )
        if changed:
            changes["status"] = [RecordStatus.ACTIVE, RecordStatus.INACTIVE]
        outcome = (
            Outcome.DEACTIVATED if changed else Outcome.UPDATED if changes else Outcome.UNCHANGED
        )
        return _result(record, outcome, changes)
    before = existing.status
    changes = users.update_user(ctx.session, ctx.actor, existing, fields)
    if credentials.sync_password(ctx.session, ctx.actor, existing, record.password, box=ctx.box):
        changes["password"] = [None, "set"]
    if before != RecordStatus.ACTIVE:
        users.reactivate_user(ctx.session, ctx.actor, existing, reason="Listed again in an import.")
        return _result(
            record,
            Outcome.REACTIVATED,
            {**changes, "status": [before, RecordStatus.ACTIVE]},
            code="W202",
            message="Matches an inactive account, which is reactivated with its history.",
        )
    return _result(record, Outcome.UPDATED if changes else Outcome.UNCHANGED, changes)


def _ensure_roles(ctx: ImportContext, record: ImportRecord, gathered: list) -> None:
    """A 1.2 user of a bulk users.csv needs a row in roles.csv (OneRoster 1.2 users carry
    ``roles`` with at least one entry): R101 without one."""
    bulk = ctx.cache["users_mode"]["value"] == "bulk"
    if bulk and not gathered and record.status != "tobedeleted":
        raise RowProblem("R101", "The user has no row in roles.csv.", "roles")


def _primary_org(ctx: ImportContext, record: ImportRecord) -> str | None:
    """The org a 1.2 ``primaryOrgSourcedId`` names (R108 when none does); ``None`` when the
    cell is empty, which leaves the choice to the roles (``users.update_user``)."""
    key = record.refs.get("primary_org_key")
    if not key:
        return None
    return _resolve(ctx, Org, key, "org", "primaryOrgSourcedId")


def _batch_user(ctx: ImportContext, key: str, field: str) -> User:
    """The prefetched user a row names, checked by the domain (R108, R109)."""
    return users.referenced_user(ctx.actor, ctx.batch["users"].get(key), key, field)


def handle_demographics(ctx: ImportContext, record: ImportRecord) -> RowResult:
    user = _batch_user(ctx, record.key, "sourcedId")
    fields: dict[str, Any] = {
        "birth_date": record.fields["birth_date"],
        "gender": check_choice(record.fields["gender"], SEXES, "sex")
        if record.fields["gender"]
        else None,
    }
    demographics = record.fields["demographics"]
    extra = dict(user.extra or {})
    if demographics:
        extra["demographics"] = demographics
    else:
        extra.pop("demographics", None)
    fields["extra"] = extra
    changes = users.update_user(ctx.session, ctx.actor, user, fields)
    return _result(record, Outcome.UPDATED if changes else Outcome.UNCHANGED, changes)


def handle_user_profile(ctx: ImportContext, record: ImportRecord) -> RowResult:
    """Keep a 1.2 user profile in its user's ``extra``; a profile whose ``userSourcedId``
    changed moves to the new user, ``tobedeleted`` removes it."""
    user = _batch_user(ctx, record.refs["user_key"], "userSourcedId")
    holders = _profile_holders(ctx)
    changes: dict[str, list[Any]] = {}
    previous = holders.get(record.key)
    if previous is not None and previous != user.id:
        old = ctx.session.get(User, previous)
        if old is not None and _set_profile(ctx, old, record.key, None):
            changes["userSourcedId"] = [old.sourced_id, user.sourced_id]
    profile = None if record.status == "tobedeleted" else record.fields["profile"]
    if _set_profile(ctx, user, record.key, profile):
        changes["profile"] = [None, profile]
    holders[record.key] = user.id
    if profile is None:
        outcome = Outcome.DEACTIVATED if changes else Outcome.UNCHANGED
    else:
        outcome = Outcome.UPDATED if changes else Outcome.UNCHANGED
    return _result(record, outcome, changes)


def _set_profile(ctx: ImportContext, user: User, key: str, profile: dict | None) -> bool:
    """Put (or, with None, remove) one profile in the user's ``extra``; True if it changed."""
    extra = dict(user.extra or {})
    profiles = dict(extra.get("userProfiles") or {})
    if profile is None:
        profiles.pop(key, None)
    else:
        profiles[key] = profile
    extra["userProfiles"] = profiles
    if not profiles:
        del extra["userProfiles"]
    return bool(users.update_user(ctx.session, ctx.actor, user, {"extra": extra}))


def _profile_holders(ctx: ImportContext) -> dict[str, str]:
    """profile sourcedId -> id of the connection's user that holds it (read once per run)."""
    if "profile_holders" not in ctx.cache:
        rows = ctx.session.execute(
            select(User.id, User.extra).where(
                User.tenant_id == ctx.tenant_id,
                User.connection_id == ctx.connection.id,
                cast(User.extra, Text).contains("userProfiles"),
            )
        )
        ctx.cache["profile_holders"] = {
            key: user_id for user_id, extra in rows for key in (extra or {}).get("userProfiles", {})
        }
    return ctx.cache["profile_holders"]


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
        # the same sourcedId may name another user, class or school (re-pointed)
        refs = {
            "user_id": _batch_user(ctx, record.refs["user_key"], "userSourcedId").id,
            "class_id": _class_for(ctx, record).id,
            "school_id": _school_for(ctx, record),
        }
        return _upsert(ctx, record, Enrollment, {**fields, **refs}, None)
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


def handle_enrollments(
    ctx: ImportContext, records: list[ImportRecord]
) -> dict[int, list[RowResult]]:
    """A batch of enrollments: changes one by one, new ones through ``enroll_many``."""
    outcomes: dict[int, list[RowResult]] = {}
    new: list[tuple[ImportRecord, NewEnrollment]] = []
    for record in records:
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
                ),
            )
        )
    made = enroll_many(ctx.session, ctx.actor, [item for _, item in new])
    for (record, _), enrollment in zip(new, made, strict=True):
        outcomes[record.number] = [_enrolled(record, enrollment)]
        if enrollment.sourced_id == record.key:
            ctx.synced(record, Enrollment, enrollment)
    return outcomes


def _class_for(ctx: ImportContext, record: ImportRecord) -> SchoolClass:
    klass = ctx.batch["classes"].get(record.refs["class_key"])
    if klass is None or klass.status == RecordStatus.DELETED:
        raise NotFound(
            f"No class with sourcedId {record.refs['class_key']!r}.", field="classSourcedId"
        )
    return klass


def _school_for(ctx: ImportContext, record: ImportRecord) -> str | None:
    """The enrollment's ``schoolSourcedId`` resolved (R108), or None to use the class's."""
    key = record.refs.get("school_key")
    return _resolve(ctx, Org, key, "school", "schoolSourcedId") if key else None


def _enrolled(record: ImportRecord, enrollment: Enrollment) -> RowResult:
    if enrollment.sourced_id != record.key:
        return _result(
            record,
            Outcome.UNCHANGED,
            message=f"Same user, class and role as enrollment {enrollment.sourced_id!r}.",
        )
    return _result(record, Outcome.CREATED)


KIND_OF_FILE = {
    "orgs.csv": "org",
    "academicSessions.csv": "academic_session",
    "courses.csv": "course",
    "classes.csv": "class",
    "roles.csv": "role",
    "users.csv": "user",
    "demographics.csv": "demographics",
    "enrollments.csv": "enrollment",
    "userProfiles.csv": "user_profile",
}
HANDLERS: dict[str, tuple[Any, Any]] = {
    "orgs.csv": (handle_org, _prefetch_own(Org)),
    "academicSessions.csv": (handle_session, _prefetch_own(AcademicSession)),
    "courses.csv": (handle_course, _prefetch_own(Course)),
    "classes.csv": (handle_class, _prefetch_own(SchoolClass)),
    "roles.csv": (handle_role, None),
    "users.csv": (handle_user, _prefetch_users),
    "demographics.csv": (handle_demographics, _prefetch_user_refs),
    "enrollments.csv": (handle_enrollment, _prefetch_enrollments),
    "userProfiles.csv": (handle_user_profile, _prefetch_user_refs),
}
BATCH_HANDLERS: dict[str, Any] = {
    "users.csv": handle_users,
    "enrollments.csv": handle_enrollments,
}
# What the references of each kind of record name (ref key -> model), for its row hash
REFERENCES: dict[Any, dict[str, Any]] = {
    Org: {"parent_key": Org},
    AcademicSession: {"parent_key": AcademicSession},
    Course: {"org_key": Org, "school_year_key": AcademicSession},
    SchoolClass: {"school_key": Org, "course_key": Course, "term_keys": AcademicSession},
}
