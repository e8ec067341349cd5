"""What an import reads before its write phase, in a read-only unit of work (a snapshot: no
write lock): the source's rows (rows whose stored hash matches are recognised there, issue 15),
the run's fingerprint (:mod:`server.domain.package_runs`) and the size of its write phase (at
most how many rows it applies and records it deactivates: :func:`writes_left`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from server.db import Connection, Enrollment, RecordStatus, SchoolClass, User
from server.db.session import Database
from server.domain import import_runs, package_runs
from server.domain.actors import connection_actor
from server.domain.import_runs import Report
from server.domain.roster_state import roster_state
from server.domain.secrets import SecretBox
from server.imports.contract import ImportContext, ImportOptions, Progress
from server.imports.file_skips import SKIPPABLE
from server.imports.read_ahead import Spool

# Whether a file identical to one of a proven run may be left unread (tests turn it off to
# compare with reading every row): :mod:`server.imports.file_skips`
SKIP_FILES = True
# A row the write phase walks without applying it (recognised by its hash: reported,
# claimed, confirmed) saves about 1/45 of the lock time an applied row saves when prepared
# on a copy (20,000 users: 11 µs against 0.52 ms net of the replay)
WALKED_PER_ROW = 45


def package_print(source: Any, options: ImportOptions) -> dict[str, Any] | None:
    """The source's part of the run's fingerprint (its files read once, hashed), or None: a
    source that has none (a school CSV) is always read row by row."""
    printer = getattr(source, "package_print", None)
    return printer(options) if printer is not None else None


def fingerprint(
    connection: Connection, printed: dict[str, Any] | None, options: ImportOptions
) -> str | None:
    """The run's fingerprint (:mod:`server.domain.package_runs`), or None."""
    if printed is None:
        return None
    return package_runs.fingerprint(printed, _chosen(options), package_runs.context_of(connection))


def file_prints(
    connection: Connection, printed: dict[str, Any] | None, options: ImportOptions
) -> dict[str, str]:
    """The fingerprint of each file of the run (:func:`package_runs.file_prints`), or none."""
    if printed is None:
        return {}
    context = package_runs.context_of(connection)
    return package_runs.file_prints(printed, _chosen(options), context)


def _chosen(options: ImportOptions) -> dict[str, Any]:
    """The options an import's outcome depends on (not ``dry_run``)."""
    return {
        "mode": options.mode,
        "schools": sorted(options.school_sourced_ids),
        "school_ids": sorted(options.school_ids),
        "lenient": options.lenient,
        "limits": options.limits,
    }


def read_ahead(
    database: Database,
    box: SecretBox,
    tenant_id: str,
    connection_id: str,
    source: Any,
    options: ImportOptions,
    progress: Progress | None,
) -> tuple[tuple[Any, ...] | None, dict[str, Any] | None, str | None, int | None]:
    """Read the source ahead in a read-only unit of work (no write lock): rows whose stored
    hash matches there are not translated (issue 15). Returns the roster state the snapshot
    saw (None: no snapshot), which the write transaction compares with its own, the source's
    part of the fingerprint (its files are read first, inside the snapshot), the run whose
    package this one is identical to with nothing changed since (then no row is read ahead:
    :mod:`server.domain.package_runs`) and :func:`writes_left` (None: not known)."""
    with database.session(read_only=True) as session:
        connection = session.get(Connection, connection_id)
        if connection is None or connection.tenant_id != tenant_id:
            source.read_ahead(options, progress)
            return None, None, None, None
        state = roster_state(session, tenant_id)
        printed = package_print(source, options)
        fingerprint_ = fingerprint(connection, printed, options)
        if fingerprint_ is not None:
            same_as = package_runs.proven(session, tenant_id, connection_id, fingerprint_, state)
            if same_as is not None:
                if printed is not None and hasattr(source, "copied"):
                    kept = package_runs.file_rows(session, same_as)
                    names = [name for name, _, _ in printed["files"]]
                    runs = {n: (same_as, None if kept is None else kept.get(n, 0)) for n in names}
                    source.copied = _copied(session, runs)
                return state, printed, same_as, 0
            _proven_files(session, connection, source, printed, options, state)
        report = Report(format="", mode="", dry_run=True, connection_name=connection.name)
        snapshot = ImportContext(
            session=session,
            actor=connection_actor(connection),
            connection=connection,
            box=box,
            options=options,
            report=report,
            mode=options.mode or source.default_mode(),
            school_ids=[],
        )
        try:
            source.read_ahead(options, progress, snapshot=snapshot)
        finally:
            report.close()
        return state, printed, None, writes_left(source, snapshot)


