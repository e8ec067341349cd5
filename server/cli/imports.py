"""``rollcall import`` and ``rollcall export``: files in and out, with a progress bar.

Exit codes: 0 applied (or a valid trial run), 1 refused with errors (or an invalid trial
run), 2 bad invocation (no such file, unknown school, a school CSV without a school).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select

from server.cli.output import Output
from server.cli.tenant import resolve_tenant
from server.config import load_settings
from server.context import AppContext
from server.db import ImportRun
from server.db.migrate import upgrade
from server.domain.actors import system_actor
from server.domain.connections import get_connection
from server.domain.import_runs import Report, RunStatus, load_run, run_as_dict
from server.domain.schools import resolve_school_ids
from server.errors import DomainError, Interrupted
from server.imports import exports
from server.imports.background import ImportJob, run_started, start_run
from server.imports.engine import ImportOptions, ImportRefused
from server.imports.school_csv import template
from server.shutdown import Shutdown

SHOWN_ROWS = 50


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    imp = sub.add_parser(
        "import", parents=[common], help="import a OneRoster CSV package or a school CSV/XLSX"
    )
    imp.add_argument("path", nargs="?", help="a .zip package (or folder), a .csv or .xlsx file")
    imp.add_argument("--connection", metavar="NAME", help="the connection that owns the records")
    imp.add_argument("--mode", choices=["full", "delta"], help="default: the manifest's / delta")
    imp.add_argument("--school", action="append", default=[], metavar="SOURCED_ID")
    imp.add_argument("--dry-run", action="store_true", help="trial run: report, write nothing")
    imp.add_argument("--skip-invalid", action="store_true", help="apply the valid rows only")
    imp.add_argument("--allow-shrink", action="store_true", help="pass the shrink guard")
    imp.add_argument("--strict", action="store_true", help="refuse lenient repairs (W203)")
    imp.add_argument("--template", action="store_true", help="print the school CSV template")
    imp.set_defaults(handler=import_file)

    runs = sub.add_parser(
        "import-report", parents=[common], help="list stored import runs, or show one"
    )
    runs.add_argument("run_id", nargs="?", help="the run to show (default: list recent runs)")
    runs.add_argument("--limit", type=int, default=SHOWN_ROWS, help="rows to show")
    runs.set_defaults(handler=import_report)

    exp = sub.add_parser("export", parents=[common], help="export rosters to a file")
    exp.add_argument("--format", required=True, choices=list(exports.FORMATS))
    exp.add_argument("--out", required=True, metavar="PATH")
    exp.add_argument("--school", action="append", default=[], metavar="SOURCED_ID")
    exp.set_defaults(handler=export_file)


def import_file(args: argparse.Namespace, output: Output) -> int:
    if args.template:
        sys.stdout.write(template())
        return 0
    if not args.path or not args.connection:
        output.error("import needs PATH and --connection NAME (or --template).")
        return 2
    path = Path(args.path)
    if not path.exists():
        output.error(f"No such file: {args.path}.")
        return 2
    context = AppContext.from_settings(load_settings())
    upgrade(context.database.engine)
    try:
        with context.database.session() as session:
            tenant_id = resolve_tenant(session, args.tenant).id
            connection_id = get_connection(session, tenant_id, args.connection).id
        options = ImportOptions(
            mode=args.mode,
            school_sourced_ids=tuple(args.school),
            dry_run=args.dry_run,
            skip_invalid=args.skip_invalid,
            allow_shrink=args.allow_shrink,
            lenient=not args.strict,
            limits=context.settings.import_limits,
        )
        job = ImportJob(tenant_id, connection_id, path, None, options, "cli")
        try:
            with _stopped_by_signals() as stop:
                report = _run_with_progress(context, job, stop, args, output)
        except (Interrupted, KeyboardInterrupt) as stopped:
            reason = stopped.reason if isinstance(stopped, Interrupted) else "a second signal"
            output.error(f"Interrupted by {reason}: nothing was written.")
            return 128 + (stop.signal_number or signal.SIGINT)
        except ImportRefused as error:
            output.error(error.message)
            return 2
        except DomainError as error:
            if error.field == "school":
                output.error(error.message)
                return 2
            raise
        try:
            _print_report(output, report)
            if report.status == RunStatus.INTERRUPTED:
                return 128 + stop.signal_number
            return 0 if report.ok else 1
        finally:
            report.close()
    finally:
        context.database.dispose()


class _SignalStop(Shutdown):
    """A CLI import's stop: SIGTERM or SIGINT (Ctrl-C) interrupts it at its next batch."""

    signal_number = 0


