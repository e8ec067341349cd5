"""``rollcall school add|list|set|deactivate|reactivate``: schools without a SIS file.

Schools made here are owned by the manual connection (SPEC §4); changing a school a sync
connection owns needs ``--override``, which is audited.
"""

from __future__ import annotations

import argparse

from server.cli.commands import unit_of_work
from server.cli.output import Output
from server.domain import orgs
from server.domain.vocabulary import ORG_TYPES
from server.web.presenters import school_view as school_row

FIELDS = ("name", "type", "parent", "identifier")


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    school = sub.add_parser("school", help="schools and other orgs").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = school.add_parser("add", parents=[common], help="add a school (or district, …)")
    add.add_argument("sourced_id", metavar="SOURCED_ID")
    add.add_argument("--name", required=True)
    _org_options(add)
    add.set_defaults(handler=school_add)

    listing = school.add_parser("list", parents=[common], help="list schools and orgs")
    listing.add_argument("--all", action="store_true", help="include deactivated ones")
    listing.set_defaults(handler=school_list)

    change = school.add_parser("set", parents=[common], help="rename or re-parent a school")
    change.add_argument("sourced_id", metavar="SOURCED_ID")
    change.add_argument("--name")
    _org_options(change)
    change.add_argument("--override", action="store_true", help="change a synced school anyway")
    change.set_defaults(handler=school_set)

    for action, active in (("deactivate", False), ("reactivate", True)):
        status = school.add_parser(action, parents=[common], help=f"{action} a school")
        status.add_argument("sourced_id", metavar="SOURCED_ID")
        status.add_argument("--override", action="store_true", help="for a synced school")
        status.set_defaults(handler=school_deactivate if not active else school_reactivate)


def _org_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", choices=ORG_TYPES, help="org type (default: school)")
    parser.add_argument("--parent", metavar="SOURCED_ID", help="the parent org ('' for none)")
    parser.add_argument("--identifier", help="the school's own number (e.g. a state id)")


def school_add(args: argparse.Namespace, output: Output) -> int:
    with unit_of_work(args) as (_context, session, actor):
        org = orgs.add_school(session, actor, args.sourced_id, _given(args))
        output.result(school_row(session, org), f"Added {org.type} {org.name} ({org.sourced_id}).")
    return 0


def school_list(args: argparse.Namespace, output: Output) -> int:
    with unit_of_work(args) as (_context, session, actor):
        rows = [
            school_row(session, o)
            for o in orgs.list_orgs(session, actor, include_inactive=args.all)
        ]
    output.table(rows, ["sourced_id", "name", "type", "parent", "status", "owner"], "Schools")
    return 0


def school_set(args: argparse.Namespace, output: Output) -> int:
    with unit_of_work(args) as (_context, session, actor):
        changes = orgs.change_school(
            session, actor, args.sourced_id, _given(args), override=args.override
        )
        org = orgs.get_org(session, actor, args.sourced_id)
        message = f"Changed {', '.join(changes)} of {org.name}." if changes else "Nothing changed."
        output.result({**school_row(session, org), "changes": changes}, message)
    return 0


def school_deactivate(args: argparse.Namespace, output: Output) -> int:
    return _set_active(args, output, active=False)


def school_reactivate(args: argparse.Namespace, output: Output) -> int:
    return _set_active(args, output, active=True)


def _set_active(args: argparse.Namespace, output: Output, *, active: bool) -> int:
    with unit_of_work(args) as (_context, session, actor):
        changed = orgs.set_school_active(
            session, actor, args.sourced_id, active, override=args.override
        )
        org = orgs.get_org(session, actor, args.sourced_id)
        done = "reactivated" if active else "deactivated"
        message = f"{org.name} {done}." if changed else f"{org.name} was already {done}."
        output.result({**school_row(session, org), "changed": changed}, message)
    return 0


def _given(args: argparse.Namespace) -> dict[str, str]:
    return {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
