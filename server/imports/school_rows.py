"""A school CSV's rows applied: students matched (username, else name in the class), created,
updated or reactivated through the domain, and placed in their class at the school."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select

from server.db import Enrollment, Org, RecordStatus, SchoolClass, User, UserRole, fold, not_deleted
from server.domain import credentials, duplicates, roster, roster_status, users
from server.domain.import_records import (
    ImportRecord,
    Outcome,
    RowProblem,
    RowResult,
)
from server.domain.users import RoleAssignment
from server.imports.contract import (
    ImportContext,
    ImportRefused,
)
from server.imports.school_columns import (
    FILE,
    year_group,
)


def _school_id(ctx: ImportContext) -> str:
    if len(ctx.school_ids) == 1:
        return ctx.school_ids[0]
    if ctx.school_ids:
        raise ImportRefused("A school CSV is for one school: choose one school.")
    schools = list(
        ctx.session.scalars(
            select(Org.id)
            .where(
                Org.tenant_id == ctx.tenant_id,
                Org.type == "school",
                Org.status == RecordStatus.ACTIVE,
            )
            .limit(2)
        )
    )
    if len(schools) != 1:
        raise ImportRefused(
            "Choose the school this file is for."
            if schools
            else "The tenant has no school yet: create one or import a OneRoster package first."
        )
    return schools[0]


def _students_in_scope(ctx: ImportContext) -> list[Any]:
    school_id = ctx.cache["school"]["id"]
    return [
        User.connection_id == ctx.connection.id,
        User.status == RecordStatus.ACTIVE,
        User.primary_role == "student",
        exists().where(UserRole.user_id == User.id, UserRole.org_id == school_id),
    ]


def _prefetch(ctx: ImportContext, records: list[ImportRecord]) -> None:
    names = sorted({r.key for r in records if r.key})
    found: dict[str, User] = {}
    if names:
        for user in ctx.session.scalars(
            select(User).where(
                User.tenant_id == ctx.tenant_id,
                User.username_folded.in_(names),
                not_deleted(User.status),
            )
        ):
            found[user.username_folded] = user
    ctx.batch["users"] = found
    if "classes" not in ctx.cache:
        school_id = ctx.cache["school"]["id"]
        rows = ctx.session.execute(
            select(SchoolClass.title_folded, SchoolClass.id).where(
                SchoolClass.tenant_id == ctx.tenant_id,
                SchoolClass.school_id == school_id,
                not_deleted(SchoolClass.status),
            )
        )
        ctx.cache["classes"] = {title: id_ for title, id_ in rows}


def _match(ctx: ImportContext, record: ImportRecord) -> tuple[User | None, str | None]:
    if record.key:
        user = ctx.batch["users"].get(record.key)
        if user is not None:
            return user, "username"
    class_id = ctx.cache["classes"].get(fold(record.refs["class"]) or "")
    if class_id is None:
        return None, None
    user = ctx.session.scalars(
        select(User)
        .where(
            User.tenant_id == ctx.tenant_id,
            duplicates.same_full_name(
                f"{record.fields['given_name']} {record.fields['family_name']}"
            ),
            not_deleted(User.status),
            exists().where(Enrollment.user_id == User.id, Enrollment.class_id == class_id),
        )
        .order_by(User.created_at)
    ).first()
    return (user, "full name and class") if user is not None else (None, None)


def _class_for(ctx: ImportContext, title: str) -> tuple[SchoolClass, bool]:
    classes = ctx.cache["classes"]
    class_id = classes.get(fold(title) or "")
    if class_id is not None:
        klass = ctx.session.get(SchoolClass, class_id)
        if klass is not None:
            return klass, False
    klass = roster.create_class(
        ctx.session, ctx.actor, {"title": title, "school_id": ctx.cache["school"]["id"]}
    )
    classes[fold(title) or ""] = klass.id
    return klass, True


def handle_student(ctx: ImportContext, record: ImportRecord) -> list[RowResult]:
    school_id = ctx.cache["school"]["id"]
    fields = dict(record.fields)
    if record.refs["year"]:
        fields["grades"] = [year_group(record.refs["year"])]
    fields["primary_role"] = "student"
    user, rule = _match(ctx, record)
    if user is not None and rule == "username" and not _same_person(user, fields):
        return [_someone_else(record, user)]
    if user is not None and _same_person(user, fields):
        # the same full name: keep how the account splits it into given and family name
        fields.pop("given_name"), fields.pop("family_name")
    results: list[RowResult] = []
    flags = record.refs["flags"]
    if user is None:
        _ensure_new_student_has(record, "Year Group", "year")
        _ensure_new_student_has(record, "Class", "class")
        alike = duplicates.possible_duplicates(
            ctx.session,
            ctx.actor,
            fields["given_name"],
            fields["family_name"],
            school_id=school_id,
            any_split=True,
        )
        fields["roles"] = [RoleAssignment(school_id, "student")]
        fields["demographic_flags"] = flags
        user = users.create_user(ctx.session, ctx.actor, fields)
        outcome, code, changes = Outcome.CREATED, None, {"username": [None, user.username]}
        message = None
        if alike:
            code, message = "W204", _duplicate_warning(alike)
    else:
        roles = users.role_assignments(user)
        if not any((r.org_id, r.role) == (school_id, "student") for r in roles):
            roles.append(RoleAssignment(school_id, "student"))
        fields["roles"] = sorted(roles)
        fields["demographic_flags"] = {**(user.demographic_flags or {}), **flags}
        before = user.status
        changes = users.update_user(ctx.session, ctx.actor, user, fields)
        message = f"Matched by {rule}."
        code = None
        if before != RecordStatus.ACTIVE:
            users.reactivate_user(ctx.session, ctx.actor, user, reason="Listed again in an import.")
            changes["status"] = [before, RecordStatus.ACTIVE]
            outcome, code = Outcome.REACTIVATED, "W202"
            message += " The account was inactive and is reactivated with its history."
        else:
            outcome = Outcome.UPDATED if changes else Outcome.UNCHANGED
    if not record.refs["class"]:
        # an existing student listed without a class keeps the classes they have
        return _student_result(ctx, record, user, outcome, code, message, changes, results)
    klass, class_created = _class_for(ctx, record.refs["class"])
    if class_created:
        results.append(
            RowResult(
                FILE,
                record.number,
                f"class:{klass.title}",
                Outcome.CREATED,
                message=f"New class {klass.title!r}.",
            )
        )
    moved = _place_in_class(ctx, user, klass)
    if moved:
        changes["class"] = moved
    return _student_result(ctx, record, user, outcome, code, message, changes, results)


def _same_person(user: User, fields: dict[str, Any]) -> bool:
    """The row names the account's holder: the same full name, any case or spacing (the file
    has one name column, so "Milhouse Van Houten" is the same person however it was split)."""
    return _full_name(user.given_name, user.family_name) == _full_name(
        fields["given_name"], fields["family_name"]
    )


def _full_name(given: str | None, family: str | None) -> str:
    return " ".join(f"{given or ''} {family or ''}".split()).casefold()


def _someone_else(record: ImportRecord, user: User) -> RowResult:
    """W205: the row's username belongs to another person; the row is skipped, not applied."""
    row_name = f"{record.fields['given_name']} {record.fields['family_name']}".strip()
    return RowResult(
        FILE,
        record.number,
        user.username,
        Outcome.SKIPPED,
        "W205",
        f"The username {user.username!r} belongs to {user.given_name} {user.family_name}, "
        f"not {row_name}: the row is skipped and that account is left as it is. Leave the "
        "Username blank for a new student, or correct the name if it is the same child.",
    )


