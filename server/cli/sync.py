"""``rollcall sync NAME``: pull a oneroster_rest connection's upstream and import it; and the
pull and drop-folder options of ``rollcall connection add|set``.

``sync`` runs a delta when the connection has pulled fully before and its full schedule is not
due; ``--full`` forces a full pull (the only kind that deactivates what the upstream dropped).

Same summary and exit codes as ``rollcall import``: 0 applied (or a valid trial run), 1 refused
(row errors, the shrink guard, an upstream that cannot be read), 2 bad invocation (no such
connection, not a pull connection).
"""

from __future__ import annotations

import argparse

from sqlalchemy.orm import Session

from server.cli.imports import _print_report
from server.cli.output import Output
from server.cli.tenant import resolve_tenant
from server.config import load_settings
from server.context import AppContext
from server.db import Connection
from server.db.migrate import upgrade
from server.domain import sources
from server.domain.actors import Actor
from server.errors import NotFound
from server.imports.engine import ImportOptions, ImportRefused
from server.imports.pull import pull, upstream_box


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    sync = sub.add_parser(
        "sync", parents=[common], help="pull a oneroster_rest connection's upstream now"
    )
    sync.add_argument("name", help="the connection")
    sync.add_argument("--dry-run", action="store_true", help="trial run: report, write nothing")
    sync.add_argument("--skip-invalid", action="store_true", help="apply the valid rows only")
    sync.add_argument("--allow-shrink", action="store_true", help="pass the shrink guard")
    sync.add_argument("--full", action="store_true", help="a full pull even if a delta would do")
    sync.set_defaults(handler=sync_connection)


def sync_connection(args: argparse.Namespace, output: Output) -> int:
    context = AppContext.from_settings(load_settings())
    upgrade(context.database.engine)
    try:
        with context.database.session() as session:
            tenant_id = resolve_tenant(session, args.tenant).id
        options = ImportOptions(
            dry_run=args.dry_run,
            skip_invalid=args.skip_invalid,
            allow_shrink=args.allow_shrink,
            mode="full" if args.full else None,
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


# --- pull and drop-folder settings of ``connection add`` and ``connection set`` ---------------


def full_every_hours(text: str) -> int:
    """``--full-every``: hours (``24``, ``12h``) or days (``7d``)."""
    value = text.strip().casefold()
    factor = 24 if value.endswith("d") else 1
    try:
        hours = int(value.rstrip("dh")) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOURS, 12h or 7d.") from None
    if hours < 1:
        raise argparse.ArgumentTypeError("a full pull runs every 1 hour or more.")
    return hours


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The upstream (oneroster_rest) and drop-folder options."""
    parser.add_argument("--upstream", metavar="URL", help="oneroster_rest: the OneRoster API base")
    parser.add_argument(
        "--version", choices=["1.1", "1.2"], help="the upstream's OneRoster version (else detected)"
    )
    parser.add_argument("--token-url", metavar="URL", help="oneroster_rest: the OAuth 2 token URL")
    parser.add_argument(
        "--oauth1", action="store_true", help="sign with OAuth 1.0a (1.1 hubs) instead of a token"
    )
    parser.add_argument("--client-id", help="oneroster_rest: the client id (or consumer key)")
    parser.add_argument(
        "--client-secret-stdin", action="store_true", help="read the upstream client secret"
    )
    parser.add_argument("--every", type=int, metavar="MINUTES", help="pull on this schedule")
    parser.add_argument(
        "--full-every", type=full_every_hours, metavar="HOURS",
        help="a full pull at least this often (24, 12h, 7d; default 24h), deltas in between",
    )  # fmt: skip
    parser.add_argument(
        "--drop-dir", metavar="PATH", help="import each OneRoster zip delivered to this folder"
    )


def source_options_given(args: argparse.Namespace) -> bool:
    """Whether any upstream, schedule or drop-folder option was given."""
    names: tuple[str, ...] = (
        "upstream",
        "version",
        "token_url",
        "oauth1",
        "client_id",
        "client_secret_stdin",
    )
    names += ("every", "full_every", "drop_dir")
    return any(getattr(args, name, None) not in (None, False) for name in names)


def configure_sources(
    args: argparse.Namespace,
    context: AppContext,
    session: Session,
    actor: Actor,
    connection: Connection,
    secret: str | None,
) -> None:
    """Apply the upstream and drop-folder options given (the others keep their stored value).

    :raises InvalidValue: through :func:`~server.domain.sources.set_upstream`.
    """
    stored = (connection.settings or {}).get("upstream") or {}
    upstream_options = (
        args.upstream, args.version, args.token_url, args.oauth1, args.client_id, secret,
        args.every, args.full_every,
    )  # fmt: skip
    if any(option not in (None, False) for option in upstream_options):
        token_url = None if args.oauth1 else (args.token_url or stored.get("token_url"))
        sources.set_upstream(
            session,
            actor,
            connection,
            box=upstream_box(context),
            base_url=args.upstream or stored.get("base_url") or "",
            token_url=token_url,
            client_id=args.client_id or stored.get("client_id") or "",
            client_secret=secret,
            every_minutes=args.every if args.every is not None else stored.get("every_minutes"),
            version=args.version or stored.get("version"),
            full_every_hours=args.full_every or stored.get("full_every_hours"),
        )
    if args.drop_dir is not None:
        root = context.settings.drop_folders
        sources.set_drop_dir(session, actor, connection, args.drop_dir, root=root)
