"""The UserInfo endpoint, OpenID Connect Core §5.3: GET or POST, token in the
``Authorization`` header (RFC 6750 §2.1) or in a form body (§2.2), not both.

Access is guarded by Authlib's ``ResourceProtector`` with a bearer-token validator over
Rollcall's tokens: 401 and the bare ``Bearer`` challenge without a token, 401 ``invalid_token``
for an unknown, expired or revoked token (or one of a deactivated user), 403
``insufficient_scope`` for a token without ``openid``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.oauth2 import OAuth2Error, ResourceProtector
from authlib.oauth2.rfc6749.errors import MissingAuthorizationError
from authlib.oauth2.rfc6750 import BearerTokenValidator, InvalidTokenError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from oidc.models import Token
from oidc.server import HttpResponse
from oidc.web import read_request, respond
from server.context import AppContext
from server.domain import authorization
from server.domain.secrets import token_digest

REALM = "userinfo"


class AccessTokenValidator(BearerTokenValidator):
    """RFC 6750 bearer tokens, checked against the token table of one unit of work."""

    def __init__(self, session: Session) -> None:
        super().__init__(realm=REALM)
        self.session = session

    def authenticate_token(self, token_string: str) -> Token | None:
        row = authorization.find_token(self.session, token_string, "access_token")
        if row is None or row.access_digest != token_digest(token_string):
            return None
        return Token(row)

    def validate_token(self, token: Token | None, scopes: Any, request: Any) -> None:
        super().validate_token(token, scopes, request)
        assert token is not None
        if token.row.user_id is None or not authorization.token_is_active(
            self.session, token.row, refresh=False
        ):
            raise InvalidTokenError(realm=REALM)


@dataclass(frozen=True)
class _BearerRequest:
    headers: dict[str, str]


def user_info(context: AppContext, header: str | None, body_token: str | None) -> HttpResponse:
    if header and body_token:
        error: OAuth2Error = InvalidTokenError(
            description="Send the access token once.", realm=REALM
        )
        error.status_code = 400
        error.error = "invalid_request"
        return HttpResponse(*error())
    headers = {"Authorization": header or (f"Bearer {body_token}" if body_token else "")}
    with context.database.session() as session:
        protector = ResourceProtector()
        protector.register_token_validator(AccessTokenValidator(session))
        try:
            token = protector.validate_request(["openid"], _BearerRequest(headers))
        except MissingAuthorizationError:
            return _challenge()
        except OAuth2Error as failure:
            return HttpResponse(*failure())
        user = authorization.token_user(session, token.row)
        if user is None:
            return HttpResponse(*InvalidTokenError(realm=REALM)())
        claims = authorization.user_claims(session, user, set(token.get_scope().split()))
        return HttpResponse(
            200, claims, [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        )


def _challenge() -> HttpResponse:
    """RFC 6750 §3: a request without authentication this endpoint takes gets the bare
    challenge, with no error code (Authlib would say ``missing_authorization``, which no spec
    defines)."""
    body = {"error_description": "Send the access token in the Authorization header."}
    headers = [
        ("Content-Type", "application/json"),
        ("WWW-Authenticate", f'Bearer realm="{REALM}"'),
    ]
    return HttpResponse(401, body, headers)


async def userinfo(request: Request) -> Response:
    context: AppContext = request.app.state.context
    http = await read_request(request, context)
    header = http.headers.get("authorization")
    body_token = dict(http.form).get("access_token") if http.method == "POST" else None
    outcome = await run_in_threadpool(user_info, context, header, body_token)
    return respond(context, outcome)
