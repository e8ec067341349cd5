"""The OpenID Connect provider and the student sign-in pages (SPEC §6, §7, §8).

One OAuth 2 authorization server (Authlib's core, Starlette glue in :mod:`oidc.server`)
serves OIDC relying parties and OneRoster API clients. Modules follow the specs:
:mod:`oidc.discovery`, :mod:`oidc.jwks`, :mod:`oidc.authorize`, :mod:`oidc.token`,
:mod:`oidc.userinfo`, :mod:`oidc.revocation` (RFC 7009), :mod:`oidc.introspection`
(RFC 7662), :mod:`oidc.logout`; sign-in pages in :mod:`oidc.login`, :mod:`oidc.badge` and
:mod:`oidc.activation`; district SSO sign-in through an upstream provider in
:mod:`oidc.upstream` (relying-party side) and :mod:`oidc.upstream_login` (pages).
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route


def routes() -> list[BaseRoute]:
    """The provider's routes, to mount at the root of the app."""
    from oidc import (
        activation,
        authorize,
        badge,
        discovery,
        jwks,
        login,
        logout,
        token,
        upstream_login,
        userinfo,
    )

    both = ["GET", "POST"]
    return [
        Route("/.well-known/openid-configuration", discovery.openid_configuration),
        Route("/oauth/jwks", jwks.jwks),
        Route("/oauth/authorize", authorize.authorize, methods=both),
        Route("/oauth/token", token.token, methods=["POST"]),
        Route("/oauth/userinfo", userinfo.userinfo, methods=both),
        Route("/oauth/revoke", token.revoke, methods=["POST"]),
        Route("/oauth/introspect", token.introspect, methods=["POST"]),
        Route("/oauth/logout", logout.logout, methods=both),
        Route("/login", login.login, methods=both),
        Route("/login/change", login.change_password, methods=both),
        Route("/login/done", login.done),
        Route("/login/upstream/callback", upstream_login.callback_route),
        Route("/login/upstream/{connection}", upstream_login.start_route),
        Route("/login/badge", badge.badge_login, methods=both),
        Route("/activate/{token}", activation.activate, methods=both),
    ]
