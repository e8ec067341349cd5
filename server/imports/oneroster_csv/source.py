"""A OneRoster CSV package as an import source: its files in dependency order, each with its
handler, and what a full import deactivates."""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy import exists, func, select

from oneroster.csv_files import Package, SourceRow, open_package
from oneroster.csv_records import Sight, Sighter, sighter_of, translate
from server.db import (
    AcademicSession,
    Course,
    Enrollment,
    Org,
    RecordStatus,
    SchoolClass,
    User,
    UserRole,
)
from server.db.long_writes import frozen_heap
from server.domain import roster_status, users
from server.domain.import_limits import ImportLimits
from server.domain.import_records import (
    FileProblem,
    ImportRecord,
    Outcome,
    RowProblem,
    RowResult,
    Sighted,
    empty_line,
)
from server.imports import file_skips
from server.imports.contract import Deactivation, ImportContext, ImportOptions, Progress, Step
from server.imports.oneroster_csv.lookups import (
    _prefetch_enrollments,
    _prefetch_own,
    _prefetch_user_refs,
    _prefetch_users,
    gather_role_source,
    has_row_hashes,
    role_refs,
    sighted_unchanged,
)
from server.imports.oneroster_csv.roster_rows import (
    handle_class,
    handle_classes,
    handle_course,
    handle_courses,
    handle_enrollment,
    handle_enrollments,
    handle_org,
    handle_orgs,
    handle_session,
    handle_sessions,
)
from server.imports.oneroster_csv.user_rows import (
    _users_of_role_rows,
    handle_demographics,
    handle_role,
    handle_user,
    handle_user_profile,
    handle_user_roles,
    handle_users,
)
from server.imports.read_ahead import Spool, replay

