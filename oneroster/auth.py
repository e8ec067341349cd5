"""Who is reading: an OAuth 2 bearer token (1.1 and 1.2) or an OAuth 1.0a signature (1.1).

:func:`authenticate` takes plain request values and returns the
:class:`~server.domain.oauth.AccessGrant` (tenant, scopes, schools) or raises a 401
``unauthorisedrequest``. :func:`ensure_scope` raises 403 ``forbidden`` when the grant lacks every
scope an endpoint accepts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from oneroster import oauth1
from oneroster.errors import FORBIDDEN, UNAUTHORISED, StatusError
from server.domain import oauth
from server.domain import oauth1 as consumer
from server.domain.oauth import AccessGrant
from server.domain.secrets import SecretBox


@dataclass(frozen=True)
class Credentials:
    """What a request presents: method, URL (without query), query pairs, Authorization.

    ``public_url`` is the same URL under the configured public base (``ROLLCALL_ISSUER``):
    behind a TLS-terminating proxy the client signed that one, not the one we received.
    """

    method: str
    url: str
    query: list[tuple[str, str]]
    authorization: str
    public_url: str | None = None


def unauthorised(description: str) -> StatusError:
    return StatusError(401, UNAUTHORISED, description)


def authenticate(
    session: Session, credentials: Credentials, *, allow_oauth1: bool, box: SecretBox
) -> AccessGrant:
    """The grant of a bearer token or of a correctly signed OAuth 1.0a request.

    :raises StatusError: 401 ``unauthorisedrequest``.
    """
    scheme, _, token = credentials.authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        grant = oauth.authenticate_access_token(session, token.strip())
        if grant is None or grant.user_id is not None:
            raise unauthorised("The access token is not valid or has expired.")
        return grant
    if allow_oauth1 and oauth1.is_signed(credentials.authorization, credentials.query):
        return _signed(session, credentials, box)
    raise unauthorised(
        "Send an OAuth 2 access token (client credentials grant at /oauth/token)"
        + (" or sign the request with OAuth 1.0a." if allow_oauth1 else ".")
    )


def _signed(session: Session, credentials: Credentials, box: SecretBox) -> AccessGrant:
    try:
        request = oauth1.parse(
            credentials.method, credentials.url, credentials.authorization, credentials.query
        )
        timestamp = request.timestamp
    except oauth1.SignatureError as error:
        raise unauthorised(str(error)) from None
    client = oauth.find_client(session, request.consumer_key)
    secret = consumer.consumer_secret(session, client, box) if client else None
    urls = {credentials.url, credentials.public_url or credentials.url}
    if (
        client is None
        or secret is None
        or not any(oauth1.verify(replace(request, url=url), secret) for url in urls)
    ):
        raise unauthorised("The OAuth 1.0a signature is not valid.")
    window = consumer.TIMESTAMP_WINDOW.total_seconds()
    if abs(time.time() - timestamp) > window:
        raise unauthorised("oauth_timestamp is too far from the server's clock.")
    if not consumer.remember_nonce(session, client, request.nonce, timestamp):
        raise unauthorised("This oauth_nonce was already used: the request is a replay.")
    return consumer.grant_for(client)


def ensure_scope(grant: AccessGrant, accepted: frozenset[str]) -> None:
    """:raises StatusError: 403 ``forbidden`` when the grant has none of ``accepted``."""
    if grant.scopes & accepted:
        return
    raise StatusError(
        403,
        FORBIDDEN,
        "The client's scopes do not allow this request; it needs one of: "
        + ", ".join(sorted(accepted))
        + ".",
    )
