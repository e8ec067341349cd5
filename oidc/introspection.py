"""Token introspection, RFC 7662, for confidential clients of the same tenant.

A resource server (or the client itself) learns whether a token is active and what it
grants. Public clients may not introspect; a token of another tenant answers
``{"active": false}`` like an unknown one (§2.2).
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from oidc.models import Client, Token
from server.domain import authorization, secrets


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        session = self.server.session
        row = authorization.find_token(session, token_string, token_type_hint)
        if row is None:
            return None
        refresh = row.refresh_digest == secrets.token_digest(token_string)
        return Token(row, authorization.token_client(session, row), is_refresh=refresh)

    def check_permission(self, token: Token, client: Client, request: Any) -> bool:
        return not client.public and token.row.tenant_id == client.row.tenant_id

    def introspect_token(self, token: Token) -> dict[str, Any]:
        row = token.row
        refresh = token.is_refresh
        if not authorization.token_is_active(self.server.session, row, refresh=refresh):
            return {"active": False}
        expires = row.refresh_expires_at if refresh else row.expires_at
        payload: dict[str, Any] = {
            "active": True,
            "scope": row.scope,
            "client_id": token.client.client_id if token.client else None,
            "token_type": "refresh_token" if refresh else "Bearer",
            "iat": int(row.issued_at.timestamp()),
            "iss": self.server.issuer,
        }
        if expires is not None:
            payload["exp"] = int(expires.timestamp())
        if row.user_id:
            payload["sub"] = row.user_id
        if token.client:
            payload["aud"] = token.client.client_id
        return payload
