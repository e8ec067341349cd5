"""Pulling a roster from an upstream OneRoster 1.2 REST API (connections of kind oneroster_rest).

A pull is an import whose file is fetched: it gets an OAuth 2 client-credentials token, walks
the upstream's collections page by page (``limit``/``offset`` until ``X-Total-Count`` or an
empty page), writes each collection as it comes to the CSV files of a OneRoster 1.2 bulk
package in a temporary folder, and runs that package through the import engine
(:func:`~server.imports.engine.import_source`) as the connection. So a pull has everything an
import has: trial run, shrink guard, stored report, SSO guard, ownership, audit.

- **A snapshot.** Records the upstream marks ``tobedeleted`` are left out of the package, so a
  full sync deactivates them here (W201) - under the shrink guard. Enrollments and
  demographics of users (or classes) that are not in the snapshot are left out too.
- **Retries.** Only GETs are retried: on connection errors, 429 and 5xx, with exponential
  back-off, honouring ``Retry-After``, bounded attempts and a bounded total wait; a 401 during
  the walk fetches a new token once (see ``server/imports/upstream.py``).
- **Failures.** An unreachable upstream, refused credentials or a malformed answer end the pull
  with a stored report of status ``failed`` (code F004) and a clear summary; nothing is written.
- **Memory.** Pages are written to the CSV files as they arrive; only the sourcedIds of the
  users and classes in the snapshot are kept (to filter enrollments and demographics).

Example::

    report = pull(context, tenant_id, "District SIS", ImportOptions(dry_run=True))
    report.summary   # "Trial run, nothing written: 64 created, ..."
"""

from __future__ import annotations

import csv
import logging
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import select
from sqlalchemy.orm import Session

from oneroster import rest_rows
from oneroster.csv_files import HEADERS, MANIFEST_VERSION, OTHER_FILES
from server.context import AppContext
from server.db import Connection, ConnectionKind, Job, utcnow
from server.domain import jobs
from server.domain.connections import (
    UPSTREAM_PURPOSE,
    get_connection,
    record_sync,
    scheduled_connections,
    upstream_of,
)
from server.domain.secrets import SecretBox
from server.imports.cells import neutralise
from server.imports.engine import ImportOptions, ImportRefused, import_source
from server.imports.oneroster import OneRosterSource
from server.imports.report import Report, RunStatus, store_report
from server.imports.upstream import (
    UPSTREAM_FAILED,
    Forbidden,
    RetryPolicy,
    UpstreamClient,
    UpstreamError,
)

log = logging.getLogger("rollcall.pull")

FORMAT = "oneroster-1.2-rest"
SYNC_JOB = "sync"
WALK = ("orgs", "academicSessions", "courses", "classes", "users", "demographics", "enrollments")
OPTIONAL = ("demographics",)  # a client without the scope gets 403: the file is left out


def upstream_box(context: AppContext) -> SecretBox:
    return SecretBox(context.settings.secret_key, UPSTREAM_PURPOSE)


# --- the package ----------------------------------------------------------------------------


def _neutralised(row: dict[str, Any]) -> dict[str, Any]:
    """The snapshot is read back by the importer, which restores neutralised cells."""
    return {key: neutralise(value) for key, value in row.items()}


def fetch_package(client: UpstreamClient, folder: Path) -> list[tuple[str, str]]:
    """Walk the upstream into a OneRoster 1.2 bulk package in ``folder``; returns warnings.

    :raises UpstreamError: the upstream cannot be read (a 401/403 on a required collection too).
    """
    headers = HEADERS["1.2"]
    warnings: list[tuple[str, str]] = []
    written: list[str] = []
    users: set[str] = set()
    classes: set[str] = set()
    for collection in WALK:
        name = rest_rows.COLLECTIONS[collection][1]
        files = [name, "roles.csv"] if collection == "users" else [name]
        handles = {f: (folder / f).open("w", encoding="utf-8", newline="") for f in files}
        try:
            writers = {
                f: csv.DictWriter(h, headers[f], extrasaction="ignore", lineterminator="\r\n")
                for f, h in handles.items()
            }
            for writer in writers.values():
                writer.writeheader()
            convert = rest_rows.CONVERTERS[name]
            for obj in client.walk(collection):
                if not rest_rows.is_active(obj):
                    continue
                row = convert(obj)
                if collection == "users":
                    users.add(row["sourcedId"])
                    writers["roles.csv"].writerows(
                        _neutralised(role) for role in rest_rows.role_rows(obj)
                    )
                elif collection == "classes":
                    classes.add(row["sourcedId"])
                elif not _in_snapshot(collection, row, users, classes):
                    continue
                writers[name].writerow(_neutralised(row))
        except Forbidden as refused:
            if refused.collection not in OPTIONAL:
                raise UpstreamError(
                    f"The upstream refused to list {refused.collection} (HTTP {refused.status}): "
                    "the client needs the roster-core scope."
                ) from None
            warnings.append((name, f"the upstream client may not read {collection}: left out"))
            files = []
        finally:
            for handle in handles.values():
                handle.close()
        written += files
    _write_manifest(folder, written, client.base_url)
    return warnings


def _in_snapshot(collection: str, row: dict[str, Any], users: set[str], classes: set[str]) -> bool:
    """False for demographics or enrollments of users (or classes) the snapshot left out."""
    if collection == "demographics":
        return row["sourcedId"] in users
    if collection == "enrollments":
        return row["userSourcedId"] in users and row["classSourcedId"] in classes
    return True