@contextmanager
def _stopped_by_signals() -> Iterator[_SignalStop]:
    """While the block runs, SIGTERM and SIGINT stop the import (rolled back, its run recorded
    as interrupted: issue 13) instead of killing the process mid-write."""
    stop = _SignalStop(0)
    names = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C (SIGINT)"}

    def handler(number: int, _frame: FrameType | None) -> None:
        if stop.stopping:  # a second signal: stop now, wherever the import waits
            raise KeyboardInterrupt
        stop.signal_number = number
        stop.begin(names[signal.Signals(number)])

    previous = {number: signal.signal(number, handler) for number in names}
    try:
        yield stop
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def _run_with_progress(
    context: AppContext, job: ImportJob, stop: Shutdown, args: argparse.Namespace, output: Output
) -> Report:
    """Record the run, then import with a progress bar on a terminal."""
    run_id = start_run(context, job.tenant_id, job.connection_id, job.actor_name, job.options)
    if args.json or not sys.stderr.isatty():
        return run_started(context, job, run_id, stop.check)
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed} rows"),
        TimeElapsedColumn(),
        transient=True,
        console=output.errors,
    ) as bar:
        task = bar.add_task("Trial run" if args.dry_run else "Importing", total=None)

        def progress(done: int) -> None:
            stop.check(done)
            bar.update(task, completed=done)

        return run_started(context, job, run_id, progress)


def _print_report(output: Output, report: Report) -> None:
    if output.as_json:
        output.result(report.as_dict())
        return
    console = output.console
    table = Table(title=f"Import {report.format} ({report.mode}) as {report.connection_name}")
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    for name, count in report.counts()["outcomes"].items():
        table.add_row(name, str(count))
    for code, count in report.codes.items():
        table.add_row(f"code {code}", str(count))
    console.print(table)
    shown = 0
    for row in report.rows():
        if row["outcome"] in ("unchanged", "created", "updated") and not row["code"]:
            continue
        if shown == 0:
            console.print("[bold]Rows to look at:[/bold]")
        if shown >= SHOWN_ROWS:
            console.print(f"… and more: see --json or the stored run {report.id}.")
            break
        where = f"{row['file'] or ''}:{row['row'] or '-'}"
        console.print(
            f"  {where} {row['key'] or ''} {row['outcome']} {row['code'] or ''} "
            f"{row['message'] or ''}".rstrip()
        )
        shown += 1
    for warning in report.warnings:
        console.print(f"[yellow]warning[/yellow] {warning['file']}: {warning['message']}")
    style = "green" if report.ok else "red"
    console.print(f"[{style}]{report.summary}[/{style}] (run {report.id})")
    for hint in option_hints(report):
        console.print(hint)


def option_hints(report: Report) -> list[str]:
    """The options that let a refused run through (the summary itself names none: the staff
    app shows it too)."""
    hints = []
    if report.errors and not report.ok:
        hints.append("Run again with --skip-invalid to apply only the rows without errors.")
    if report.shrink.get("tripped") and not report.shrink.get("allowed"):
        hints.append("Run again with --allow-shrink to deactivate that many accounts.")
    return hints


def import_report(args: argparse.Namespace, output: Output) -> int:
    context = AppContext.from_settings(load_settings())
    upgrade(context.database.engine)
    try:
        with context.database.session() as session:
            tenant = resolve_tenant(session, args.tenant)
            if not args.run_id:
                runs = session.scalars(
                    select(ImportRun)
                    .where(ImportRun.tenant_id == tenant.id)
                    .order_by(ImportRun.started_at.desc(), ImportRun.id.desc())
                    .limit(50)
                )
                rows = [
                    {
                        "id": run.id,
                        "started_at": run.started_at.isoformat(timespec="seconds"),
                        "format": run.format,
                        "mode": run.mode,
                        "dry_run": run.dry_run,
                        "status": run.status,
                        "summary": run.summary,
                    }
                    for run in runs
                ]
                output.table(rows, ["id", "started_at", "format", "status", "summary"], "Runs")
                return 0
            run = load_run(session, tenant.id, args.run_id)
            if run is None:
                output.error(f"No import run {args.run_id!r}.")
                return 1
            body = run_as_dict(session, run, row_limit=args.limit)
        if output.as_json:
            output.result(body)
            return 0
        output.console.print(f"[bold]{body['format']} {body['mode']}[/bold] {body['summary']}")
        output.table(
            body["row_results"], ["file", "row", "key", "outcome", "code", "message"], "Rows"
        )
        return 0
    finally:
        context.database.dispose()


def export_file(args: argparse.Namespace, output: Output) -> int:
    context = AppContext.from_settings(load_settings())
    upgrade(context.database.engine)
    try:
        with context.database.session() as session:
            tenant = resolve_tenant(session, args.tenant)
            actor = system_actor(tenant.id, "cli")
            school_ids = resolve_school_ids(session, tenant.id, args.school)
            count = exports.export(
                session, actor, context.box, args.format, args.out, school_ids=school_ids
            )
        output.result(
            {"format": args.format, "out": args.out, "users": count},
            f"Exported {count} user(s) as {args.format} to {args.out}.",
        )
        return 0
    finally:
        context.database.dispose()
