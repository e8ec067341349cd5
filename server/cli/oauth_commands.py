"""``rollcall client add``, ``rollcall oneroster-client add`` and ``rollcall keys rotate``."""

from __future__ import annotations

import argparse

from server.cli.output import Output
from server.db import OAuthClientKind
from server.domain import authorization, keys, oauth
from server.domain.oauth import DEFAULT_ONEROSTER_SCOPES


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    client = sub.add_parser("client", help="OpenID Connect clients").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = client.add_parser("add", parents=[common], help="register an OIDC client")
    add.add_argument("name")
    add.add_argument("--redirect-uri", action="append", required=True, metavar="URI")
    add.add_argument("--post-logout-redirect-uri", action="append", default=[], metavar="URI")
    add.add_argument("--public", action="store_true", help="no secret; PKCE required")
    add.add_argument("--id-token-alg", choices=list(keys.ALGORITHMS), default="RS256")
    add.set_defaults(handler=client_add)

    roster = sub.add_parser("oneroster-client", help="OneRoster API clients").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = roster.add_parser("add", parents=[common], help="register a OneRoster API client")
    add.add_argument("name")
    add.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="SCOPE",
        help="a OneRoster scope URI (default: roster-core and roster, 1.1 and 1.2)",
    )
    add.add_argument("--school", action="append", default=[], metavar="SOURCED_ID")
    add.set_defaults(handler=oneroster_client_add)

    key = sub.add_parser("keys", help="ID token signing keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    key.add_parser("rotate", parents=[common], help="make new signing keys").set_defaults(
        handler=keys_rotate
    )


def client_add(args: argparse.Namespace, output: Output) -> int:
    from server.cli.commands import unit_of_work

    with unit_of_work(args) as (_context, session, actor):
        created = oauth.create_client(
            session,
            actor,
            args.name,
            kind=OAuthClientKind.OIDC,
            redirect_uris=args.redirect_uri,
            post_logout_redirect_uris=args.post_logout_redirect_uri,
            public=args.public,
        )
        if args.id_token_alg != "RS256":
            authorization.set_id_token_algorithm(session, created.client, args.id_token_alg)
        data = {
            "name": created.client.name,
            "client_id": created.client.client_id,
            "client_secret": created.secret,
            "public": created.client.public,
            "redirect_uris": created.client.redirect_uris,
            "post_logout_redirect_uris": created.client.post_logout_redirect_uris,
            "id_token_signed_response_alg": args.id_token_alg,
        }
        secret = (
            f"\nClient secret (shown once, store it now): {created.secret}"
            if created.secret
            else "\nPublic client: no secret, PKCE (S256) required."
        )
        output.result(
            data,
            f"Added OIDC client {created.client.name}.\nClient ID: {created.client.client_id}"
            + secret,
        )
    return 0


def oneroster_client_add(args: argparse.Namespace, output: Output) -> int:
    from server.cli.commands import unit_of_work

    scopes = args.scope or DEFAULT_ONEROSTER_SCOPES
    with unit_of_work(args) as (_context, session, actor):
        created = oauth.create_client(
            session,
            actor,
            args.name,
            kind=OAuthClientKind.API,
            scopes=scopes,
            school_sourced_ids=args.school,
        )
        data = {
            "name": created.client.name,
            "client_id": created.client.client_id,
            "client_secret": created.secret,
            "scopes": created.client.scopes,
            "schools": args.school,
        }
        output.result(
            data,
            f"Added OneRoster client {created.client.name}.\n"
            f"Client ID: {created.client.client_id}\n"
            f"Client secret (shown once, store it now): {created.secret}",
        )
    return 0


def keys_rotate(args: argparse.Namespace, output: Output) -> int:
    from server.cli.commands import unit_of_work

    with unit_of_work(args) as (context, session, actor):
        box = keys.signing_box(context.settings.secret_keys)
        kids = keys.rotate_keys(session, actor, box)
    output.result(
        {"kids": kids},
        f"New signing keys: {', '.join(kids)}. The previous keys stay published for a day.",
    )
    return 0
