"""The handlers behind each ``rollcall`` command: open a unit of work, call the domain, print."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from server.cli.output import Output
from server.config import load_settings
from server.context import AppContext
from server.db import Connection, Tenant
from server.db.migrate import upgrade
from server.domain import completeness, connections, roster, staff, tenants, users
from server.domain.actors import Actor, system_actor
from server.errors import NotFound

DEFAULT_TENANT = "Default District"


@contextmanager
def unit_of_work(args: argparse.Namespace) -> Iterator[tuple[AppContext, Session, Actor]]:
    """Settings, an up-to-date database and one transaction acting as the CLI in a tenant."""
    context = AppContext.from_settings(load_settings())
    upgrade(context.database.engine)
    try:
        with context.database.session() as session:
            tenant = resolve_tenant(session, args.tenant)
            yield context, session, system_actor(tenant.id, "cli")
    finally:
        context.database.dispose()


def resolve_tenant(session: Session, name: str | None) -> Tenant:
    """The named tenant, or the first one (created on first run)."""
    try:
        return tenants.get_tenant(session, name)
    except NotFound:
        if name:
            raise
        return tenants.create_tenant(session, DEFAULT_TENANT)


def serve(args: argparse.Namespace, output: Output) -> int:
    from server.cli.serve import run

    return run(args, output)


def migrate(args: argparse.Namespace, output: Output) -> int:
    context = AppContext.from_settings(load_settings())
    upgrade(context.database.engine)
    output.result({"database": "up to date"}, "The database schema is up to date.")
    return 0


def tenant_add(args: argparse.Namespace, output: Output) -> int:
    context = AppContext.from_settings(load_settings())
    upgrade(context.database.engine)
    with context.database.session() as session:
        tenant = tenants.create_tenant(session, args.name)
        output.result({"id": tenant.id, "name": tenant.name}, f"Added tenant {tenant.name}.")
    return 0


def tenant_list(args: argparse.Namespace, output: Output) -> int:
    context = AppContext.from_settings(load_settings())
    upgrade(context.database.engine)
    with context.database.session() as session:
        rows = [{"id": t.id, "name": t.name} for t in tenants.list_tenants(session)]
    output.table(rows, ["name", "id"], "Tenants")
    return 0


def staff_add(args: argparse.Namespace, output: Output) -> int:
    password = args.read_secret("Password: ") if args.password_stdin else None
    with unit_of_work(args) as (_context, session, actor):
        created = staff.create_staff(
            session,
            actor,
            args.username,
            args.role,
            password=password,
            school_sourced_ids=args.school,
            display_name=args.name,
            email=args.email,
        )
        data = {"username": created.staff.username, "role": created.staff.role}
        if password is None:
            data["password"] = created.password
        shown = f"\nPassword (shown once): {created.password}" if password is None else ""
        output.result(data, f"Added {args.role} {created.staff.username}.{shown}")
    return 0


def staff_token(args: argparse.Namespace, output: Output) -> int:
    with unit_of_work(args) as (_context, session, actor):
        account = staff.find_staff(session, actor.tenant_id, args.username)
        if account is None:
            raise NotFound(f"No staff account named {args.username!r}.")
        token = staff.create_staff_token(session, account, args.name)
        output.result(
            {"username": account.username, "token": token},
            f"Admin API token for {account.username} (shown once): {token}",
        )
    return 0


def connection_add(args: argparse.Namespace, output: Output) -> int:
    from server.cli.sync import configure_sources

    upstream = getattr(args, "upstream", None)
    if args.kind == "oneroster_rest" and not (
        upstream and (args.token_url or args.oauth1) and args.client_id and args.client_secret_stdin
    ):
        output.error(
            "A oneroster_rest connection needs --upstream URL, --token-url URL (or --oauth1 for "
            "a hub that signs with OAuth 1.0a), --client-id ID and --client-secret-stdin."
        )
        return 2
    if upstream and args.kind != "oneroster_rest":
        output.error("--upstream is for --kind oneroster_rest.")
        return 2
    secret = args.read_secret("Upstream client secret: ") if upstream else None
    with unit_of_work(args) as (context, session, actor):
        issued = connections.create_connection(
            session,
            actor,
            args.name,
            args.kind,
            sso_provider=args.sso,
            profile=args.profile,
            school_sourced_ids=args.school,
            adopt_by=args.adopt_by,
        )
        _set_defaults(session, actor, issued.connection, args)
        configure_sources(args, context, session, actor, issued.connection, secret)
        output.result(
            {**_connection_row(issued.connection, session), "token": issued.token},
            f"Added connection {issued.connection.name} ({issued.connection.kind}).\n"
            f"Bearer token (shown once, store it now): {issued.token}",
        )
    return 0


def connection_set(args: argparse.Namespace, output: Output) -> int:
    from server.cli.sync import configure_sources, source_options_given

    if args.default_role is None and args.default_school is None and not source_options_given(args):
        output.error(
            "connection set needs --default-role ROLE and/or --default-school SOURCED_ID, "
            "or an upstream, schedule or drop-folder option."
        )
        return 2
    secret = args.read_secret("Upstream client secret: ") if args.client_secret_stdin else None
    with unit_of_work(args) as (context, session, actor):
        connection = connections.get_connection(session, actor.tenant_id, args.name)
        changes = _set_defaults(session, actor, connection, args)
        configure_sources(args, context, session, actor, connection, secret)
        message = (
            f"Changed {', '.join(changes)} of {connection.name}."
            if changes
            else f"Updated connection {connection.name}."
        )
        output.result({**_connection_row(connection, session), "changes": changes}, message)
    return 0


def _set_defaults(
    session: Session, actor: Actor, connection: Connection, args: argparse.Namespace
) -> dict[str, list[object]]:
    options = {}
    if args.default_role is not None:
        options["role"] = args.default_role
    if args.default_school is not None:
        options["school_sourced_id"] = args.default_school
    if not options:
        return {}
    return completeness.set_defaults(session, actor, connection, **options)


def connection_list(args: argparse.Namespace, output: Output) -> int:
    with unit_of_work(args) as (_context, session, actor):
        rows = [
            _connection_row(c, session)
            for c in connections.list_connections(session, actor.tenant_id)
        ]
    output.table(
        rows,
        ["name", "kind", "sso_provider", "profile", "default_role", "default_school", "incomplete"],
        "Connections",
    )
    return 0


def connection_rotate(args: argparse.Namespace, output: Output) -> int:
    with unit_of_work(args) as (_context, session, actor):
        issued = connections.rotate_token(session, actor, args.name)
        output.result(
            {"name": issued.connection.name, "token": issued.token},
            f"New bearer token for {issued.connection.name} (shown once; the old one no longer "
            f"works): {issued.token}",
        )
    return 0


def purge(args: argparse.Namespace, output: Output) -> int:
    with unit_of_work(args) as (_context, session, actor):
        count = users.purge_deleted_users(session, actor)
        records = roster.purge_deleted_records(session, actor)
    output.result(
        {"purged_users": count, "purged_records": records},
        f"Purged {count} deleted user(s) and {records} class/enrollment record(s) past their "
        "retention.",
    )
    return 0


def _connection_row(connection: Connection, session: Session | None = None) -> dict[str, object]:
    """A connection as the CLI shows it; with a session, its defaults and incomplete users."""
    row: dict[str, object] = {
        "name": connection.name,
        "kind": connection.kind,
        "sso_provider": connection.sso_provider,
        "profile": connection.profile,
        "tokens": ", ".join(t.hint for t in connection.tokens if t.revoked_at is None),
        "upstream": ((connection.settings or {}).get("upstream") or {}).get("base_url"),
        "drop_dir": (connection.settings or {}).get("drop_dir"),
        "created_at": connection.created_at.isoformat(timespec="seconds"),
    }
    if session is not None:
        row["default_role"] = completeness.defaults_of(connection).role
        row["default_school"] = completeness.default_school_sourced_id(session, connection)
        counts = completeness.incomplete_counts(session, connection.tenant_id)
        row["incomplete"] = counts.get(connection.id, 0)
    return row
