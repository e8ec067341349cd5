"""``rollcall``: set-up and operations from the command line.

Every command takes ``--json`` for scripts; bad input prints a clear error and exits non-zero
(1 for a refused action, 2 for a bad invocation). Commands acting inside a tenant take
``--tenant NAME`` (default: the first tenant, created on first run).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Sequence

from sqlalchemy.exc import OperationalError

from server.cli import (
    commands,
    imports,
    oauth1_secrets,
    oauth_commands,
    operations,
    schools,
    sync,
    upstream_commands,
)
from server.cli.output import Output
from server.db.session import unavailable_reason
from server.errors import DatabaseUnavailable, DomainError

Handler = Callable[[argparse.Namespace, Output], int]


def global_options(defaults: bool) -> argparse.ArgumentParser:
    """``--json`` and ``--tenant``, accepted before the command and after it.

    Only the top-level parser sets their defaults: a subcommand's parser copies every value it
    holds over the top-level ones, so its copies must hold none unless the option is given
    there (``argparse.SUPPRESS``). ``rollcall --tenant X import`` then means
    ``rollcall import --tenant X``.
    """
    json_default = False if defaults else argparse.SUPPRESS
    tenant_default = None if defaults else argparse.SUPPRESS
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--json", action="store_true", default=json_default, help="print machine-readable JSON"
    )
    options.add_argument(
        "--tenant", default=tenant_default, help="tenant name (default: the first tenant)"
    )
    return options


def default_options(parser: argparse.ArgumentParser) -> None:
    """What a pushed user without a role or school gets (issue 10, defect 4)."""
    parser.add_argument(
        "--default-role", metavar="ROLE", help="role of pushed users sent without one ('' clears)"
    )
    parser.add_argument(
        "--default-school",
        metavar="SOURCED_ID",
        help="school of pushed users sent without one ('' clears)",
    )


def build_parser() -> argparse.ArgumentParser:
    common = global_options(defaults=False)
    parser = argparse.ArgumentParser(
        prog="rollcall", parents=[global_options(defaults=True)], description=__doc__
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", parents=[common], help="run the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--fd",
        type=int,
        metavar="N",
        help="serve on the listening socket inherited as file descriptor N (instead of "
        "--host/--port; a supervisor or test binds it first)",
    )
    serve.add_argument("--demo", action="store_true", help="seed and serve the demo district")
    serve.add_argument("--workers", type=int, default=1, help="web processes (default 1)")
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="serve only: leave the job queue to a separate `rollcall worker`",
    )
    serve.set_defaults(handler=commands.serve)
    sub.add_parser(
        "worker", parents=[common], help="run the background job worker alone (email, pulls)"
    ).set_defaults(handler=commands.worker)

    sub.add_parser("migrate", parents=[common], help="upgrade the database schema").set_defaults(
        handler=commands.migrate
    )

    tenant = sub.add_parser("tenant", help="districts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = tenant.add_parser("add", parents=[common], help="add a tenant")
    add.add_argument("name")
    add.set_defaults(handler=commands.tenant_add)
    tenant.add_parser("list", parents=[common], help="list tenants").set_defaults(
        handler=commands.tenant_list
    )
    delete = tenant.add_parser(
        "delete", parents=[common], help="delete a tenant and all its data, after a final export"
    )
    delete.add_argument("name")
    delete.add_argument("--export", required=True, metavar="PATH", help="final export (JSON)")
    delete.add_argument("--confirm", metavar="NAME", help="the tenant name again")
    delete.set_defaults(handler=commands.tenant_delete)
    change = tenant.add_parser(
        "set", parents=[common], help="show or change the district settings (audited)"
    )
    change.add_argument("--badge-grades", metavar="GRADES", help="e.g. KG,01,02 (empty: none)")
    change.add_argument("--username-pattern", metavar="PATTERN")
    change.add_argument("--password-policy", metavar="PRESET", help="default or classic")
    change.add_argument("--shrink-threshold", metavar="SHARE", help="0 < SHARE <= 1, e.g. 0.2")
    change.add_argument("--retention-days", metavar="DAYS")
    change.add_argument(
        "--keep-provider-attributes",
        metavar="PATHS",
        help="provider attributes kept beyond those Rollcall uses, comma-separated "
        "(title,name.formatted,metadata.homeAddress); '' keeps none",
    )
    change.set_defaults(handler=commands.tenant_set)

    staff = sub.add_parser("staff", help="staff accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = staff.add_parser("add", parents=[common], help="add a staff account")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=["district_admin", "school_admin", "teacher"])
    add.add_argument("--school", action="append", default=[], metavar="SOURCED_ID")
    add.add_argument("--name", help="display name")
    add.add_argument("--email")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin (else generate)"
    )
    add.set_defaults(handler=commands.staff_add)
    token = staff.add_parser("token", parents=[common], help="issue an admin API token")
    token.add_argument("username")
    token.add_argument("--name", default="cli", help="what the token is for")
    token.set_defaults(handler=commands.staff_token)

    connection = sub.add_parser("connection", help="sources of records").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = connection.add_parser("add", parents=[common], help="add a connection (prints its token)")
    add.add_argument("name")
    add.add_argument(
        "--kind", required=True, choices=["scim", "oneroster", "oneroster_rest", "csv"]
    )
    add.add_argument("--sso", metavar="PROVIDER", help="users sign in at this SSO provider")
    add.add_argument("--profile", choices=["entra", "okta", "google"])
    add.add_argument("--school", action="append", default=[], metavar="SOURCED_ID")
    add.add_argument("--adopt-by", choices=["username", "email", "identifier"])
    sync.add_source_arguments(add)
    default_options(add)
    add.set_defaults(handler=commands.connection_add)
    change = connection.add_parser(
        "set",
        parents=[common],
        help="change a connection's default role and school, upstream, schedules or drop folder",
    )
    change.add_argument("name")
    default_options(change)
    sync.add_source_arguments(change)
    change.set_defaults(handler=commands.connection_set)
    connection.add_parser("list", parents=[common], help="list connections").set_defaults(
        handler=commands.connection_list
    )
    rotate = connection.add_parser("rotate-token", parents=[common], help="replace the token")
    rotate.add_argument("name")
    rotate.set_defaults(handler=commands.connection_rotate)
    upstream_commands.add_parser(connection, common)

    schools.add_parsers(sub, common)
    imports.add_parsers(sub, common)
    sync.add_parsers(sub, common)
    oauth_commands.add_parsers(sub, common)
    operations.add_parsers(sub, common)

    purge = sub.add_parser(
        "purge", parents=[common], help="apply the retention rules now (docs/retention.md)"
    )
    purge.set_defaults(handler=commands.purge)
    export = sub.add_parser(
        "export-student", parents=[common], help="everything stored about one user, as JSON"
    )
    export.add_argument("id", metavar="ID", help="the user's id")
    export.set_defaults(handler=commands.export_student)
    oauth1_secrets.add_commands(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    output = Output(as_json=args.json)
    args.read_secret = _read_secret
    try:
        return int(args.handler(args, output))
    except DomainError as error:
        output.error(error.message, error.code)
        return 1
    except (DatabaseUnavailable, OperationalError) as error:
        reason = error.reason if isinstance(error, DatabaseUnavailable) else None
        reason = reason or unavailable_reason(error)
        if reason is None:
            raise
        output.error(f"The database is busy or unreachable ({reason}); try again shortly.")
        return 1
    except KeyboardInterrupt:
        return 130


def _read_secret(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\n")


if __name__ == "__main__":
    sys.exit(main())
