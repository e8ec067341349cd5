"""Pulling a roster from an upstream OneRoster 1.1 or 1.2 REST API (connections of kind
oneroster_rest).

A pull is an import whose file is fetched: it signs in (an OAuth 2 client-credentials token,
or OAuth 1.0a signatures for a 1.1 hub), walks the upstream's collections page by page
(``limit``/``offset`` until ``X-Total-Count`` or an empty page), writes each collection as it
comes to the CSV files of a OneRoster 1.2 package in a temporary folder (1.1 users put in the
1.2 shape first, ``oneroster/rest_rows.py``), and runs that package through the import engine
(:func:`~server.imports.engine.import_source`) as the connection. So a pull has everything an
import has: trial run, shrink guard, stored report, SSO guard, ownership, audit.

- **Full or delta.** The first pull and every pull whose last full one is older than the
  connection's ``full_every_hours`` is full: a bulk snapshot. Records the upstream marks
  ``tobedeleted`` are left out, so it deactivates them and whatever vanished (W201) - under the
  shrink guard. Enrollments and demographics of users (or classes) that are not in the
  snapshot are left out too. The others ask only for ``dateLastModified>'high-water'`` and apply
  a delta package (``tobedeleted`` rows deactivate). Only an applied pull moves the mark.
- **Retries.** Only GETs are retried: on connection errors, 429 and 5xx, with exponential
  back-off, honouring ``Retry-After``, bounded attempts and a bounded total wait; a 401 during
  the walk fetches a new token once (see ``server/imports/upstream.py``).
- **Failures.** An unreachable upstream, refused credentials or a malformed answer end the pull
  with a stored report of status ``failed`` (code F004) and a clear summary; nothing is written.
- **Memory.** Pages are written to the CSV files as they arrive; only the sourcedIds of the
  users and classes in the snapshot are kept (to filter enrollments and demographics).

Example::

    report = pull(context, tenant_id, "District hub", ImportOptions(dry_run=True))
    report.summary   # "Trial run, nothing written: 64 created, ..."
"""

from __future__ import annotations

import csv
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import select
from sqlalchemy.orm import Session

from oneroster import rest_rows
from oneroster.csv_files import HEADERS, MANIFEST_VERSION, OTHER_FILES
from oneroster.render import timestamp
from server.context import AppContext
from server.db import Connection, ConnectionKind, Job, utcnow
from server.domain import jobs, leases
from server.domain.cells import neutralise
from server.domain.connections import get_connection
from server.domain.import_runs import Report, RunStatus, store_report
from server.domain.leases import pull_lease
from server.domain.secrets import SecretBox
from server.domain.sources import (
    UPSTREAM_PURPOSE,
    PullState,
    Upstream,
    lock_for_scheduling,
    pull_state,
    record_pull,
    record_sync,
    scheduled_connections,
    upstream_of,
)
from server.errors import Interrupted
from server.imports.background import record_failure, start_run
from server.imports.engine import ImportOptions, ImportRefused, import_source
from server.imports.oneroster_csv import OneRosterSource
from server.imports.upstream import (
    UPSTREAM_FAILED,
    Forbidden,
    RetryPolicy,
    UpstreamClient,
    UpstreamError,
    detect_version,
)
from server.shutdown import Shutdown

log = logging.getLogger("rollcall.pull")

SYNC_JOB = "sync"
WALK = ("orgs", "academicSessions", "courses", "classes", "users", "demographics", "enrollments")
OPTIONAL = ("demographics",)  # a client without the scope gets 403: the file is left out


def upstream_box(context: AppContext) -> SecretBox:
    return SecretBox(context.settings.secret_keys, UPSTREAM_PURPOSE)


# --- the package ----------------------------------------------------------------------------


def _neutralised(row: dict[str, Any]) -> dict[str, Any]:
    """The snapshot is read back by the importer, which restores neutralised cells."""
    return {key: neutralise(value) for key, value in row.items()}


@dataclass
class Walked:
    """What a walk of the upstream wrote: warnings, the newest ``dateLastModified`` seen, and
    "1.1" when the users came in the 1.1 shape."""

    warnings: list[tuple[str, str]] = field(default_factory=list)
    newest: datetime | None = None
    version: str | None = None

    def saw(self, collection: str, obj: dict[str, Any]) -> None:
        modified = parse_moment(obj.get("dateLastModified"))
        if modified is not None and (self.newest is None or modified > self.newest):
            self.newest = modified
        if self.version is None and collection == "users":
            self.version = "1.1" if rest_rows.is_v1p1(collection, obj) else "1.2"

    def high_water(self, started: datetime | None) -> str | None:
        """The mark the next delta asks after: the newest ``dateLastModified`` seen, but never
        later than the upstream's clock when the walk began (its ``Date`` header), so a record
        changed while the walk ran is asked for again rather than missed."""
        if self.newest is None:
            return None
        mark = min(self.newest, started) if started is not None else self.newest
        return timestamp(mark)


