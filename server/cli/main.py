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

from server.cli import commands, imports, oauth_commands, sync, upstream_commands
from server.cli import oneroster as oneroster_commands
from server.cli.output import Output
from server.errors import DomainError

Handler = Callable[[argparse.Namespace, Output], int]


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    common.add_argument("--tenant", help="tenant name (default: the first tenant)")

    parser = argparse.ArgumentParser(prog="rollcall", parents=[common], description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", parents=[common], help="run the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="seed and serve the demo district")
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(handler=commands.serve)

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
    add.add_argument("--upstream", metavar="URL", help="oneroster_rest: the OneRoster 1.2 API base")
    add.add_argument("--token-url", metavar="URL", help="oneroster_rest: the OAuth 2 token URL")
    add.add_argument("--client-id", help="oneroster_rest: the upstream OAuth 2 client id")
    add.add_argument(
        "--client-secret-stdin", action="store_true", help="read the upstream client secret"
    )
    add.add_argument("--every", type=int, metavar="MINUTES", help="pull on this schedule")
    add.set_defaults(handler=commands.connection_add)
    connection.add_parser("list", parents=[common], help="list connections").set_defaults(
        handler=commands.connection_list
    )
    rotate = connection.add_parser("rotate-token", parents=[common], help="replace the token")
    rotate.add_argument("name")
    rotate.set_defaults(handler=commands.connection_rotate)
    upstream_commands.add_parser(connection, common)

    imports.add_parsers(sub, common)
    sync.add_parsers(sub, common)
    oauth_commands.add_parsers(sub, common)

    purge = sub.add_parser("purge", parents=[common], help="remove users past their retention")
    purge.set_defaults(handler=commands.purge)
    oneroster_commands.add_commands(sub, common)
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
    except KeyboardInterrupt:
        return 130


def _read_secret(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\n")


if __name__ == "__main__":
    sys.exit(main())
