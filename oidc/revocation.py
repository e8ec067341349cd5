"""Token revocation, RFC 7009.

Revoking a refresh token ends its whole family (the access tokens issued with it too, as
§2.1 recommends); revoking an access token ends that token. Public clients revoke with their
``client_id`` alone (§5). Unknown tokens answer 200 (§2.2).
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc7009 import RevocationEndpoint

from oidc.models import Token
from server.domain import authorization, secrets


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        row = authorization.find_token(self.server.session, token_string, token_type_hint)
        if row is None:
            return None
        refresh = row.refresh_digest == secrets.token_digest(token_string)
        return Token(row, is_refresh=refresh)

    def revoke_token(self, token: Token, request: Any) -> None:
        authorization.revoke_token(self.server.session, token.row, whole_family=token.is_refresh)
