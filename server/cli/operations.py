"""Operations commands: ``rollcall secrets rotate`` (and the start-up check of the key ring)."""

from __future__ import annotations

import argparse

from server.cli.output import Output
from server.config import load_settings
from server.context import AppContext
from server.db.migrate import upgrade
from server.domain import rotation
from server.errors import SecretKeyMismatch


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    secrets = sub.add_parser("secrets", help="the server secret key").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    secrets.add_parser(
        "rotate",
        parents=[common],
        help="re-seal every sealed value under ROLLCALL_SECRET_KEY "
        "(the previous key in ROLLCALL_OLD_SECRET_KEYS)",
    ).set_defaults(handler=rotate)


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
