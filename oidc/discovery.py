"""OpenID Provider metadata, OpenID Connect Discovery 1.0 §3 (and RFC 8414).

Served at ``/.well-known/openid-configuration``; every URL is built on ``ROLLCALL_ISSUER``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from oidc.models import OIDC_SCOPES
from server.context import AppContext
from server.domain.keys import ALGORITHMS

CLAIMS = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "preferred_username",
    "updated_at",
    "email",
    "email_verified",
    "roles",
    "grades",
    "school_ids",
    "class_ids",
]


def provider_metadata(issuer: str) -> dict[str, Any]:
    """The discovery document for ``issuer``."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "jwks_uri": f"{issuer}/oauth/jwks",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "end_session_endpoint": f"{issuer}/oauth/logout",
        "scopes_supported": list(OIDC_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(ALGORITHMS),
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": CLAIMS,
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
        "prompt_values_supported": ["none", "login"],
        "ui_locales_supported": ["en"],
        "claim_types_supported": ["normal"],
    }


async def openid_configuration(request: Request) -> Response:
    context: AppContext = request.app.state.context
    return JSONResponse(
        provider_metadata(context.settings.issuer),
        headers={"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"},
    )
