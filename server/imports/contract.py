"""The contract between file readers and the import engine (SPEC §5).

A reader (:mod:`server.imports.oneroster_csv`, :mod:`server.imports.school_csv`) is an
:class:`ImportSource`: it reads its files ahead into spools before the write transaction
(:mod:`server.imports.read_ahead`), then yields :class:`Step` s (one per file, with a handler
per record) and the :class:`Deactivation` s a full import makes. Handlers share one
:class:`ImportContext`. This module imports no reader and not the engine, so readers and the
engine depend on it and not on each other.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Column, MetaData, String, Table, bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.db import Connection
from server.domain.actors import Actor
from server.domain.import_limits import ImportLimits
from server.domain.import_records import ImportRecord, RowResult, Sighted
from server.domain.import_runs import Report
from server.domain.secrets import SecretBox
from server.errors import DomainError

MODES = ("full", "delta")

Progress = Callable[[int], None]


class ImportRefused(DomainError):
    """The import cannot start: a bad mode, an unknown school, a file of an unknown kind."""


@dataclass(frozen=True)
class ImportOptions:
    """How to run an import. ``mode`` None: the manifest's (OneRoster) or delta (school CSV)."""

    mode: str | None = None
    school_sourced_ids: tuple[str, ...] = ()
    school_ids: tuple[str, ...] = ()  # our ids, when the caller resolved them already
    dry_run: bool = False
    skip_invalid: bool = False
    allow_shrink: bool = False
    shrink_threshold: float | None = None
    lenient: bool = True
    limits: ImportLimits = field(default_factory=ImportLimits)  # Settings.import_limits


@dataclass
class Step:
    """One file of a source: its records, how to handle one, and how to prefetch a batch."""

    file: str
    mode: str
    records: Iterable[ImportRecord | RowResult | Sighted]
    handle: Callable[[ImportContext, ImportRecord], RowResult | list[RowResult]]
    prefetch: Callable[[ImportContext, list[ImportRecord]], None] | None = None
    seen_kind: str | None = None
    writes: bool = True  # False: the handler only reads and gathers (no savepoints needed)
    # Optional: the whole batch at once (all or nothing; a failure falls back to ``handle``).
    handle_batch: (
        Callable[[ImportContext, list[ImportRecord]], dict[int, list[RowResult]]] | None
    ) = None
    # Rows the read-ahead found unchanged (issue 15): translate one after all (``revive``),
    # and the numbers of those that still match the stored hashes now (``recheck``).
    revive: Callable[[ImportContext, Sighted], ImportRecord | RowResult] | None = None
    recheck: Callable[[ImportContext, list[Sighted]], set[int]] | None = None
    # A file left unread (server.imports.file_skips): (row number, key) of each of its rows,
    # each reported unchanged instead of ``records``
    listed: Callable[[], Iterator[tuple[int, str]]] | None = None
    # ... and the run whose stored rows of the file are its report, with how many (else listed)
    copied: tuple[str, int] | None = None
    # Its rows were compared with the stored hashes in the write transaction itself, each as
    # its batch comes: rows found unchanged need no second look
    sighted_now: bool = False


class ImportSource(Protocol):
    """A readable file: OneRoster package or school CSV."""

    format: str
    source_name: str | None
    warnings: list[tuple[str, str]]

    def default_mode(self) -> str: ...

    def read_ahead(
        self,
        options: ImportOptions,
        check: Progress | None = None,
        snapshot: ImportContext | None = None,
    ) -> None: ...

    def steps(self, ctx: ImportContext) -> Iterator[Step]: ...

    def deactivations(self, ctx: ImportContext) -> Iterator[Deactivation]: ...

    def close(self) -> None: ...


@dataclass
class Deactivation:
    """What a full import deactivates for one kind of record: a query and how to do it."""

    file: str
    kind: str
    select_missing: Callable[[ImportContext], Any]  # a SELECT of the records to deactivate
    deactivate: Callable[[ImportContext, Any], bool]
    key: Callable[[Any], str]
    counts_for_shrink: bool = False
    count_active: Callable[[ImportContext], int] | None = None
    # Optional: a chunk of records at once, all or nothing (a failure falls back to
    # ``deactivate`` one by one); returns, per record, whether it changed.
    deactivate_many: Callable[[ImportContext, list[Any]], list[bool]] | None = None


