"""OneRoster CSV 1.1 / 1.2 packages through the import engine: one handler per file.

Files are handled in dependency order (orgs, academicSessions, courses, classes, roles, users,
demographics, enrollments, userProfiles). ``sourcedId`` is the stable key: a row updates the
tenant's record with that sourcedId, which must belong to the importing connection (R109), or
creates it. ``status=tobedeleted`` (delta) and ``enabledUser=false`` deactivate; a listed
inactive record is reactivated with its history (W202).

``roles.csv`` (1.2) rows are applied through their user: valid role rows produce no row of
their own, a role change shows in the user row's ``roles`` change. The role rows are gathered
before ``users.csv`` (one small tuple per role: the only part of a run that grows with the
file). ``userProfiles.csv`` is kept in the user's ``extra`` without its password column.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy import exists, func, select

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
from server.domain import credentials, guard, roster, users
from server.domain.enrollments import NewEnrollment, enroll_many
from server.domain.passwords import verify_password
from server.domain.users import RoleAssignment
from server.domain.vocabulary import check_choice, check_role
from server.errors import NotFound, OwnedByAnotherConnection
from server.imports.engine import Deactivation, ImportContext, Step
from server.imports.limits import ImportLimits
from server.imports.records import (
    FileProblem,
    ImportRecord,
    Outcome,
    RowProblem,
    RowResult,
    empty_line,
)

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
        self.error: FileProblem | None = None
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
        assert self.package is not None
        if ctx.options.mode == "delta":
            return "delta"
        if ctx.options.mode == "full":
            return "bulk"
        return self.package.mode(name)

    def steps(self, ctx: ImportContext) -> Iterator[Step]:
        if self.error is not None:
            raise self.error
        assert self.package is not None
        ctx.cache["version"] = {"value": self.package.version}
        ctx.cache["roles_present"] = {"value": self.package.mode("roles.csv") != "absent"}
        present = set(self.package.files())
        for name in ORDER:
            if name not in present:
                continue
            handle, prefetch = HANDLERS[name]
            yield Step(
                file=name,
                mode=self.file_mode(ctx, name),
                records=self._records(name),
                handle=handle,
                prefetch=prefetch,
                seen_kind=KIND_OF_FILE[name],
                writes=name != "roles.csv",
                handle_batch=handle_enrollments if name == "enrollments.csv" else None,
            )

    def _records(self, name: str) -> Iterator[ImportRecord | RowResult]:
        assert self.package is not None
        version = self.package.version
        for row in self.package.rows(name):
            if not row.values:
                yield empty_line(name, row.number)
                continue
            try:
                yield translate(row, version)
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
        if self.package is not None:
            self.package.close()


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


def _by_sourced_id(ctx: ImportContext, model: Any, keys: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    keys_list = sorted(k for k in keys if k)
    for start in range(0, len(keys_list), 900):
        chunk = keys_list[start : start + 900]
        for record in ctx.session.scalars(
            select(model).where(model.tenant_id == ctx.tenant_id, model.sourced_id.in_(chunk))
        ):
            found[record.sourced_id] = record
    return found


def _prefetch_own(model: Any) -> Any:
    def prefetch(ctx: ImportContext, records: list[ImportRecord]) -> None:
        ctx.batch["own"] = _by_sourced_id(ctx, model, {r.key for r in records})

    return prefetch


def _prefetch_users(ctx: ImportContext, records: list[ImportRecord]) -> None:
    ctx.batch["own"] = _by_sourced_id(ctx, User, {r.key for r in records})


def _prefetch_user_refs(ctx: ImportContext, records: list[ImportRecord]) -> None:
    ctx.batch["users"] = _by_sourced_id(
        ctx, User, {r.refs.get("user_key") or r.key for r in records}
    )


def _prefetch_enrollments(ctx: ImportContext, records: list[ImportRecord]) -> None:
    ctx.batch["own"] = _by_sourced_id(ctx, Enrollment, {r.key for r in records})
    ctx.batch["users"] = _by_sourced_id(ctx, User, {r.refs["user_key"] for r in records})
    ctx.batch["classes"] = _by_sourced_id(ctx, SchoolClass, {r.refs["class_key"] for r in records})


# --- handlers ---------------------------------------------------------------------------------


def _result(
    record: ImportRecord, outcome: str, changes: dict | None = None, **kw: Any
) -> RowResult:
    return RowResult(record.file, record.number, record.key, outcome, changes=changes or {}, **kw)


def _upsert(
    ctx: ImportContext, record: ImportRecord, model: Any, fields: dict[str, Any], create: Any
) -> RowResult:
    existing: SyncedRecord | None = ctx.batch.get("own", {}).get(record.key)
    if existing is None:
        if record.status == "tobedeleted":
            return _result(record, Outcome.UNCHANGED, message="Not present: nothing to deactivate.")
        created = create(ctx.session, ctx.actor, {**fields, "sourced_id": record.key})
        cache = ctx.cache.get(model.__tablename__)
        if cache is not None:
            cache[record.key] = created.id
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
    if record.status == "tobedeleted":
        return []
    ctx.cache.setdefault("roles_by_user", {}).setdefault(record.refs["user_key"], []).append(
        (org_id, role, role_type, record.refs["org_key"])
    )
    return []


def handle_user(ctx: ImportContext, record: ImportRecord) -> RowResult:
    fields = dict(record.fields)
    version = ctx.cache["version"]["value"]
    if version == "1.1":
        fields["roles"] = [
            RoleAssignment(_resolve(ctx, Org, org, "org", "orgSourcedIds"), role, role_type)
            for org, role, role_type in record.refs["roles"]
        ]
    elif ctx.cache["roles_present"]["value"]:
        gathered = ctx.cache.get("roles_by_user", {}).get(record.key, [])
        fields["roles"] = [RoleAssignment(org, role, kind) for org, role, kind, _ in gathered]
        primary_org = record.refs.get("primary_org_key")
        ranked = sorted(
            gathered, key=lambda g: (g[3] != primary_org, g[2] != "primary", g[1], g[0])
        )
        if ranked:
            fields["primary_role"] = ranked[0][1]
    existing: User | None = ctx.batch["own"].get(record.key)
    if existing is None:
        existing = _adoptable(ctx, fields)
        if existing is not None:
            fields["sourced_id"] = record.key
    if existing is None:
        if record.status == "tobedeleted":
            return _result(record, Outcome.UNCHANGED, message="Not present: nothing to deactivate.")
        user = users.create_user(ctx.session, ctx.actor, {**fields, "sourced_id": record.key})
        if record.enabled is False:
            users.deactivate_user(ctx.session, ctx.actor, user, reason="enabledUser is false.")
        _set_password(ctx, user, record.password)
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
    if _set_password(ctx, existing, record.password):
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


def _adoptable(ctx: ImportContext, fields: dict[str, Any]) -> User | None:
    """A user of another connection that this connection is set to adopt (SPEC §4)."""
    key = ctx.connection.adopt_by
    value = fields.get(key or "")
    if not key or not value:
        return None
    column = {"username": User.username_folded, "email": User.email_folded}.get(key)
    condition = (column == value.casefold()) if column is not None else (User.identifier == value)
    holder = ctx.session.scalars(
        select(User).where(
            User.tenant_id == ctx.tenant_id, condition, User.status != RecordStatus.DELETED
        )
    ).first()
    if holder is None or holder.connection_id == ctx.connection.id:
        return None
    users.adopt_user(ctx.session, ctx.actor, holder, key)
    return holder


def _set_password(ctx: ImportContext, user: User, password: str | None) -> bool:
    """Set the file's password unless it is already the user's (imports stay idempotent)."""
    if not password:
        return False
    credential = user.credential
    if credential is not None and verify_password(credential.password_hash, password):
        return False
    credentials.set_password(ctx.session, ctx.actor, user, password, temporary=False, box=ctx.box)
    return True


def _user_for(ctx: ImportContext, key: str, field: str) -> User:
    user = ctx.batch["users"].get(key)
    if user is None or user.status == RecordStatus.DELETED:
        raise NotFound(f"No user with sourcedId {key!r}.", field=field)
    if user.connection_id != ctx.connection.id:
        raise OwnedByAnotherConnection(user.connection.name, "This user")
    return user


def handle_demographics(ctx: ImportContext, record: ImportRecord) -> RowResult:
    user = _user_for(ctx, record.key, "sourcedId")
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
    user = _user_for(ctx, record.refs["user_key"], "userSourcedId")
    extra = dict(user.extra or {})
    profiles = dict(extra.get("userProfiles") or {})
    profiles[record.key] = record.fields["profile"]
    extra["userProfiles"] = profiles
    changes = users.update_user(ctx.session, ctx.actor, user, {"extra": extra})
    return _result(record, Outcome.UPDATED if changes else Outcome.UNCHANGED, changes)


def handle_enrollment(ctx: ImportContext, record: ImportRecord) -> RowResult:
    fields = record.fields
    existing: Enrollment | None = ctx.batch["own"].get(record.key)
    if existing is not None:
        return _upsert(ctx, record, Enrollment, dict(fields), None)
    if record.status == "tobedeleted":
        return _result(record, Outcome.UNCHANGED, message="Not present: nothing to deactivate.")
    user = _user_for(ctx, record.refs["user_key"], "userSourcedId")
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
    )
    return _enrolled(record, enrollment)


def handle_enrollments(
    ctx: ImportContext, records: list[ImportRecord]
) -> dict[int, list[RowResult]]:
    """A batch of enrollments: changes one by one, new ones through ``enroll_many``."""
    outcomes: dict[int, list[RowResult]] = {}
    new: list[tuple[ImportRecord, NewEnrollment]] = []
    for record in records:
        if record.key in ctx.batch["own"] or record.status == "tobedeleted":
            outcomes[record.number] = [handle_enrollment(ctx, record)]
            continue
        fields = record.fields
        user = _user_for(ctx, record.refs["user_key"], "userSourcedId")
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
                ),
            )
        )
    made = enroll_many(ctx.session, ctx.actor, [item for _, item in new])
    for (record, _), enrollment in zip(new, made, strict=True):
        outcomes[record.number] = [_enrolled(record, enrollment)]
    return outcomes


def _class_for(ctx: ImportContext, record: ImportRecord) -> SchoolClass:
    klass = ctx.batch["classes"].get(record.refs["class_key"])
    if klass is None or klass.status == RecordStatus.DELETED:
        raise NotFound(
            f"No class with sourcedId {record.refs['class_key']!r}.", field="classSourcedId"
        )
    return klass


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