def _write_manifest(folder: Path, files: list[str], source: str) -> None:
    with (folder / "manifest.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(["propertyName", "value"])
        writer.writerow(["manifest.version", MANIFEST_VERSION])
        writer.writerow(["oneroster.version", "1.2"])
        for name in sorted(set(HEADERS["1.2"]) | set(OTHER_FILES)):
            writer.writerow([f"file.{name[:-4]}", "bulk" if name in files else "absent"])
        writer.writerow(["source.systemName", source[:200]])
        writer.writerow(["source.systemCode", ""])


# --- the pull -------------------------------------------------------------------------------


def pull(
    context: AppContext,
    tenant_id: str,
    connection_name: str,
    options: ImportOptions,
    *,
    actor_name: str | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Pull the connection's upstream and import it; returns the stored report.

    An upstream failure gives a stored report of status ``failed`` (nothing written).

    :raises NotFound: no such connection. :raises ImportRefused: not a pull connection, or one
        without an upstream.
    """
    database = context.database
    with database.session() as session:
        connection = get_connection(session, tenant_id, connection_name)
        if connection.kind != ConnectionKind.ONEROSTER_REST:
            raise ImportRefused(
                f"{connection.name} is a {connection.kind} connection; only oneroster_rest "
                "connections pull (import files with rollcall import)."
            )
        try:
            upstream = upstream_of(connection, upstream_box(context))
        except InvalidTag:
            raise ImportRefused(
                f"The client secret of {connection.name} cannot be decrypted (the server's "
                "secret key changed): set the upstream again."
            ) from None
        if upstream is None:
            raise ImportRefused(f"{connection.name} has no upstream to pull from.")
        connection_id, name = connection.id, connection.name
    client = UpstreamClient(
        upstream.base_url,
        upstream.token_url,
        upstream.client_id,
        upstream.client_secret,
        policy or RetryPolicy(),
        sleep=sleep,
        limits=context.settings.import_limits,
    )
    with tempfile.TemporaryDirectory(prefix="rollcall-pull-") as folder:
        try:
            warnings = fetch_package(client, Path(folder))
        except UpstreamError as error:
            return _failed(
                context,
                tenant_id,
                connection_id,
                name,
                upstream.base_url,
                options,
                error,
                actor_name,
            )
        finally:
            client.close()
        source = OneRosterSource(folder, limits=context.settings.import_limits)
        source.source_name = upstream.base_url
        source.format = FORMAT
        try:
            for file, message in warnings:
                source.warnings.append((file, message))
            report = import_source(
                database,
                context.box,
                tenant_id,
                connection_id,
                source,
                options,
                actor_name=actor_name,
            )
        finally:
            source.close()
    if not options.dry_run and report.status != RunStatus.APPLIED:
        # the engine records applied runs; a refused one is recorded too, so a schedule
        # waits its interval before trying again
        with database.session() as session:
            record_sync(session, connection_id, report.summary)
    return report


def _failed(
    context: AppContext,
    tenant_id: str,
    connection_id: str,
    name: str,
    source: str,
    options: ImportOptions,
    error: UpstreamError,
    actor_name: str | None,
) -> Report:
    report = Report(
        format=FORMAT,
        mode=options.mode or "full",
        dry_run=options.dry_run,
        connection_name=name,
        source_name=source,
    )
    report.fail(error.code or UPSTREAM_FAILED, error.message, None)
    report.status = RunStatus.FAILED
    report.summary = f"Refused, nothing written: {error.message}"
    report.finished_at = utcnow()
    with context.database.session() as session:
        store_report(
            session,
            report,
            tenant_id=tenant_id,
            connection_id=connection_id,
            actor_name=actor_name or name,
        )
        if not options.dry_run:
            record_sync(session, connection_id, report.summary)
    log.warning("pull failed", extra={"run_id": report.id, "connection": name})
    return report


# --- the schedule ---------------------------------------------------------------------------


def sync_runner(context: AppContext) -> jobs.Standalone:
    """The job runner for ``sync``: pulls the connection named in the payload (in its own
    units of work, outside the queue's session)."""

    def run(payload: dict[str, Any]) -> None:
        report = pull(
            context,
            payload["tenant_id"],
            payload["connection"],
            ImportOptions(),
            actor_name="schedule",
        )
        report.close()

    return jobs.Standalone(run)


def enqueue_due_syncs(session: Session, now: datetime | None = None) -> int:
    """Queue a sync for every scheduled connection that is due; returns how many were queued.

    A connection is due when its last sync is older than its schedule. The job table is the
    lock: nothing is queued while a queued or running sync of that connection exists, so
    several processes polling at once do not pile up jobs.
    """
    now = now or utcnow()
    queued = 0
    for connection in scheduled_connections(session):
        every = int(connection.settings["upstream"]["every_minutes"])
        last = connection.last_sync_at
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        if last is not None and now - last < timedelta(minutes=every):
            continue
        if session.get_bind().dialect.name == "postgresql":
            # one process at a time decides for a connection; the others skip it this poll
            locked = session.scalars(
                select(Connection.id)
                .where(Connection.id == connection.id)
                .with_for_update(skip_locked=True)
            ).first()
            if locked is None:
                continue
        pending = session.scalars(
            select(Job.id).where(
                Job.kind == SYNC_JOB,
                Job.status.in_(("queued", "running")),
                Job.tenant_id == connection.tenant_id,
                Job.payload["connection_id"].as_string() == connection.id,
            )
        ).first()
        if pending is not None:
            continue
        jobs.enqueue(
            session,
            SYNC_JOB,
            {
                "tenant_id": connection.tenant_id,
                "connection": connection.name,
                "connection_id": connection.id,
            },
            tenant_id=connection.tenant_id,
            max_attempts=1,
        )
        queued += 1
    return queued
