"""The browser side of district SSO sign-in (issue 17): start at the upstream, come back.

``/login/upstream/{connection}`` discovers the upstream, seals the flow (PKCE verifier,
``nonce``, the Rollcall request to continue) into a cookie bound to ``state`` and sends the
browser to the upstream. ``/login/upstream/callback`` is the one redirect URI of every
upstream: it opens the flow by ``state``, redeems the code, verifies the ID token and hands the
identity to :func:`server.domain.upstream_signin.finish`. Every failure ends on a page with a
link back to the sign-in page, and no session is opened.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from oidc import upstream
from oidc.login import DONE, client_and_tenant
from oidc.server import HttpRequest
from oidc.web import SESSION_COOKIE, Outcome, Page, Redirect, read_request, respond, safe_next
from server.context import AppContext
from server.domain import upstream_signin
from server.domain.secrets import SecretBox
from server.errors import NotFound, NotLinked

FLOW_COOKIE = "rollcall_upstream"


def failed(title: str, message: str, next_path: str, status: int) -> Page:
    """A clear end to a failed upstream sign-in, with a retry link; the flow cookie goes."""
    return Page(
        "message.html",
        {"title": title, "message": message, "retry": "/login?" + urlencode({"next": next_path})},
        status=status,
        cookies={FLOW_COOKIE: None},
    )


def _box(context: AppContext) -> SecretBox:
    return upstream_signin.box_for(context.settings.secret_keys)


def start(context: AppContext, http: HttpRequest, connection_id: str) -> Outcome:
    params = dict(http.query)
    next_path = safe_next(params.get("next"))
    with context.database.session() as session:
        _client, tenant_id = client_and_tenant(session, next_path)
        try:
            provider = upstream_signin.find_provider(
                session, connection_id, _box(context), tenant_id=tenant_id
            )
        except NotFound as error:
            return failed("This sign-in link is not valid", error.message, next_path, 404)
    try:
        metadata = upstream.discover(provider.issuer)
    except upstream.UpstreamUnavailable:
        return failed(
            f"{provider.name} cannot be reached",
            f"{provider.name} is not answering right now. Wait a moment, then try again.",
            next_path,
            502,
        )
    flow = upstream_signin.new_flow(provider, next_path, metadata.token_endpoint, metadata.jwks_uri)
    redirect_uri = upstream_signin.callback_url(context.settings.issuer)
    url = upstream.authorization_url(
        provider, metadata, flow, redirect_uri, params.get("login_hint", "")
    )
    return Redirect(url, cookies={FLOW_COOKIE: upstream_signin.seal_flow(_box(context), flow)})


def callback(context: AppContext, http: HttpRequest) -> Outcome:
    params = dict(http.query)
    flow = upstream_signin.open_flow(
        _box(context), http.cookies.get(FLOW_COOKIE), params.get("state")
    )
    if flow is None:
        return failed(
            "This sign-in cannot be finished",
            "The answer from your school's sign-in does not belong to this browser or is too "
            "old. Please start again.",
            "",
            400,
        )
    with context.database.session() as session:
        try:
            provider = upstream_signin.find_provider(session, flow.connection_id, _box(context))
        except NotFound as error:
            return failed("This sign-in cannot be finished", error.message, flow.next_path, 400)
    if params.get("error"):
        cancelled = params["error"] == "access_denied"
        return failed(
            "Sign-in was cancelled" if cancelled else f"{provider.name} did not sign you in",
            f"{provider.name} answered: {params.get('error_description') or params['error']}.",
            flow.next_path,
            400 if cancelled else 502,
        )
    redirect_uri = upstream_signin.callback_url(context.settings.issuer)
    try:
        claims = upstream.redeem(provider, flow, params.get("code", ""), redirect_uri)
    except upstream.UpstreamUnavailable:
        return failed(
            f"{provider.name} cannot be reached",
            f"{provider.name} is not answering right now. Wait a moment, then try again.",
            flow.next_path,
            502,
        )
    except upstream.UpstreamRefused as error:
        return failed(f"{provider.name} sign-in failed", str(error), flow.next_path, 502)
    with context.database.session() as session:
        try:
            _row, cookie = upstream_signin.finish(session, provider, claims)
        except NotLinked as error:
            return failed("Your account is not linked yet", error.message, flow.next_path, 403)
    return Redirect(flow.next_path or DONE, cookies={SESSION_COOKIE: cookie, FLOW_COOKIE: None})


async def start_route(request: Request) -> Response:
    context: AppContext = request.app.state.context
    http = await read_request(request, context)
    connection_id = request.path_params["connection"]
    return respond(context, await run_in_threadpool(start, context, http, connection_id))


async def callback_route(request: Request) -> Response:
    context: AppContext = request.app.state.context
    http = await read_request(request, context)
    return respond(context, await run_in_threadpool(callback, context, http))
