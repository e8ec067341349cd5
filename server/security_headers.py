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
_HTML_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
]
_HTML_NAMES = {name for name, _ in _HTML_HEADERS}


class SecurityHeadersMiddleware:
    """Adds the headers above to every HTTP response; ``https`` turns HSTS on."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https
        self._always = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if https:
            self._always.append((b"strict-transport-security", HSTS.encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._harden(list(message.get("headers", ())))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _harden(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """``headers`` (raw, lower-case names) with the hardening headers: the first three
        only where the app did not set them, the HTML ones always."""
        present = {name for name, _ in headers}
        html = any(
            name == b"content-type" and value.startswith(b"text/html") for name, value in headers
        )
        if html:
            headers = [pair for pair in headers if pair[0] not in _HTML_NAMES]
        headers += [pair for pair in self._always if pair[0] not in present]
        if html:
            headers += _HTML_HEADERS
        return headers
