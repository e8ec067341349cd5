"""The token endpoint, RFC 6749 §3.2: codes, refresh tokens and client credentials.

One endpoint for every client: OIDC relying parties exchange codes and refresh tokens,
OneRoster API clients use the client-credentials grant. See :mod:`oidc.grants`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from oidc.server import StarletteOAuth2Request, run_server
from oidc.web import read_request, respond
from server.context import AppContext


async def token(request: Request) -> Response:
    context: AppContext = request.app.state.context
    http = await read_request(request, context)
    outcome = await run_server(
        context, lambda server: server.create_token_response(StarletteOAuth2Request(http))
    )
    return respond(context, outcome)


async def revoke(request: Request) -> Response:
    """RFC 7009 revocation (see :mod:`oidc.revocation`)."""
    context: AppContext = request.app.state.context
    http = await read_request(request, context)
    outcome = await run_server(
        context,
        lambda server: server.create_endpoint_response("revocation", StarletteOAuth2Request(http)),
    )
    return respond(context, outcome)


async def introspect(request: Request) -> Response:
    """RFC 7662 introspection (see :mod:`oidc.introspection`)."""
    context: AppContext = request.app.state.context
    http = await read_request(request, context)
    outcome = await run_server(
        context,
        lambda server: server.create_endpoint_response(
            "introspection", StarletteOAuth2Request(http)
        ),
    )
    return respond(context, outcome)
