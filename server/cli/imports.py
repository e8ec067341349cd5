"""``rollcall import`` and ``rollcall export``: files in and out, with a progress bar.

Exit codes: 0 applied (or a valid trial run), 1 refused with errors (or an invalid trial
run), 2 bad invocation (no such file, unknown school, a school CSV without a school).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select

from server.cli.commands import resolve_tenant
from server.cli.output import Output
from server.config import load_settings
from server.context import AppContext
from server.db import ImportRun
from server.db.migrate import upgrade
from server.domain.actors import system_actor
from server.domain.import_runs import Report, load_run, run_as_dict
from server.domain.schools import resolve_school_ids
from server.errors import DomainError
from server.imports import exports
from server.imports.engine import ImportOptions, ImportRefused, run_import
from server.imports.school_csv import template

SHOWN_ROWS = 50


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
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
        options = ImportOptions(
            mode=args.mode,
            school_sourced_ids=tuple(args.school),
            dry_run=args.dry_run,
            skip_invalid=args.skip_invalid,
            allow_shrink=args.allow_shrink,
            lenient=not args.strict,
            limits=context.settings.import_limits,
        )
        show_progress = not args.json and sys.stderr.isatty()
        try:
            if show_progress:
                with Progress(
                    SpinnerColumn(),
                    TextColumn("[bold]{task.description}"),
                    TextColumn("{task.completed} rows"),
                    TimeElapsedColumn(),
                    transient=True,
                    console=output.errors,
                ) as bar:
                    task = bar.add_task("Trial run" if args.dry_run else "Importing", total=None)
                    report = run_import(
                        context.database,
                        context.box,
                        tenant_id,
                        args.connection,
                        path,
                        options,
                        actor_name="cli",
                        progress=lambda done: bar.update(task, completed=done),
                    )
            else:
                report = run_import(
                    context.database,
                    context.box,
                    tenant_id,
                    args.connection,
                    path,
                    options,
                    actor_name="cli",
                )
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
            return 0 if report.ok else 1
        finally:
            report.close()
    finally:
        context.database.dispose()


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
                    .order_by(ImportRun.started_at.desc())
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
