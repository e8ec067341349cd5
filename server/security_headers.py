"""Browser hardening headers on every answer (issue 11: HTTP hardening).

- every response: ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``
  (an activation page's URL is a credential: no Referer may carry it elsewhere), plus HSTS
  when the public issuer is https;
- HTML pages also get a Content-Security-Policy that allows scripts from Rollcall's own
  static files only (no inline script or handler runs, so an injected ``<script>`` is inert),
  ``frame-ancestors 'none'`` (no clickjacking of the sign-in or admin pages) and
  ``X-Frame-Options: DENY`` for older browsers. Inline ``<style>`` stays allowed: the sheets
  and badges style themselves and CSS cannot run code.

``form-action`` is left out on purpose: browsers apply it to the redirect that follows a
sign-in form, which is the relying party's own redirect URI on another origin.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeadersMiddleware:
    """Adds the headers above to every HTTP response; ``https`` turns HSTS on."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._harden(MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _harden(self, headers: MutableHeaders) -> None:
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if self.https:
            headers.setdefault("Strict-Transport-Security", HSTS)
        if headers.get("content-type", "").startswith("text/html"):
            headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
            headers["X-Frame-Options"] = "DENY"
