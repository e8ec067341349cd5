"""OAuth 1.0a request signatures (RFC 5849 §3.4) as OneRoster 1.1 consumers send them.

The signature covers the method, the URL without its query, and every query parameter plus the
``oauth_*`` parameters (from the ``Authorization: OAuth`` header or the query), sorted. HMAC-SHA1
and HMAC-SHA256 are accepted; the timestamp must be within five minutes of our clock and each
nonce is accepted once (:func:`server.domain.oauth1.remember_nonce`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import unquote
from urllib.request import parse_http_list

from authlib.oauth1.rfc5849.signature import construct_base_string
from authlib.oauth1.rfc5849.util import escape

DIGESTS = {"HMAC-SHA1": hashlib.sha1, "HMAC-SHA256": hashlib.sha256}
REQUIRED = (
    "oauth_consumer_key",
    "oauth_signature_method",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_signature",
)


class SignatureError(Exception):
    """The request is not a well-formed OAuth 1.0a signed request."""


@dataclass(frozen=True)
class SignedRequest:
    """The OAuth parameters of a request and everything its signature covers."""

    method: str
    url: str
    params: list[tuple[str, str]]
    oauth: dict[str, str]

    @property
    def consumer_key(self) -> str:
        return self.oauth["oauth_consumer_key"]

    @property
    def nonce(self) -> str:
        return self.oauth["oauth_nonce"]

    @property
    def timestamp(self) -> int:
        try:
            return int(self.oauth["oauth_timestamp"])
        except ValueError:
            raise SignatureError("oauth_timestamp is not a number.") from None


def is_signed(authorization: str, query: list[tuple[str, str]]) -> bool:
    return authorization[:6].lower() == "oauth " or any(k == "oauth_signature" for k, _ in query)


def parse(method: str, url: str, authorization: str, query: list[tuple[str, str]]) -> SignedRequest:
    """Collect the signed parameters. ``url`` is the request URL without its query.

    :raises SignatureError:
    """
    header: dict[str, str] = {}
    if authorization[:6].lower() == "oauth ":
        for item in parse_http_list(authorization[6:]):
            name, _, value = item.strip().partition("=")
            if name.strip().lower() == "realm":
                continue
            header[name.strip()] = unquote(value.strip().strip('"'))
    params = list(query) + list(header.items())
    oauth = {k: v for k, v in params if k.startswith("oauth_")}
    missing = [name for name in REQUIRED if not oauth.get(name)]
    if missing:
        raise SignatureError(f"Missing OAuth parameter(s): {', '.join(missing)}.")
    if oauth["oauth_signature_method"] not in DIGESTS:
        raise SignatureError("Use oauth_signature_method HMAC-SHA256 or HMAC-SHA1.")
    return SignedRequest(method.upper(), url, params, oauth)


def signature(request: SignedRequest, consumer_secret: str) -> str:
    """The expected base64 signature of ``request`` (no token secret: two-legged OAuth)."""
    base = construct_base_string(request.method, request.url, request.params)
    key = f"{escape(consumer_secret)}&"
    digest = DIGESTS[request.oauth["oauth_signature_method"]]
    mac = hmac.new(key.encode(), base.encode(), digest).digest()
    return base64.b64encode(mac).decode()


def verify(request: SignedRequest, consumer_secret: str) -> bool:
    return hmac.compare_digest(
        signature(request, consumer_secret), request.oauth["oauth_signature"]
    )
