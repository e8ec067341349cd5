"""``rollcall connection set-upstream NAME``: where an SSO connection's users sign in (issue 17).

Discovers the issuer (``/.well-known/openid-configuration``), stores the client with its
secret sealed, and prints the one redirect URI to register at the provider,
``{ROLLCALL_ISSUER}/login/upstream/callback`` (``redirect_uri`` in ``--json``). Exit codes:
0 stored, 1 refused (not an SSO connection, the issuer cannot be discovered, bad values),
2 bad invocation.
"""

from __future__ import annotations

import argparse

from server.cli.commands import unit_of_work
from server.cli.output import Output
from server.domain import connections, upstream_signin


def add_parser(
    connection: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    command = connection.add_parser(
        "set-upstream",
        parents=[common],
        help="sign an SSO connection's users in at its OpenID Connect provider",
    )
    command.add_argument("name", help="the SSO connection")
    command.add_argument("--issuer", required=True, metavar="URL", help="the provider's issuer")
    command.add_argument("--client-id", required=True, help="Rollcall's client id there")
    command.add_argument(
        "--client-secret-stdin", action="store_true", help="read the client secret from stdin"
    )
    command.add_argument("--scopes", default=upstream_signin.DEFAULT_SCOPES)
    command.add_argument(
        "--link-claim",
        default="sub",
        choices=upstream_signin.LINK_CLAIMS,
        help="the claim matched to the user (sub: the SSO subject recorded at provisioning)",
    )
    command.set_defaults(handler=set_upstream)


def set_upstream(args: argparse.Namespace, output: Output) -> int:
    from oidc import upstream

    if not args.client_secret_stdin:
        output.error("Give the client secret on stdin with --client-secret-stdin.")
        return 2
    secret = args.read_secret("Client secret: ")
    try:
        upstream.discover(args.issuer)
    except upstream.UpstreamUnavailable as error:
        output.error(f"The issuer cannot be discovered: {error}")
        return 1
    with unit_of_work(args) as (context, session, actor):
        connection = connections.get_connection(session, actor.tenant_id, args.name)
        provider = upstream_signin.set_upstream_provider(
            session,
            actor,
            connection,
            box=upstream_signin.box_for(context.settings.secret_keys),
            issuer=args.issuer,
            client_id=args.client_id,
            client_secret=secret,
            scopes=args.scopes,
            link_claim=args.link_claim,
        )
        redirect_uri = upstream_signin.callback_url(context.settings.issuer)
        name = connection.name
    output.result(
        {
            "name": name,
            "provider": provider.name,
            "issuer": provider.issuer,
            "client_id": provider.client_id,
            "scopes": provider.scopes,
            "link_claim": provider.link_claim,
            "redirect_uri": redirect_uri,
        },
        f"{provider.name} users of {name} now sign in at {provider.issuer}.\n"
        f"Register this redirect URI there: {redirect_uri}",
    )
    return 0
