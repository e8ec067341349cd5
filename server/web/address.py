"""Is the configured sign-in address the one staff are using?

Print pages put the issuer (``ROLLCALL_ISSUER``, or the address ``rollcall serve`` listens
on) on paper and in QR codes. When a staff member reaches the app under another host or
port, that address may open a different server or none, so the pages say so (issue 14,
item 1) and a PDF is made only after staff confirm the address.
"""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a URL, with the scheme's default port filled in.

    >>> origin("https://Rollcall.example.org/")
    ('https', 'rollcall.example.org', 443)
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme, 0)


def address_warning(issuer: str, used: str) -> str | None:
    """A warning when ``issuer`` differs from ``used`` (the address of the request), or None."""
    if origin(issuer) == origin(used):
        return None
    return (
        f"The sign-in address printed on cards and in QR codes is {issuer}, but you are "
        f"using this server at {used.rstrip('/')}. Check that students can open {issuer}; "
        "if not, set ROLLCALL_ISSUER to the address they use and restart Rollcall."
    )
