"""Rollcall as a relying party of a district's upstream OpenID Connect provider (issue 17).

Protocol glue only, through Authlib's httpx client and joserfc:

- discovery (OpenID Connect Discovery 1.0 §4): ``{issuer}/.well-known/openid-configuration``,
  whose ``issuer`` must equal the configured one (§4.3);
- the authorization code flow (OIDC Core §3.1) with PKCE ``S256`` (RFC 7636), ``state`` and
  ``nonce``;
- ID token validation (OIDC Core §3.1.3.7): signature against the upstream JWKS, ``iss``,
  ``aud``, ``exp`` and ``nonce``.

Every failure is an :class:`UpstreamUnavailable` or :class:`UpstreamRefused` with a message for
the person at the sign-in page; the rules (who may sign in) live in
:mod:`server.domain.upstream_signin`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from server import wirejson
from server.domain.upstream_signin import Flow, UpstreamProvider

TIMEOUT = 10.0
ID_TOKEN_ALGORITHMS = ["RS256", "ES256", "PS256", "EdDSA"]


class UpstreamUnavailable(Exception):
    """The upstream cannot be reached or answered something unusable."""


class UpstreamRefused(Exception):
    """The upstream (or its answer) refused the sign-in: bad token, wrong key, error."""


@dataclass(frozen=True)
class Metadata:
    """The endpoints of an upstream, from its discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


def _client(provider: UpstreamProvider, redirect_uri: str) -> OAuth2Client:
    return OAuth2Client(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        scope=provider.scopes,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=TIMEOUT,
    )


def _get_json(url: str) -> dict[str, Any]:
    try:
        with OAuth2Client(timeout=TIMEOUT) as client:
            response = client.request("GET", url, withhold_token=True)
    except httpx2.HTTPError as error:  # connection refused, timeout, a broken answer
        raise UpstreamUnavailable(f"{url} cannot be reached ({type(error).__name__}).") from None
    if response.status_code != 200:
        raise UpstreamUnavailable(f"{url} answered HTTP {response.status_code}.")
    try:
        body = wirejson.loads(response.content)
    except ValueError:
        raise UpstreamUnavailable(f"{url} did not answer JSON.") from None
    if not isinstance(body, dict):
        raise UpstreamUnavailable(f"{url} did not answer a JSON object.")
    return body


def discover(issuer: str) -> Metadata:
    """The upstream's endpoints (Discovery §4); its ``issuer`` must be the one configured.

    :raises UpstreamUnavailable: unreachable, not a discovery document, another issuer.
    """
    issuer = issuer.rstrip("/")
    document = _get_json(issuer + "/.well-known/openid-configuration")
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        raise UpstreamUnavailable(
            f"The discovery document names issuer {document.get('issuer')!r}, not {issuer!r}."
        )
    try:
        return Metadata(
            issuer=issuer,
            authorization_endpoint=str(document["authorization_endpoint"]),
            token_endpoint=str(document["token_endpoint"]),
            jwks_uri=str(document["jwks_uri"]),
        )
    except KeyError as missing:
        raise UpstreamUnavailable(f"The discovery document has no {missing}.") from None


def authorization_url(
    provider: UpstreamProvider, metadata: Metadata, flow: Flow, redirect_uri: str, hint: str
) -> str:
    """Where to send the browser: the upstream's authorization endpoint with PKCE and nonce."""
    extra = {"login_hint": hint} if hint else {}
    with _client(provider, redirect_uri) as client:
        url, _state = client.create_authorization_url(
            metadata.authorization_endpoint,
            state=flow.state,
            code_verifier=flow.code_verifier,
            nonce=flow.nonce,
            **extra,
        )
    return str(url)


def redeem(provider: UpstreamProvider, flow: Flow, code: str, redirect_uri: str) -> dict[str, Any]:
    """Exchange the code and return the verified ID token's claims (Core §3.1.3.7).

    :raises UpstreamUnavailable: the token endpoint or JWKS cannot be reached.
    :raises UpstreamRefused: the code is refused, or the ID token fails verification.
    """
    try:
        with _client(provider, redirect_uri) as client:
            token = client.fetch_token(
                flow.token_endpoint,
                code=code,
                code_verifier=flow.code_verifier,
                grant_type="authorization_code",
            )
    except OAuthError as error:
        raise UpstreamRefused(f"The code was refused ({error.error}).") from None
    except httpx2.HTTPError as error:
        raise UpstreamUnavailable(
            f"The token endpoint cannot be reached ({type(error).__name__})."
        ) from None
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise UpstreamRefused("The upstream sent no ID token.")
    return verify_id_token(provider, flow, id_token)


def verify_id_token(provider: UpstreamProvider, flow: Flow, id_token: str) -> dict[str, Any]:
    """Signature against the upstream JWKS, then ``iss``, ``aud``, ``exp`` and ``nonce``."""
    keys = _get_json(flow.jwks_uri)
    try:
        key_set = KeySet.import_key_set(keys)  # type: ignore[arg-type]
        token = jwt.decode(id_token, key_set, algorithms=ID_TOKEN_ALGORITHMS)
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": provider.issuer},
            aud={"essential": True, "value": provider.client_id},
            exp={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": flow.nonce},
        ).validate(token.claims)
    except (JoseError, ValueError) as error:
        raise UpstreamRefused(f"The ID token failed verification ({error}).") from None
    return dict(token.claims)