@dataclass
class ImportContext:
    """What handlers share during one run: the session, the acting connection, caches."""

    session: Session
    actor: Actor
    connection: Connection
    box: SecretBox
    options: ImportOptions
    report: Report
    mode: str
    school_ids: list[str]
    cache: dict[str, dict[str, Any]] = field(default_factory=dict)
    batch: dict[str, Any] = field(default_factory=dict)  # what a batch prefetched and wrote
    # Whether the read snapshot of the read-ahead still holds (issue 15): rows it found
    # unchanged need no second look unless this run applied a record they name (``touched``)
    snapshot_holds: bool = False
    snapshot_state: tuple[Any, ...] | None = None
    touched: dict[str, set[str]] = field(default_factory=dict)  # kind -> keys applied
    # Files reported unchanged without reading their rows, and those of them whose keys were
    # claimed after all (:mod:`server.imports.file_skips`)
    unread: set[str] = field(default_factory=set)
    claimed_unread: set[str] = field(default_factory=set)
    # Whether a row carried a password: such a run's package is not remembered (issue 15)
    passwords: bool = False

    @property
    def tenant_id(self) -> str:
        return self.actor.tenant_id

    def unchanged(self, record: ImportRecord) -> bool:
        """Whether the batch's prefetch found the row unchanged (its stored hash matches);
        the engine reports such a row unchanged without calling its handler."""
        return record.number in self.batch.get("unchanged", ())

    def synced(self, record: ImportRecord, model: Any, written: Any) -> None:
        """Note that ``record`` was written to (or found equal in) ``written``: the engine
        stores its hash at the end of the batch, unless the row is rolled back."""
        row_digest = self.batch.get("digests", {}).get(record.number)
        later = self.batch.get("digest_later")
        if row_digest is None and later is not None:
            row_digest = later(record)  # what it names is written now (same batch)
        if row_digest is not None:
            self.batch.setdefault("synced", {})[record.number] = (model, written, row_digest)

    def seen_keys(self, kind: str, keys: list[str]) -> set[str]:
        """Which of ``keys`` were already seen (marked) in this run."""
        found: set[str] = set()
        for start in range(0, len(keys), 900):
            chunk = keys[start : start + 900]
            found.update(self.session.scalars(_SEEN_AMONG, {"kind": kind, "keys": chunk}))
        return found

    def claim(self, kind: str, keys: Iterable[str]) -> set[str]:
        """Mark ``keys`` seen; returns those that were not seen before in this run. One
        ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (what a SELECT then an INSERT did)."""
        wanted = list(set(keys))
        if not wanted:
            return set()
        connection = self.session.connection()
        listed = json.dumps(wanted)
        # the keys as one JSON parameter: a third of the CPU of a 500-row VALUES list (SQLite's
        # JSON text ends at a NUL, so a key holding one takes the other path)
        if connection.dialect.name == "sqlite" and "\\u0000" not in listed:
            answer = connection.exec_driver_sql(_CLAIM_SQLITE, (kind, listed))
            return {key for (key,) in answer.fetchall()}
        rows = [{"kind": kind, "key": key} for key in wanted]
        return set(self.session.scalars(_claim_statement(connection.dialect.name), rows))

    def mark_seen(self, kind: str, keys: Iterable[str]) -> None:
        rows = [{"kind": kind, "key": key} for key in set(keys)]
        if rows:
            self.session.execute(insert(SEEN).prefix_with(_or_ignore(self.session)), rows)

    def not_seen(self, kind: str, column: Any) -> Any:
        """A WHERE condition: ``column`` is not among the keys seen for ``kind``."""
        return column.not_in(select(SEEN.c.key).where(SEEN.c.kind == kind))


# The keys seen in this run, in a temporary table private to the import's connection: it
# lives as long as the transaction (dropped at the end on both SQLite and PostgreSQL).
_TEMP = MetaData()
SEEN = Table(
    "rollcall_import_seen",
    _TEMP,
    Column("kind", String(20), primary_key=True),
    Column("key", String(255), primary_key=True),
    prefixes=["TEMPORARY"],
)


# Built once: the keys are one expanding parameter, not a SQL literal object per key
_SEEN_AMONG = select(SEEN.c.key).where(
    SEEN.c.kind == bindparam("kind"), SEEN.c.key.in_(bindparam("keys", expanding=True))
)


@functools.cache
def _claim_statement(dialect: str) -> Any:
    """INSERT the keys not seen yet, returning them."""
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return dialect_insert(SEEN).on_conflict_do_nothing().returning(SEEN.c.key)


# SQLite ≥ 3.35 (RETURNING); "WHERE true" tells the parser ON CONFLICT is not a join clause
_CLAIM_SQLITE = (
    f'INSERT INTO {SEEN.name} (kind, "key") SELECT ?, value FROM json_each(?) WHERE true '
    'ON CONFLICT DO NOTHING RETURNING "key"'
)


def _or_ignore(session: Session) -> str:
    return "OR IGNORE" if session.get_bind().dialect.name == "sqlite" else ""
