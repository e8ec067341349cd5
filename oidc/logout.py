"""RP-initiated logout, OpenID Connect RP-Initiated Logout 1.0 §2-§3, at ``/oauth/logout``.

The browser session ends. With a ``post_logout_redirect_uri`` registered for the client
(named by ``client_id`` or by the audience of a valid ``id_token_hint``, expired or not), the
browser goes back there with ``state``; otherwise a page says the student is signed out.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from oidc.server import HttpRequest
from oidc.web import SESSION_COOKIE, Outcome, Page, Redirect, read_request, respond
from server.context import AppContext
from server.domain import authorization, keys, signin


def hinted_audience(context: AppContext, session: Any, hint: str) -> str | None:
    """The client id of an ID token we issued (signature and issuer checked), else None."""
    box = keys.signing_box(context.settings.secret_keys)
    key_set = KeySet.import_key_set({"keys": keys.published_keys(session, box)})
    try:
        token = jwt.decode(hint, key_set, algorithms=list(keys.ALGORITHMS))
    except (JoseError, ValueError):
        return None
    if token.claims.get("iss") != context.settings.issuer:
        return None
    aud = token.claims.get("aud")
    return aud[0] if isinstance(aud, list) and aud else aud if isinstance(aud, str) else None


def end_session(context: AppContext, http: HttpRequest) -> Outcome:
    params = http.values()
    signed_out = Page(
        "message.html",
        {"title": "You are signed out", "message": "You can close this page."},
        cookies={SESSION_COOKIE: None},
    )
    with context.database.session() as session:
        client_id = params.get("client_id")
        if params.get("id_token_hint"):
            audience = hinted_audience(context, session, params["id_token_hint"])
            if audience is None or (client_id and client_id != audience):
                signin.end_session(session, http.cookies.get(SESSION_COOKIE))
                signed_out.values["message"] = "You are signed out. (The app sent a bad hint.)"
                signed_out.status = 400
                return signed_out
            client_id = audience
        signin.end_session(session, http.cookies.get(SESSION_COOKIE))
        uri = params.get("post_logout_redirect_uri")
        if not uri:
            return signed_out
        client = authorization.find_client(session, client_id)
        if client is None or not authorization.logout_redirect_allowed(client, uri):
            signed_out.values["message"] = (
                "You are signed out. The app asked to go back to an address it has not "
                "registered, so you stay here."
            )
            signed_out.status = 400
            return signed_out
        if params.get("state"):
            uri += ("&" if "?" in uri else "?") + urlencode({"state": params["state"]})
        return Redirect(uri, cookies={SESSION_COOKIE: None})


async def logout(request: Request) -> Response:
    context: AppContext = request.app.state.context
    http = await read_request(request, context)
    outcome = await run_in_threadpool(end_session, context, http)
    response = respond(context, outcome)
    if isinstance(outcome, Redirect):
        response.status_code = 302
    return response
