"""Authlib's model interfaces (RFC 6749 ``ClientMixin``, ``TokenMixin``, OIDC
``AuthorizationCodeMixin``) over Rollcall's records.

The records stay plain SQLAlchemy rows in ``server/db``; these thin wrappers only answer
Authlib's questions about them.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list
from authlib.oidc.core import AuthorizationCodeMixin

from server.db import AuthorizationCode, OAuthClient, OAuthClientKind, OAuthToken, utcnow
from server.domain import oauth
from server.domain.authorization import client_kind_allows

OIDC_SCOPES = ("openid", "profile", "email", "roster", "offline_access")


class Client(ClientMixin):
    """An ``OAuthClient`` as Authlib sees it. Redirect URIs are matched exactly."""

    def __init__(self, row: OAuthClient, id_token_alg: str = "RS256") -> None:
        self.row = row
        self.id_token_signed_response_alg = id_token_alg

    @property
    def public(self) -> bool:
        return bool(self.row.public)

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.row.redirect_uris or []
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The granted part of ``scope``; API clients get all their scopes when they name none,
        and None (``invalid_scope``) when they name only scopes they do not have."""
        api = self.row.kind == OAuthClientKind.API
        allowed = list(self.row.scopes or []) if api else list(OIDC_SCOPES)
        if not scope:
            return list_to_scope(allowed) if api else ""
        granted = [s for s in scope_to_list(scope) if s in allowed]
        if api and not granted:
            return None
        return str(list_to_scope(granted))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in (self.row.redirect_uris or [])

    def check_client_secret(self, client_secret: str) -> bool:
        return oauth.check_client_secret(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return self.row.kind == OAuthClientKind.OIDC and response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return client_kind_allows(self.row, grant_type)


class Code(AuthorizationCodeMixin):
    """An ``AuthorizationCode`` row; ``code_challenge`` attributes serve RFC 7636."""

    def __init__(self, row: AuthorizationCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return int(self.row.auth_time.timestamp())

    def get_acr(self) -> str | None:
        return self.row.acr

    def get_amr(self) -> list[str] | None:
        return self.row.amr.split() if self.row.amr else None


class Token(TokenMixin):
    """An ``OAuthToken`` row, as refresh, revocation and introspection see it."""

    def __init__(
        self, row: OAuthToken, client: OAuthClient | None = None, *, is_refresh: bool = False
    ) -> None:
        self.row = row
        self.client = client
        self.is_refresh = is_refresh

    def check_client(self, client: Client) -> bool:
        return self.row.client_id == client.row.id

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return int((self.row.expires_at - self.row.issued_at).total_seconds())

    def is_expired(self) -> bool:
        if self.is_refresh:
            expires = self.row.refresh_expires_at
            return expires is not None and expires <= utcnow()
        return self.row.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None
