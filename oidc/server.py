"""The Starlette integration of Authlib's authorization server (RFC 6749 core).

Authlib ships integrations for Flask and Django only; this one follows
``authlib/integrations/flask_oauth2/authorization_server.py``: it overrides the adapters
(``query_client``, ``save_token``, ``create_oauth2_request``, ``create_json_request``,
``handle_response``, ``send_signal``) and leaves the protocol to Authlib's core.

Authlib's core is synchronous and the database session is too, so route modules read the
request body on the event loop (``await request.form()``), turn it into a plain
:class:`HttpRequest`, and run everything below in a worker thread with one unit of work
(:func:`run_server`). A server instance lives for one request and holds that request's
session, so nothing is shared between threads.
"""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from authlib.oauth2 import AuthorizationServer as _AuthorizationServer
from authlib.oauth2.rfc6749 import (
    InvalidScopeError,
    JsonPayload,
    JsonRequest,
    OAuth2Payload,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.util import scope_to_list
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from server.context import AppContext
from server.domain import authorization

T = TypeVar("T")

ACCESS_TOKEN_SECONDS = 3600
CLIENT_CREDENTIALS_SECONDS = 3600


@dataclass(frozen=True)
class HttpRequest:
    """What the protocol needs of an HTTP request: no framework object crosses into threads.

    ``uri`` is built on the issuer, which is what clients see behind a proxy.
    """

    method: str
    uri: str
    headers: Mapping[str, str]
    query: list[tuple[str, str]] = field(default_factory=list)
    form: list[tuple[str, str]] = field(default_factory=list)
    cookies: Mapping[str, str] = field(default_factory=dict)
    address: str | None = None

    def values(self) -> dict[str, str]:
        """Query and form parameters together, the form winning (first value of each)."""
        merged: dict[str, str] = {}
        for key, value in [*self.form, *self.query]:
            merged.setdefault(key, value)
        return merged


@dataclass(frozen=True)
class HttpResponse:
    """A protocol answer: status, body (dict for JSON, str otherwise) and headers."""

    status: int
    body: Any
    headers: list[tuple[str, str]]


class _Payload(OAuth2Payload):
    def __init__(self, request: HttpRequest) -> None:
        self._data = request.values()
        lists: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in [*request.query, *request.form]:
            lists[key].append(value)
        self._datalist = lists

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):
    """Authlib's request wrapper over an :class:`HttpRequest` (cf. ``FlaskOAuth2Request``)."""

    def __init__(self, request: HttpRequest) -> None:
        super().__init__(method=request.method, uri=request.uri, headers=request.headers)
        self.http = request
        self.payload = _Payload(request)
        self._args = dict(request.query)
        self._form = dict(request.form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _JsonPayload(JsonPayload):
    def __init__(self, request: HttpRequest) -> None:
        self._request = request

    @property
    def data(self) -> Any:
        return dict(self._request.form)


class StarletteJsonRequest(JsonRequest):
    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request.method, request.uri, request.headers)
        self.payload = _JsonPayload(request)


class AuthorizationServer(_AuthorizationServer):
    """Rollcall's one OAuth 2 authorization server, bound to one unit of work.

    Serves ``authorization_code`` and ``refresh_token`` for OIDC clients and
    ``client_credentials`` for OneRoster API clients; see :mod:`oidc.grants`.
    """

    def __init__(self, context: AppContext, session: Session) -> None:
        super().__init__()
        self.context = context
        self.session = session
        self.register_token_generator("default", self.generate_bearer_token)

    @property
    def issuer(self) -> str:
        return self.context.settings.issuer

    def query_client(self, client_id: str) -> Any:
        from oidc.models import Client

        row = authorization.find_client(self.session, client_id)
        if row is None:
            return None
        return Client(row, authorization.id_token_algorithm(self.session, row))

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        family_id = None
        auth_time = None
        if request.authorization_code is not None:
            family_id = request.authorization_code.row.family_id
            auth_time = request.authorization_code.row.auth_time
        elif request.refresh_token is not None:
            family_id = request.refresh_token.row.family_id
            auth_time = request.refresh_token.row.auth_time
        authorization.store_issued_token(
            self.session,
            request.client.row,
            token,
            user=request.user,
            family_id=family_id,
            auth_time=auth_time,
        )

    def generate_bearer_token(
        self,
        grant_type: str,
        client: Any,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """Opaque random tokens; a refresh token only with ``offline_access`` (OIDC Core §11)."""
        scope = client.get_allowed_scope(scope)
        if scope is None:
            raise InvalidScopeError()
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": secrets.token_urlsafe(32),
            "expires_in": expires_in
            or (
                CLIENT_CREDENTIALS_SECONDS
                if grant_type == "client_credentials"
                else ACCESS_TOKEN_SECONDS
            ),
        }
        # A refresh always rotates: only offline_access grants hold refresh tokens at all.
        offline = "offline_access" in scope_to_list(scope or "")
        if include_refresh_token and (offline or grant_type == "refresh_token"):
            token["refresh_token"] = secrets.token_urlsafe(48)
        if scope:
            token["scope"] = scope
        return token

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return StarletteOAuth2Request(request)

    def create_json_request(self, request: Any) -> JsonRequest:
        return StarletteJsonRequest(request)

    # Authlib's own methods, typed with what this server's handle_response makes of them.
    def handle_error_response(self, request: Any, error: Any) -> HttpResponse:
        return cast(HttpResponse, super().handle_error_response(request, error))

    def create_authorization_response(
        self, request: Any = None, grant_user: Any = None, grant: Any = None
    ) -> HttpResponse:
        return cast(HttpResponse, super().create_authorization_response(request, grant_user, grant))

    def handle_response(self, status_code: int, payload: Any, headers: Any) -> HttpResponse:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        return HttpResponse(status_code, payload, list(headers or []))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        # Audit happens in the domain; Authlib's signals carry nothing we need to act on.
        return None


def build_server(context: AppContext, session: Session) -> AuthorizationServer:
    """An authorization server with every grant and endpoint Rollcall serves."""
    from oidc import grants, introspection, revocation

    server = AuthorizationServer(context, session)
    grants.register(server)
    server.register_endpoint(revocation.Revocation)
    server.register_endpoint(introspection.Introspection)
    return server


async def run_server(
    context: AppContext, work: Callable[[AuthorizationServer], T]
) -> T | HttpResponse:
    """Run ``work`` in a worker thread with a fresh server and one unit of work."""

    def call() -> T | HttpResponse:
        try:
            with context.database.session() as session:
                return work(build_server(context, session))
        except ValueError:
            return malformed_request()

    return await run_in_threadpool(call)


def malformed_request() -> HttpResponse:
    """Authlib refuses to build an error whose description would echo characters RFC 6749
    §5.2 forbids (a quote or backslash in a parameter): that is bad input, not a crash."""
    body = {"error": "invalid_request", "error_description": "Malformed request parameters."}
    return HttpResponse(400, body, [("Content-Type", "application/json")])
