"""The handlers behind each ``rollcall`` command: open a unit of work, call the domain, print."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session

from server.cli.output import Output
from server.cli.tenant import resolve_tenant
from server.config import load_settings
from server.context import AppContext
from server.db import Connection
from server.db.migrate import upgrade
from server.domain import (
    completeness,
    connection_defaults,
    connections,
    district_settings,
    erasure,
    retention,
    staff,
    subject_access,
    tenants,
)
from server.domain.actors import Actor, system_actor
from server.errors import InvalidValue, NotFound


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


def serve(args: argparse.Namespace, output: Output) -> int:
    from server.cli.serve import run

    return run(args, output)


def worker(args: argparse.Namespace, output: Output) -> int:
    from server.cli.serve import run_worker

    return run_worker(args, output)


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


def tenant_delete(args: argparse.Namespace, output: Output) -> int:
    """Delete a district for good, after writing the final export to ``--export PATH``.

    The name must be typed again (``--confirm NAME``, or at the prompt on a terminal).
    """
    confirm = args.confirm
    if confirm is None and sys.stdin.isatty():
        confirm = input(f"Type the tenant name to delete it and all its data ({args.name}): ")
    if (confirm or "").strip() != args.name:
        raise InvalidValue("Not deleted: confirm with --confirm and the exact tenant name.")
    path = Path(args.export)
    if path.exists():
        raise InvalidValue(f"Not deleted: {path} already exists; choose a new export file.")
    context = AppContext.from_settings(load_settings())
    upgrade(context.database.engine)
    try:
        with context.database.session() as session:
            tenant = tenants.get_tenant(session, args.name)
            actor = system_actor(tenant.id, "cli")
            document = {
                "tenant": tenant.name,
                "users": subject_access.export_tenant(session, actor),
            }
            path.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
            path.chmod(0o600)
            erasure.erase_tenant(session, tenant.id)
    finally:
        context.database.dispose()
    output.result(
        {"deleted": args.name, "export": str(path), "users": len(document["users"])},
        f"Deleted tenant {args.name}; the final export of {len(document['users'])} user(s) is "
        f"in {path} (personal data: keep it safe, delete it when no longer needed).",
    )
    return 0


def tenant_set(args: argparse.Namespace, output: Output) -> int:
    """``rollcall tenant set``: the district settings of the Settings page (issue 14, item 7)."""
    options = ("badge_grades", "username_pattern", "password_policy", "shrink_threshold")
    extra = ("retention_days", "keep_provider_attributes")
    changes = {k: getattr(args, k) for k in (*options, *extra)}
    changes = {k: v for k, v in changes.items() if v is not None}
    with unit_of_work(args) as (_context, session, actor):
        changed = district_settings.change_settings(session, actor, changes)
        current = district_settings.read_settings(session, actor)
    summary = "; ".join(f"{k}: {before} → {after}" for k, (before, after) in changed.items())
    lines = "\n".join(f"  {k} = {v}" for k, v in current.items())
    output.result(
        {**current, "changed": changed},
        f"{'Changed ' + summary if changed else 'Nothing changed'}.\n{lines}",
    )
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
        token = staff.create_staff_token(session, account, args.name, actor=actor)
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
        rows = [_connection_row(c, session) for c in connections.list_connections(session, actor)]
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
    """Apply every retention rule now (what the worker's daily job does): see docs/retention.md."""
    with unit_of_work(args) as (context, session, actor):
        counts = retention.enforce(session, actor, secret_key=context.settings.secret_keys)
    removed = ", ".join(f"{name} {count}" for name, count in counts.items() if count) or "nothing"
    output.result(
        {**counts, "purged_users": counts["users_purged"]},
        f"Retention applied. Removed: {removed}.",
    )
    return 0


def export_student(args: argparse.Namespace, output: Output) -> int:
    """Print the subject-access document of one user as JSON (audited as a read)."""
    with unit_of_work(args) as (_context, session, actor):
        document = subject_access.export_student(session, actor, args.id)
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    output.errors.print(f"Exported {len(document)} sections about {args.id}.")
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
        row["default_role"] = connection_defaults.defaults_of(connection).role
        row["default_school"] = completeness.default_school_sourced_id(session, connection)
        counts = completeness.incomplete_counts(session, connection.tenant_id)
        row["incomplete"] = counts.get(connection.id, 0)
    return row
