"""The authorization endpoint, RFC 6749 §3.1 and OpenID Connect Core §3.1.2 (GET and POST).

Flow: validate the request with Authlib (client, exact redirect URI, response type, scope,
PKCE, ``prompt``); find the browser's session in the client's tenant; send the browser to the
sign-in page when there is none, when ``prompt=login`` asks for a fresh sign-in, or when the
session is older than ``max_age``; otherwise issue the code. ``prompt=none`` never shows a
page: it answers ``login_required`` instead. Clients are registered by the district, so there
is no consent screen. Request objects (``request``, ``request_uri``) are refused cleanly
(Core §6). Unknown parameters are ignored.
"""

from __future__ import annotations

from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from authlib.oidc.core.errors import LoginRequiredError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from oidc.server import HttpRequest, StarletteOAuth2Request, build_server
from oidc.web import SESSION_COOKIE, Outcome, Page, Redirect, read_request, respond
from server.context import AppContext
from server.domain import authorization, signin

# Parameters dropped from the request replayed after sign-in: the sign-in just happened.
_FRESH_LOGIN_PARAMETERS = ("prompt", "max_age")


class RequestNotSupported(OAuth2Error):
    error = "request_not_supported"


class RequestUriNotSupported(OAuth2Error):
    error = "request_uri_not_supported"


def authorize_request(context: AppContext, http: HttpRequest) -> Outcome:
    try:
        return _authorize(context, http)
    except ValueError:
        # Authlib will not echo a quote or backslash in an error description (RFC 6749 §4.1.2.1)
        return Page(
            "message.html",
            {
                "title": "This sign-in link is not valid",
                "message": "The link has malformed parameters.",
                "hint": "Go back to the app and try again, or tell your teacher.",
            },
            status=400,
        )


def _authorize(context: AppContext, http: HttpRequest) -> Outcome:
    params = http.values()
    with context.database.session() as session:
        server = build_server(context, session)
        client = authorization.find_client(session, params.get("client_id"))
        browser = signin.find_session(session, http.cookies.get(SESSION_COOKIE))
        user = None
        if (
            browser is not None
            and client is not None
            and browser.tenant_id == client.tenant_id
            and not browser.must_change
        ):
            user = signin.session_user(session, browser)
        oauth_request = StarletteOAuth2Request(http)
        try:
            grant = server.get_consent_grant(oauth_request, end_user=user)
        except OAuth2Error as error:
            if error.redirect_uri:
                return server.handle_error_response(oauth_request, error)
            return Page(
                "message.html",
                {
                    "title": "This sign-in link is not valid",
                    "message": error.description or error.error,
                    "hint": "Go back to the app and try again, or tell your teacher.",
                },
                status=400,
            )
        state = params.get("state")
        if params.get("request"):
            refusal: OAuth2Error = RequestNotSupported(redirect_uri=grant.redirect_uri, state=state)
            return server.handle_error_response(oauth_request, refusal)
        if params.get("request_uri"):
            refusal = RequestUriNotSupported(redirect_uri=grant.redirect_uri, state=state)
            return server.handle_error_response(oauth_request, refusal)

        prompts = (params.get("prompt") or "").split()
        too_old = False
        max_age = params.get("max_age")
        if browser is not None and max_age and max_age.isdigit():
            too_old = signin.session_age(browser).total_seconds() > int(max_age)
        if user is None or too_old or grant.prompt == "login" or "login" in prompts:
            if "none" in prompts:
                refusal = LoginRequiredError(redirect_uri=grant.redirect_uri, state=state)
                return server.handle_error_response(oauth_request, refusal)
            replay = [(k, v) for k, v in params.items() if k not in _FRESH_LOGIN_PARAMETERS]
            next_path = "/oauth/authorize?" + urlencode(replay)
            query = {"next": next_path}
            if params.get("login_hint"):
                query["login_hint"] = params["login_hint"]
            return Redirect("/login?" + urlencode(query))
        oauth_request.auth_time = browser.auth_time if browser else None
        if browser is not None and browser.upstream_issuer:
            # Signed in at the district's provider (issue 17): say so in the ID token.
            oauth_request.amr, oauth_request.acr = "fed", browser.upstream_issuer
        return server.create_authorization_response(oauth_request, grant_user=user, grant=grant)


async def authorize(request: Request) -> Response:
    context: AppContext = request.app.state.context
    http = await read_request(request, context)
    outcome = await run_in_threadpool(authorize_request, context, http)
    response = respond(context, outcome)
    if isinstance(outcome, Redirect):
        response.status_code = 302
    return response
