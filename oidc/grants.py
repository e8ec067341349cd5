"""The grants of Rollcall's authorization server, extended the way Authlib intends.

- ``authorization_code`` (RFC 6749 §4.1) with PKCE (RFC 7636) restricted to ``S256`` and
  required for public clients, and OpenID Connect (Core §3.1) through ``OpenIDCode``.
- ``refresh_token`` (RFC 6749 §6) rotating on every use; see
  :mod:`server.domain.authorization` for reuse detection.
- ``client_credentials`` (RFC 6749 §4.4) for OneRoster API clients, with their scopes.
"""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oidc.core import OpenIDCode
from joserfc.jwk import ECKey, RSAKey

from oidc.models import Client, Code, Token
from server.db import utcnow
from server.domain import authorization, keys

ID_TOKEN_SECONDS = 3600
ENDPOINT_AUTH = ["client_secret_basic", "client_secret_post", "none"]


class S256CodeChallenge(CodeChallenge):
    """PKCE with ``S256`` only (Authlib also allows ``plain``), required for public clients."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": compare_s256_code_challenge}

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        request = grant.request
        challenge = request.payload.data.get("code_challenge")
        method = request.payload.data.get("code_challenge_method")
        if request.client is not None and request.client.public and not challenge:
            raise InvalidRequestError(
                "Public clients must send a 'code_challenge' (PKCE with S256)."
            )
        if challenge and method != "S256":
            raise InvalidRequestError("Only 'code_challenge_method=S256' is supported.")
        super().validate_code_challenge(grant, redirect_uri)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ENDPOINT_AUTH

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        authorization.save_code(
            self.server.session,
            request.client.row,
            request.user,
            code,
            authorization.CodeRequest(
                redirect_uri=request.payload.redirect_uri or "",
                scope=request.scope or "",
                nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                auth_time=getattr(request, "auth_time", None) or utcnow(),
                amr=getattr(request, "amr", None),
                acr=getattr(request, "acr", None),
            ),
        )

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        row = authorization.find_code(self.server.session, client.row, code)
        return Code(row) if row is not None else None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        authorization.spend_code(self.server.session, authorization_code.row)

    def authenticate_user(self, authorization_code: Code) -> Any:
        return authorization.code_user(self.server.session, authorization_code.row)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ENDPOINT_AUTH
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        row = authorization.find_refresh_token(self.server.session, refresh_token)
        return Token(row) if row is not None else None

    def authenticate_user(self, refresh_token: Token) -> Any:
        return authorization.token_user(self.server.session, refresh_token.row)

    def revoke_old_credential(self, refresh_token: Token) -> None:
        authorization.retire_refresh_token(self.server.session, refresh_token.row)


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class RollcallOpenIDCode(OpenIDCode):
    """ID tokens signed with the current database key of the client's algorithm."""

    def __init__(self, server: Any) -> None:
        super().__init__(require_nonce=False)
        self.server = server
        self._keys: dict[str, RSAKey | ECKey] = {}

    def _key(self, client: Client) -> RSAKey | ECKey:
        alg = self.get_client_algorithm(client)
        if alg not in self._keys:
            box = keys.signing_box(self.server.context.settings.secret_keys)
            self._keys[alg] = keys.signing_key(self.server.session, box, alg)
        return self._keys[alg]

    def get_client_algorithm(self, client: Client) -> str:
        return client.id_token_signed_response_alg or keys.DEFAULT_ALGORITHM

    def resolve_client_private_key(self, client: Client) -> RSAKey | ECKey:
        return self._key(client)

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": self.get_client_algorithm(client), "kid": str(self._key(client).kid)}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.server.issuer,
            "aud": [client.get_client_id()],
            "iat": now,
            "exp": now + ID_TOKEN_SECONDS,
        }

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        if request.client is None:
            return False
        return authorization.nonce_used(self.server.session, request.client.row, nonce)

    def generate_user_info(self, user: Any, scope: str) -> dict[str, Any]:
        return authorization.user_claims(self.server.session, user, set(scope.split()))


def register(server: Any) -> None:
    """Register every grant on ``server`` (an :class:`oidc.server.AuthorizationServer`)."""
    server.register_grant(
        AuthorizationCodeGrant, [S256CodeChallenge(required=True), RollcallOpenIDCode(server)]
    )
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
