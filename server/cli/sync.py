"""``rollcall sync NAME``: pull a oneroster_rest connection's upstream and import it.

Same summary and exit codes as ``rollcall import``: 0 applied (or a valid trial run), 1 refused
(row errors, the shrink guard, an upstream that cannot be read), 2 bad invocation (no such
connection, not a pull connection).
"""

from __future__ import annotations

import argparse

from server.cli.commands import resolve_tenant
from server.cli.imports import _print_report
from server.cli.output import Output
from server.config import load_settings
from server.context import AppContext
from server.db.migrate import upgrade
from server.errors import NotFound
from server.imports.engine import ImportOptions, ImportRefused
from server.imports.pull import pull


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sync = sub.add_parser(
        "sync", parents=[common], help="pull a oneroster_rest connection's upstream now"
    )
    sync.add_argument("name", help="the connection")
    sync.add_argument("--dry-run", action="store_true", help="trial run: report, write nothing")
    sync.add_argument("--skip-invalid", action="store_true", help="apply the valid rows only")
    sync.add_argument("--allow-shrink", action="store_true", help="pass the shrink guard")
    sync.set_defaults(handler=sync_connection)


def sync_connection(args: argparse.Namespace, output: Output) -> int:
    context = AppContext.from_settings(load_settings())
    upgrade(context.database.engine)
    try:
        with context.database.session() as session:
            tenant_id = resolve_tenant(session, args.tenant).id
        options = ImportOptions(
            dry_run=args.dry_run, skip_invalid=args.skip_invalid, allow_shrink=args.allow_shrink
        )
        try:
            report = pull(context, tenant_id, args.name, options, actor_name="cli")
        except (ImportRefused, NotFound) as error:
            output.error(error.message)
            return 2
        try:
            _print_report(output, report)
            return 0 if report.ok else 1
        finally:
            report.close()
    finally:
        context.database.dispose()
