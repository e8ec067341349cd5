"""A package identical to one already applied, with nothing changed since, is not read row by
row (issue 15: the unchanged nightly full sync costs next to nothing; SPEC §5: a push sent twice
changes nothing the second time).

**The fingerprint** of a run (:func:`fingerprint`) is a digest of everything its outcome depends
on besides the database: the bytes of each file as read through the import limits (hashed while
they are read, :meth:`oneroster.csv_files.Package.hold`), the manifest's version and file modes,
:data:`ENGINE_VERSION`, the options (mode, leniency, school filter, limits; not ``dry_run``: a
trial run and its apply have the same fingerprint), the importing connection (id, kind, SSO
provider, profile, adoption, schools, settings) and the tenant's settings (username pattern,
password policy, ...). Nothing time-dependent decides a row of a clean run: dates in rows are
stored as given and never compared with today; retention and leavers' grace periods apply to
records a run deactivates or deletes, and a run that deactivates, reactivates or restores
anything carries a code (W201/W202) and is never remembered; the purge of deleted users after
their retention is a write to ``users`` and moves the roster state.

**Remembered** (:func:`remember`): only after an applied run whose report is clean
(:func:`clean`: no errors, no codes, no warnings, no file errors, only created / updated /
unchanged rows, no row reported with a message: such a row, e.g. a delta's ``tobedeleted``
for a record that does not exist, "nothing to deactivate", is handled every time and says
so) and that read no row carrying a password (:mod:`server.domain.sync_hashes` never skips
those: the stored password may have changed since), with the roster state at which the
database was proven to equal the package (:func:`state_key`):

- SQLite: the write transaction holds the write lock from ``BEGIN IMMEDIATE`` to its commit, so
  the state read inside it after the run's own writes is the state after the commit;
- PostgreSQL (READ COMMITTED: other writers commit while a run writes): only when the state at
  the end of the write transaction equals the state at its start. A committed write only ever
  adds to ``version + count(roster_changes)`` (each writing statement inserts a change row; a
  fold, migration 0014, deletes ``n`` changes and adds ``n`` to ``version`` in one transaction),
  so equal keys mean that neither this run nor anyone else wrote to the roster in between:
  every row of the run was compared with that one state. The key is ``epoch:version+count``,
  which a fold leaves as it is (the epoch changes only when the version row is first made, in
  a transaction that also adds a change).

**Skipped** (:func:`proven`): a run whose fingerprint equals a remembered one whose state equals
the roster's now (looked at in the read-ahead snapshot and again inside the write transaction)
reports every row unchanged without translating, looking up or hashing it. Any write to a
counted table since (SCIM, staff, another connection, another import), a different setting, a
different byte: the rows are read one by one as before.

**Files** (:func:`file_prints`, :func:`proven_files`): a remembered run also keeps one
fingerprint per file (the file's name, mode and bytes, the package's format, version, source,
modes and file names, the options and the context: everything of the run's fingerprint but the
other files' bytes). At the state a run was proven at, a file whose fingerprint it shares has
every row as that run left it; whether a row's outcome still is what it was also depends on
what this run's earlier files change, which :mod:`server.imports.file_skips` decides when the
file's turn comes (else the file is read row by row).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.db import Connection, ImportRun
from server.domain.import_records import Outcome
from server.domain.import_runs import Report, RunStatus
from server.domain.roster_state import roster_state
from server.domain.sync_hashes import digest

# Bump when a reader or the engine changes what a package's rows mean (a new repair, a new
# rule): a package remembered by older code is then read row by row once more.
ENGINE_VERSION = "1"
CLEAN_OUTCOMES = frozenset((Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED))


def fingerprint(package: Mapping[str, Any], options: Mapping[str, Any], context: str) -> str:
    """The run's fingerprint: the package as read, the options, :func:`context_of`."""
    return digest(
        {"engine": ENGINE_VERSION, "package": package, "options": options, "context": context}
    )


def file_prints(
    package: Mapping[str, Any], options: Mapping[str, Any], context: str
) -> dict[str, str]:
    """The fingerprint of each file of ``package`` (see **Files** above), by file name."""
    shared = {key: value for key, value in package.items() if key != "files"}
    names = [name for name, _, _ in package["files"]]
    return {
        name: digest(
            {
                "engine": ENGINE_VERSION,
                "file": [name, mode, sha],
                "package": shared,
                "names": names,
                "options": options,
                "context": context,
            }
        )
        for name, mode, sha in package["files"]
    }