SIGHT_BATCH = 500  # rows compared with the stored hashes in one go
# a row read ahead: its number, the header's columns, its cells as read and its sighting
Pending = tuple[int, tuple[str, ...], list[str], Sight | None]
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
        # files a proven run applied as they are (server.imports.file_skips): not read ahead
        self.proven: frozenset[str] = frozenset()
        # of those, the run whose stored rows of the file are copied, and how many
        self.copied: dict[str, tuple[str, int]] = {}
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

    def read_ahead(
        self,
        options: ImportOptions,
        check: Progress | None = None,
        snapshot: ImportContext | None = None,
    ) -> None:
        """Read and translate every file now, before the write transaction (issue 11 item 6);
        stops at the first file that cannot be read (the run stops there too).

        ``snapshot``: a context on a read-only unit of work; the rows whose stored hash
        matches there are spooled as :class:`Sighted`, not translated (issue 15)."""
        if self.package is None:
            return
        if snapshot is not None:
            self._prime(snapshot)
        with frozen_heap():  # full collections walk only what the read builds (issue 15)
            self._read_ahead(options, check, snapshot)

    def _read_ahead(
        self, options: ImportOptions, check: Progress | None, snapshot: ImportContext | None
    ) -> None:
        assert self.package is not None
        for name in ORDER:
            if name in self.package.files() and name not in self.proven:
                mode = self._mode(options, name)
                if snapshot is not None and has_row_hashes(snapshot, name):
                    rows = self._sighted(snapshot, name, mode)
                elif snapshot is not None and name == "roles.csv":
                    rows = _gathering_roles(snapshot, self._read(name, mode))
                else:
                    rows = self._read(name, mode)
                spool = Spool.of(rows, check)
                self.spools[name] = spool
                if spool.problem is not None:
                    return

    def package_print(self, options: ImportOptions) -> dict[str, Any] | None:
        """What the package's fingerprint holds (:mod:`server.domain.package_runs`): each
        file's name, mode and the SHA-256 of its bytes as read (every file is read once now,
        into a local copy its rows are then read from), the version and the source system.
        None: no fingerprint (a package that cannot be read whole, or with ``roles.csv``,
        whose rows are reported on other rows: read row by row)."""
        package = self.package
        if package is None or "roles.csv" in package.files():
            return None
        try:
            digests = package.hold()
        except FileProblem:
            return None
        files = [(name, self._mode(options, name), digests[name]) for name in package.files()]
        return {
            "format": self.format,
            "version": package.version,
            "source": self.source_name,
            "modes": sorted(package.modes.items()),
            "files": files,
        }

    def listed_files(self) -> Iterator[tuple[str, Callable[[], Iterator[tuple[int, str]]]]]:
        """Each file in the order the engine reports them, with the (row number, key) of its
        rows: what the report of a package known unchanged lists (each row unchanged)."""
        package = self.package
        assert package is not None
        for name in ORDER:
            if name in package.files():
                yield name, functools.partial(package.keys, name)

    def _prime(self, ctx: ImportContext) -> None:
        """What the handlers and row hashes of this package read from ``ctx.cache``."""
        assert self.package is not None
        ctx.cache["version"] = {"value": self.package.version}
        ctx.cache["roles_present"] = {"value": self.package.mode("roles.csv") != "absent"}
        ctx.cache["users_mode"] = {"value": self.file_mode(ctx, "users.csv")}
        ctx.cache["roles_mode"] = {"value": self.file_mode(ctx, "roles.csv")}

    def steps(self, ctx: ImportContext) -> Iterator[Step]:
        if self.error is not None:
            raise self.error
        assert self.package is not None
        self._prime(ctx)
        present = set(self.package.files())
        for name in ORDER:
            if name not in present:
                continue
            handle, prefetch = HANDLERS[name]
            if file_skips.holds(ctx, name, self.proven):
                yield self._listed(ctx, name)
                continue
            # a proven file not read ahead, after all: its rows compared with the stored
            # hashes now, batch by batch (else translated one by one)
            now = name in self.proven and has_row_hashes(ctx, name)
            records = (
                self._sighted(ctx, name, self.file_mode(ctx, name))
                if now
                else self._records(name, self.file_mode(ctx, name))
            )
            yield Step(
                file=name,
                mode=self.file_mode(ctx, name),
                records=_parents_first(records)
                if name in ("orgs.csv", "academicSessions.csv")
                else records,
                handle=handle,
                prefetch=prefetch,
                seen_kind=KIND_OF_FILE[name],
                writes=name != "roles.csv",
                handle_batch=BATCH_HANDLERS.get(name),
                revive=self.revive,
                recheck=self.recheck,
                sighted_now=now,
            )
        if "roles.csv" in present:
            yield Step(
                file="roles.csv",
                mode=self.file_mode(ctx, "roles.csv"),
                records=_users_of_role_rows(ctx),
                handle=handle_user_roles,
                prefetch=_prefetch_user_refs,
            )

    def _listed(self, ctx: ImportContext, name: str) -> Step:
        """The step of a file left unread: its rows' numbers and keys, each reported unchanged."""
        package = self.package
        assert package is not None
        handle, prefetch = HANDLERS[name]
        return Step(
            file=name,
            mode=self.file_mode(ctx, name),
            records=(),
            handle=handle,
            prefetch=prefetch,
            seen_kind=KIND_OF_FILE[name],
            listed=lambda: package.keys(name),
            copied=self.copied.get(name),
        )

    def _records(self, name: str, mode: str) -> Iterator[ImportRecord | RowResult]:
        return replay(self.spools, name, lambda: self._read(name, mode))

    def _read(self, name: str, mode: str) -> Iterator[ImportRecord | RowResult]:
        assert self.package is not None
        for row in self.package.rows(name):
            yield self._translated(row, mode)

    def _translated(self, row: SourceRow, mode: str) -> ImportRecord | RowResult:
        assert self.package is not None
        if not row.values:
            return empty_line(row.file, row.number)
        try:
            return translate(row, self.package.version, mode=mode, lenient=self.lenient)
        except RowProblem as problem:
            key = row.get("sourcedId") or None
            return RowResult(
                row.file, row.number, key, Outcome.ERROR, problem.code, problem.message
            )

    def _sighted(
        self, ctx: ImportContext, name: str, mode: str
    ) -> Iterator[ImportRecord | RowResult | Sighted]:
        """The rows of ``name``, those whose stored hash matches in the snapshot ``ctx`` as
        :class:`Sighted` (compared a batch at a time, not translated), the rest translated.
        Rows are hashed from the csv module's lists: a row is built only to be translated."""
        assert self.package is not None
        version, lenient = self.package.version, self.lenient
        pending: list[Pending] = []
        sighter: Sighter | None = None
        header: tuple[str, ...] = ()
        try:
            for columns, number, cells in self.package.lines(name):
                if columns is not header:
                    header, sighter = columns, sighter_of(name, columns, version, mode, lenient)
                seen = sighter.sight(cells) if sighter is not None and cells else None
                pending.append((number, header, cells, seen))
                if len(pending) >= SIGHT_BATCH:
                    yield from self._settle(ctx, name, mode, sighter, pending)
                    pending = []
        except FileProblem:
            yield from self._settle(ctx, name, mode, sighter, pending)  # the rows before it
            raise
        yield from self._settle(ctx, name, mode, sighter, pending)

    def _settle(
        self,
        ctx: ImportContext,
        name: str,
        mode: str,
        sighter: Sighter | None,
        pending: list[Pending],
    ) -> Iterator[ImportRecord | RowResult | Sighted]:
        rows = [(number, seen.key, seen.source) for number, _, _, seen in pending if seen]
        same = sighted_unchanged(ctx, name, rows, whole=True) if rows else set()
        for number, columns, cells, seen in pending:
            if seen is not None and number in same:
                assert sighter is not None
                repairs = sighter.repairs(number, cells)  # W203 is the row's own: said every time
                refs = seen.refs
                if name == "users.csv" and (orgs := role_refs(ctx, seen.key)):
                    refs = "\x1f".join([refs, *orgs] if refs else orgs)  # 1.2: its roles' too
                yield Sighted(name, number, seen.key, repairs, refs, seen.columns, seen.line)
            else:
                values = dict(zip(columns, cells, strict=True)) if cells else {}
                yield self._translated(SourceRow(name, number, values), mode)

    def revive(self, ctx: ImportContext, row: Sighted) -> ImportRecord | RowResult:
        """Translate a sighted row after all (the write transaction found it may have changed)."""
        mode = self.file_mode(ctx, row.file)
        return self._translated(SourceRow(row.file, row.number, row.cells()), mode)

    def recheck(self, ctx: ImportContext, rows: list[Sighted]) -> set[int]:
        """Which sighted rows still match the stored hashes, looked at in the write transaction."""
        assert self.package is not None
        sources = []
        for row in rows:
            mode = self.file_mode(ctx, row.file)
            sighter = sighter_of(row.file, row.columns, self.package.version, mode, self.lenient)
            seen = sighter.sight(row.line.split("\x1f")) if sighter is not None else None
            if seen is not None:
                sources.append((row.number, row.key, seen.source))
        return sighted_unchanged(ctx, rows[0].file, sources) if sources else set()

    def deactivations(self, ctx: ImportContext) -> Iterator[Deactivation]:
        if self.package is None:
            return
        present = set(self.package.files())
        if "users.csv" in present and self.file_mode(ctx, "users.csv") == "bulk":
            yield Deactivation(
                file="users.csv",
                kind="user",
                select_missing=self._missing("users.csv", User, "user", _missing_users),
                deactivate=lambda c, user: users.deactivate_user(
                    c.session, c.actor, user, reason="Missing from a full import."
                ),
                key=lambda user: user.sourced_id,
                counts_for_shrink=True,
                count_active=_active_users,
                deactivate_many=lambda c, batch: users.deactivate_users(
                    c.session, c.actor, batch, reason="Missing from a full import."
                ),
            )
        for name, model, kind in (
            ("enrollments.csv", Enrollment, "enrollment"),
            ("classes.csv", SchoolClass, "class"),
        ):
            if name in present and self.file_mode(ctx, name) == "bulk":
                yield Deactivation(
                    file=name,
                    kind=kind,
                    select_missing=self._missing(name, model, kind, _missing_records(model, kind)),
                    deactivate=lambda c, record: roster_status.set_status(
                        c.session, c.actor, record, RecordStatus.INACTIVE
                    ),
                    key=lambda record: record.sourced_id,
                    deactivate_many=lambda c, batch: roster_status.set_statuses(
                        c.session, c.actor, batch, RecordStatus.INACTIVE
                    ),
                )

    def _missing(self, name: str, model: Any, kind: str, query: Any) -> Any:
        """``query`` of what a full import deactivates, aware of a file left unread."""
        package = self.package
        assert package is not None
        return file_skips.missing(name, model, kind, query, lambda: package.keys(name))

    def close(self) -> None:
        for spool in self.spools.values():
            spool.close()
        if self.package is not None:
            self.package.close()


def _gathering_roles(
    ctx: ImportContext, items: Iterator[ImportRecord | RowResult]
) -> Iterator[ImportRecord | RowResult]:
    """roles.csv's items, each role row's ``source`` kept for its user's row hash as the
    write transaction's ``handle_role`` keeps it (users.csv is read after roles.csv)."""
    for item in items:
        if isinstance(item, ImportRecord):
            gather_role_source(ctx, item)
        yield item


def _parents_first(
    items: Iterator[ImportRecord | RowResult | Sighted],
) -> Iterator[ImportRecord | RowResult | Sighted]:
    """Orgs and academic sessions with their parents first: a package may list a school
    before its district (references are to the whole package, not to earlier rows). These
    files are small (a district's orgs and terms), so they are read whole."""
    listed = list(items)
    records: dict[str, ImportRecord] = {}
    for item in listed:
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

    for item in listed:
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
    "orgs.csv": handle_orgs,
    "academicSessions.csv": handle_sessions,
    "courses.csv": handle_courses,
    "classes.csv": handle_classes,
    "users.csv": handle_users,
    "enrollments.csv": handle_enrollments,
}
# What the references of each kind of record name (ref key -> model), for its row hash
