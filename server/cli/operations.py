"""Operations commands: ``rollcall secrets rotate`` (and the start-up check of the key ring),
``rollcall backup PATH`` and ``rollcall restore PATH``."""

from __future__ import annotations

import argparse
from pathlib import Path

from server.cli.output import Output
from server.config import load_settings
from server.context import AppContext
from server.db import backup as backups
from server.db.migrate import upgrade
from server.db.session import Database
from server.domain import rotation
from server.errors import SecretKeyMismatch


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    secrets = sub.add_parser("secrets", help="the server secret key").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    secrets.add_parser(
        "rotate",
        parents=[common],
        help="re-seal every sealed value under ROLLCALL_SECRET_KEY "
        "(the previous key in ROLLCALL_OLD_SECRET_KEYS)",
    ).set_defaults(handler=rotate)

    save = sub.add_parser(
        "backup", parents=[common], help="write a consistent backup of the database to PATH"
    )
    save.add_argument("path", type=Path)
    save.set_defaults(handler=backup)
    load = sub.add_parser(
        "restore", parents=[common], help="replace the database with the backup in PATH"
    )
    load.add_argument("path", type=Path)
    load.add_argument("--replace", action="store_true", help="overwrite a database that holds data")
    load.set_defaults(handler=restore)


def check_secret_keys(context: AppContext) -> None:
    """Refuse to start when sealed values open with no key of the ring.

    :raises SecretKeyMismatch: naming the first few of them and what to do.
    """
    with context.database.session() as session:
        found = rotation.unreadable(session, context.settings.secret_keys)
    if found:
        raise SecretKeyMismatch(found)


def rotate(args: argparse.Namespace, output: Output) -> int:
    settings = load_settings()
    context = AppContext.from_settings(settings)
    upgrade(context.database.engine)
    try:
        with context.database.session() as session:
            report = rotation.reseal_all(session, settings.secret_keys)
            if report.unreadable:
                raise SecretKeyMismatch(report.unreadable[:5])  # rolls the unit of work back
    finally:
        context.database.dispose()
    total = sum(report.resealed.values())
    detail = ", ".join(f"{count} {label}(s)" for label, count in sorted(report.resealed.items()))
    output.result(
        {"resealed": report.resealed, "already_current": report.current},
        f"Re-sealed {total} value(s) under the current key"
        + (f": {detail}" if detail else "")
        + f"; {report.current} already were. ROLLCALL_OLD_SECRET_KEYS can now be removed.",
    )
    return 0


def backup(args: argparse.Namespace, output: Output) -> int:
    settings = load_settings()
    size = backups.backup(settings.database_url, args.path)
    output.result(
        {"backup": str(args.path), "bytes": size},
        f"Backed up the database to {args.path} ({size} bytes). Keep the secret key "
        "(ROLLCALL_SECRET_KEY or the data directory's secret_key file) too, apart from it: "
        "without it the sealed values in the backup cannot be opened.",
    )
    return 0


def restore(args: argparse.Namespace, output: Output) -> int:
    settings = load_settings()
    backups.restore(settings.database_url, args.path, replace=args.replace)
    database = Database(settings.database_url)
    try:
        upgrade(database.engine)  # a backup from an older Rollcall gets the newer migrations
    finally:
        database.dispose()
    output.result(
        {"restored": str(args.path)},
        f"Restored the database from {args.path}. Start Rollcall with the secret key that "
        "was in use when the backup was taken.",
    )
    return 0