def parse_moment(value: Any) -> datetime | None:
    """An ISO 8601 ``dateLastModified`` as an aware datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def fetch_package(
    client: UpstreamClient,
    folder: Path,
    *,
    delta: bool = False,
    check: Callable[[int], None] | None = None,
) -> Walked:
    """Walk the upstream into a OneRoster 1.2 package in ``folder`` (bulk, or delta with each
    record's ``status`` and ``dateLastModified`` when ``delta``); ``check`` is called before
    each record (it raises to stop the walk: a shutdown).

    :raises UpstreamError: the upstream cannot be read (a 401/403 on a required collection too).
    """
    headers = HEADERS["1.2"]
    walked = Walked()
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
                if check is not None:
                    check(0)
                walked.saw(collection, obj)
                if not delta and not rest_rows.is_active(obj):
                    continue
                obj = rest_rows.as_v1p2(collection, obj)
                stamp = _delta_columns(obj) if delta else {}
                row = {**convert(obj), **stamp}
                if collection == "users":
                    users.add(row["sourcedId"])
                    roles = [_neutralised({**r, **stamp}) for r in rest_rows.role_rows(obj)]
                    writers["roles.csv"].writerows(roles)
                elif collection == "classes":
                    classes.add(row["sourcedId"])
                elif not delta and not _in_snapshot(collection, row, users, classes):
                    continue
                writers[name].writerow(_neutralised(row))
        except Forbidden as refused:
            if refused.collection not in OPTIONAL:
                raise UpstreamError(
                    f"The upstream refused to list {refused.collection} (HTTP {refused.status}): "
                    "the client needs the roster-core scope."
                ) from None
            walked.warnings.append(
                (name, f"the upstream client may not read {collection}: left out")
            )
            files = []
        finally:
            for handle in handles.values():
                handle.close()
        written += files
    _write_manifest(folder, written, client.base_url, "delta" if delta else "bulk")
    return walked


def _delta_columns(obj: dict[str, Any]) -> dict[str, str]:
    """``status`` and ``dateLastModified`` of a delta row (1.1's ``inactive`` is tobedeleted)."""
    status = "active" if rest_rows.is_active(obj) else "tobedeleted"
    return {"status": status, "dateLastModified": str(obj.get("dateLastModified") or "")}


def _in_snapshot(collection: str, row: dict[str, Any], users: set[str], classes: set[str]) -> bool:
    """False for demographics or enrollments of users (or classes) the snapshot left out."""
    if collection == "demographics":
        return row["sourcedId"] in users
    if collection == "enrollments":
        return row["userSourcedId"] in users and row["classSourcedId"] in classes
    return True


def _write_manifest(folder: Path, files: list[str], source: str, mode: str) -> None:
    with (folder / "manifest.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(["propertyName", "value"])
        writer.writerow(["manifest.version", MANIFEST_VERSION])
        writer.writerow(["oneroster.version", "1.2"])
        for name in sorted(set(HEADERS["1.2"]) | set(OTHER_FILES)):
            writer.writerow([f"file.{name[:-4]}", mode if name in files else "absent"])
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
    stop: Shutdown | None = None,
) -> Report:
    """Pull the connection's upstream and import it; returns the stored report.

    The run is recorded as ``running`` (leased to this process) before the walk begins. When
    ``stop``'s grace period ends, the walk stops at its next record or back-off wait, the
    import at its next batch: nothing is written and the run is recorded as interrupted
    (:raises Interrupted:).

    The first pull, a pull whose last full one is older than the upstream's
    ``full_every_hours`` and a pull with ``options.mode == "full"`` walk everything (a bulk
    import, which deactivates what the upstream dropped); the others ask only for what changed
    after the last applied pull's high-water mark (``filter=dateLastModified>'…'``) and apply
    it as a delta. An upstream failure gives a stored report of status ``failed``.

    :raises NotFound: no such connection. :raises ImportRefused: not a pull connection, or one
        without an upstream. :raises Conflict: another process is pulling this connection now
        (one walk of an upstream at a time: ``server/domain/leases.py``).
    """
    database = context.database
    with database.session() as session:
        connection = get_connection(session, tenant_id, connection_name)
        upstream = _upstream(context, connection)
        state = pull_state(connection)
        connection_id, name = connection.id, connection.name
    delta = options.mode != "full" and not state.needs_full(upstream, utcnow())
    options = replace(options, mode="delta" if delta else "full")
    settings = context.settings
    with pull_lease(
        database, connection_id, lease=settings.job_lease, interval=settings.job_heartbeat
    ):
        run_id = start_run(
            context, tenant_id, connection_id, actor_name or name, options, _format(upstream, None)
        )
        try:
            with leases.run_heartbeat(database, run_id):
                return _walk_and_import(
                    context, tenant_id, connection_id, name, upstream, state, options,
                    actor_name, policy, stop.sleep if stop else sleep, run_id,
                    stop.check if stop else _go_on,
                )  # fmt: skip
        except BaseException as error:
            record_failure(context, run_id, error)
            raise


def _go_on(done: int = 0) -> None:
    """The check of a pull nobody stops (``rollcall sync``)."""


def _walk_and_import(
    context: AppContext,
    tenant_id: str,
    connection_id: str,
    name: str,
    upstream: Upstream,
    state: PullState,
    options: ImportOptions,
    actor_name: str | None,
    policy: RetryPolicy | None,
    sleep: Callable[[float], None],
    run_id: str,
    check: Callable[[int], None],
) -> Report:
    """The pull itself, under the connection's pull lease, completing the run ``run_id``."""
    database = context.database
    delta = options.mode == "delta"
    client = UpstreamClient(
        upstream.base_url,
        upstream.token_url,
        upstream.client_id,
        upstream.client_secret,
        policy or RetryPolicy(),
        sleep=sleep,
        since=state.high_water if delta else None,
        limits=context.settings.import_limits,
    )
    with tempfile.TemporaryDirectory(prefix="rollcall-pull-") as folder:
        try:
            found = client.find_base(upstream.version)
            walked = fetch_package(client, Path(folder), delta=delta, check=check)
        except UpstreamError as error:
            return _failed(
                context, tenant_id, connection_id, name, upstream, options, error, actor_name,
                run_id,
            )  # fmt: skip
        finally:
            client.close()
        source = OneRosterSource(folder, limits=context.settings.import_limits)
        source.source_name = client.base_url
        source.format = _format(upstream, found or walked.version)
        try:
            for file, message in walked.warnings:
                source.warnings.append((file, message))
            report = import_source(
                database, context.box, tenant_id, connection_id, source, options,
                actor_name=actor_name, progress=check, run_id=run_id,
            )  # fmt: skip
        finally:
            source.close()
    if report.status == RunStatus.INTERRUPTED:  # stored as such; the job is queued again
        report.close()
        raise Interrupted()
    if not options.dry_run:
        with database.session() as session:
            if report.status == RunStatus.APPLIED:
                mark = walked.high_water(client.started_at)
                record_pull(session, connection_id, high_water=mark, full=not delta)
            else:
                # the engine records applied runs; a refused one is recorded too, so a
                # schedule waits its interval before trying again
                record_sync(session, connection_id, report.summary)
    return report


def _upstream(context: AppContext, connection: Connection) -> Upstream:
    """The connection's upstream, unsealed. :raises ImportRefused:"""
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
    return upstream


def _format(upstream: Upstream, seen: str | None) -> str:
    """``oneroster-1.1-rest`` or ``oneroster-1.2-rest``: the version set on the connection, else
    the one its URL names or probing found, else the shape of the users it served."""
    version = upstream.version or detect_version(upstream.base_url) or seen or "1.2"
    return f"oneroster-{version}-rest"


def _failed(
    context: AppContext,
    tenant_id: str,
    connection_id: str,
    name: str,
    upstream: Upstream,
    options: ImportOptions,
    error: UpstreamError,
    actor_name: str | None,
    run_id: str,
) -> Report:
    source = upstream.base_url
    report = Report(
        id=run_id,
        format=_format(upstream, None),
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


class SyncRefused(Exception):
    """A scheduled pull that ran but was refused or failed (shrink guard, upstream errors)."""


def sync_runner(context: AppContext, stop: Shutdown | None = None) -> jobs.Standalone:
    """The job runner for ``sync``: pulls the connection named in the payload (in its own
    units of work, outside the queue's session); ``stop`` interrupts it (a shutdown)."""

    def run(payload: dict[str, Any]) -> None:
        report = pull(
            context,
            payload["tenant_id"],
            payload["connection"],
            ImportOptions(),
            actor_name="schedule",
            stop=stop,
        )
        report.close()
        if report.status not in RunStatus.OK:
            # not "done": the job fails with the report's reason, which the worker logs
            raise SyncRefused(f"{payload['connection']}: {report.summary}")

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
        if not lock_for_scheduling(session, connection.id):
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
        jobs.enqueue_for_connection(session, SYNC_JOB, connection)
        queued += 1
    return queued