def _proven_files(
    session: Any,
    connection: Connection,
    source: Any,
    printed: dict[str, Any] | None,
    options: ImportOptions,
    state: tuple[Any, ...],
) -> None:
    """Tell the source which of its files a run proven at ``state`` applied as they are now
    (not read ahead: :mod:`server.imports.file_skips` decides in the write phase), and of
    those, which that run's stored rows can be copied from (:func:`import_runs.plain_rows`)."""
    if not SKIP_FILES or not hasattr(source, "proven"):
        return
    prints = file_prints(connection, printed, options)
    if prints:
        found = package_runs.proven_files(
            session, connection.tenant_id, connection.id, prints, state
        )
        source.proven = frozenset(found.keys() & SKIPPABLE)
        source.copied = _copied(session, {name: found[name] for name in source.proven})


def _copied(session: Any, runs: dict[str, tuple[str, int | None]]) -> dict[str, tuple[str, int]]:
    """For each file (by name, with the run that stored it and how many rows of it the run
    kept it stored as reading it reports them: :func:`package_runs.remember`): the run and
    how many rows, when they can be copied (0: not so). A run remembered before it kept them
    (None): its rows are read to know (:func:`import_runs.plain_rows`)."""
    copied = {name: (run_id, rows) for name, (run_id, rows) in runs.items() if rows}
    unknown = {name: run_id for name, (run_id, rows) in runs.items() if rows is None}
    for run_id in sorted(set(unknown.values())):
        files = [name for name, run in unknown.items() if run == run_id]
        for name, rows in import_runs.plain_rows(session, run_id, files).items():
            copied[name] = (run_id, rows)
    return copied


def writes_left(source: Any, snapshot: ImportContext) -> int | None:
    """The size of the write phase in rows applied (what :func:`server.imports.prepared.write`
    sizes it by), as the snapshot sees it: the rows read ahead that were not recognised by
    their stored hash, for a full import as many more as it may deactivate (per kind, the
    connection's active users, classes and enrollments less the rows of their file recognised;
    none for a file a proven run left as it is, :func:`_proven_files`), and the rows walked
    (each reported, claimed, confirmed) at their cost relative to an applied row.
    None: a source that does not read ahead into spools."""
    spools: dict[str, Spool] | None = getattr(source, "spools", None)
    if spools is None:
        return None
    translated = sum(spool.translated for spool in spools.values())
    walked = sum(spool.count for spool in spools.values())
    left = translated + walked // WALKED_PER_ROW
    if snapshot.mode == "full":
        left += _missing_at_most(snapshot, spools, getattr(source, "proven", frozenset()))
    return left


def _missing_at_most(
    snapshot: ImportContext, spools: dict[str, Spool], proven: frozenset[str]
) -> int:
    """How many records a full import may deactivate: per kind, the connection's active
    records less the rows of their file recognised by their stored hash."""
    session, owner = snapshot.session, snapshot.connection.id
    missing = 0
    for name, model in DEACTIVATED_MODELS.items():
        if name in proven:
            continue
        active = session.scalar(
            select(func.count())
            .select_from(model)
            .where(model.connection_id == owner, model.status == RecordStatus.ACTIVE)
        )
        spool = spools.get(name)
        missing += max(0, (active or 0) - (spool.sighted if spool is not None else 0))
    return missing


DEACTIVATED_MODELS: dict[str, Any] = {
    "users.csv": User,
    "classes.csv": SchoolClass,
    "enrollments.csv": Enrollment,
}
