"""``rollcall oneroster-oauth1 NAME``: give a OneRoster API client an OAuth 1.0a consumer secret.

OneRoster 1.1 consumers that sign requests (OAuth 1.0a HMAC-SHA256/SHA1) use the client's
``client_id`` as consumer key and this secret. It is shown once; running the command again
replaces it. Clients themselves are added with ``rollcall oneroster-client add``.
"""

from __future__ import annotations

import argparse

from server.cli.commands import unit_of_work
from server.cli.output import Output
from server.domain import oauth1


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    command = sub.add_parser(
        "oneroster-oauth1",
        parents=[common],
        help="issue an OAuth 1.0a consumer secret to a OneRoster API client (shown once)",
    )
    command.add_argument("name", help="the API client's name")
    command.set_defaults(handler=issue_consumer_secret)


def issue_consumer_secret(args: argparse.Namespace, output: Output) -> int:
    with unit_of_work(args) as (context, session, actor):
        client = oauth1.find_api_client(session, actor.tenant_id, args.name)
        secret = oauth1.issue_consumer_secret(
            session, actor, client, oauth1.consumer_box(context.settings.secret_keys)
        )
        output.result(
            {"name": client.name, "consumer_key": client.client_id, "consumer_secret": secret},
            f"OAuth 1.0a for {client.name} (OneRoster 1.1 signed requests).\n"
            f"Consumer key: {client.client_id}\n"
            f"Consumer secret (shown once, store it now): {secret}",
        )
    return 0