def proven_files(
    session: Session,
    tenant_id: str,
    connection_id: str,
    prints: Mapping[str, str],
    state: tuple[Any, ...],
) -> dict[str, tuple[str, int | None]]:
    """The files among ``prints`` whose fingerprint the latest applied run of the connection
    proven at ``state`` (the roster state the caller read now) shares, with that run's id and
    how many rows of the file it stored as reading it reports them (0: not so; None: not
    known, a run remembered before it kept them)."""
    found = session.execute(
        select(ImportRun.id, ImportRun.file_prints, ImportRun.file_rows)
        .where(
            ImportRun.tenant_id == tenant_id,
            ImportRun.proven_state == state_key(state),
            ImportRun.connection_id == connection_id,
            ImportRun.status == RunStatus.APPLIED,
            ImportRun.file_prints.is_not(None),
        )
        .order_by(ImportRun.finished_at.desc(), ImportRun.id)
        .limit(1)
    ).first()
    if found is None:
        return {}
    run_id, stored, rows = found
    return {
        name: (run_id, None if rows is None else rows.get(name, 0))
        for name, value in (stored or {}).items()
        if prints.get(name) == value
    }


def file_rows(session: Session, run_id: str) -> dict[str, int] | None:
    """How many rows of each file run ``run_id`` stored as reading the file reports them
    (those it kept: :func:`remember`), or None (remembered before it kept them)."""
    rows = session.scalar(select(ImportRun.file_rows).where(ImportRun.id == run_id))
    return None if rows is None else dict(rows)


def context_of(connection: Connection) -> str:
    """What an import's outcome depends on in the connection and its tenant (a digest)."""
    tenant = connection.tenant  # loaded with the connection
    return digest(
        {
            "connection": connection.id,
            "kind": connection.kind,
            "sso": connection.sso,
            "sso_provider": connection.sso_provider,
            "profile": connection.profile,
            "adopt_by": connection.adopt_by,
            "schools": sorted(connection.school_ids or []),
            "settings": connection.settings or {},
            "tenant": tenant.settings,
        }
    )


def state_key(state: tuple[Any, ...]) -> str:
    """The roster state as remembered: epoch and ``version + count(changes)`` (see above)."""
    epoch, version, changes = state[0], state[1], state[2]
    return f"{epoch}:{(version or 0) + (changes or 0)}"


def proven(
    session: Session, tenant_id: str, connection_id: str, printed: str, state: tuple[Any, ...]
) -> str | None:
    """The id of the latest applied run of the connection with this fingerprint that was
    proven at ``state`` (the roster state the caller read now), or None."""
    key = state_key(state)
    return session.scalar(
        select(ImportRun.id)
        .where(
            ImportRun.tenant_id == tenant_id,
            ImportRun.package_fingerprint == printed,
            ImportRun.proven_state == key,
            ImportRun.connection_id == connection_id,
            ImportRun.status == RunStatus.APPLIED,
        )
        .order_by(ImportRun.finished_at.desc(), ImportRun.id)
        .limit(1)
    )


def clean(report: Report) -> bool:
    """Whether a run's report lets its package be remembered (see the rules above)."""
    outcomes = {name for name, count in report.outcomes.items() if count}
    return (
        report.status == RunStatus.APPLIED
        and not report.noted_files
        and not report.codes
        and not report.warnings
        and not report.file_errors
        and outcomes <= CLEAN_OUTCOMES
    )


def remember(
    session: Session,
    tenant_id: str,
    run_id: str,
    printed: str,
    start: tuple[Any, ...] | None,
    files: Mapping[str, str] | None = None,
    rows: Mapping[str, int] | None = None,
) -> bool:
    """Store the fingerprint of an applied clean run (and of its ``files``, with how many
    ``rows`` of each it stored as reading the file reports them, where it did) and the state
    at which it was proven, inside its write transaction after its writes (``start``: the
    state the transaction read at its start). Returns whether it was stored (see the rules
    above)."""
    end = roster_state(session, tenant_id)
    if session.get_bind().dialect.name != "sqlite" and (
        start is None or state_key(start) != state_key(end)
    ):
        return False
    session.execute(
        update(ImportRun)
        .where(ImportRun.id == run_id)
        .values(
            package_fingerprint=printed,
            proven_state=state_key(end),
            file_prints=dict(files) if files else None,
            file_rows={name: n for name, n in (rows or {}).items() if name in (files or {})}
            or None,
        )
    )
    return True