def _ensure_new_student_has(record: ImportRecord, column: str, ref: str) -> None:
    """A new student needs a Year Group and a Class (R101)."""
    if not record.refs[ref]:
        raise RowProblem("R101", f"{column} is empty (needed for a new student).", column)


def _student_result(
    ctx: ImportContext,
    record: ImportRecord,
    user: User,
    outcome: str,
    code: str | None,
    message: str | None,
    changes: dict[str, Any],
    results: list[RowResult],
) -> list[RowResult]:
    """Set the row's password, mark the student seen and report the row first."""
    if credentials.sync_password(ctx.session, ctx.actor, user, record.password, box=ctx.box):
        changes["password"] = [None, "set"]
    if outcome == Outcome.UNCHANGED and changes:
        outcome = Outcome.UPDATED
    ctx.mark_seen("user_id", [user.id])
    results.insert(
        0,
        RowResult(FILE, record.number, user.username, outcome, code, message, changes),
    )
    return results


def _duplicate_warning(alike: list[User]) -> str:
    names = ", ".join(f"{u.given_name} {u.family_name} ({u.username})" for u in alike)
    return (
        f"Created, but an active student with the same name is already at this school: {names}. "
        "If it is the same child, give the row that username and import again."
    )


def _place_in_class(ctx: ImportContext, user: User, klass: SchoolClass) -> list[Any] | None:
    """Enrol the student in ``klass``; leave this connection's other classes at the school."""
    current = list(
        ctx.session.scalars(
            select(Enrollment).where(
                Enrollment.user_id == user.id,
                Enrollment.school_id == klass.school_id,
                Enrollment.role == "student",
                Enrollment.status == RecordStatus.ACTIVE,
                Enrollment.connection_id == ctx.connection.id,
            )
        )
    )
    in_class = ctx.session.scalars(
        select(Enrollment.id).where(
            Enrollment.user_id == user.id,
            Enrollment.class_id == klass.id,
            Enrollment.role == "student",
            Enrollment.status == RecordStatus.ACTIVE,
        )
    ).first()
    others = [e for e in current if e.class_id != klass.id]
    if in_class is not None and not others:
        return None
    before = []
    for enrollment in others:
        other = ctx.session.get(SchoolClass, enrollment.class_id)
        before.append(other.title if other else enrollment.class_id)
        roster_status.set_status(ctx.session, ctx.actor, enrollment, RecordStatus.INACTIVE)
    if in_class is None:
        roster.enroll(ctx.session, ctx.actor, user, klass, role="student")
    return [", ".join(before) or None, klass.title]
