"""Signed staff sessions and CSRF tokens for the admin UI.

The session lives in an HMAC-signed cookie (``staff id | csrf token | expiry``), so any app
process can check it without shared memory; the CSRF token inside it must come back with
every form post (synchroniser-token pattern).
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.responses import Response

from server.domain.secrets import sign

COOKIE_NAME = "rollcall_staff"
LIFETIME_SECONDS = 8 * 3600
_PURPOSE = "staff-session"


@dataclass(frozen=True)
class StaffSession:
    staff_id: str
    csrf: str
    expires: int
    # signed with an old key of the ring: sign it again with the current key (issue 13)
    stale: bool = field(default=False, compare=False)

    @property
    def expired(self) -> bool:
        return self.expires < int(time.time())


def new_session(staff_id: str) -> StaffSession:
    return StaffSession(staff_id, secrets.token_urlsafe(24), int(time.time()) + LIFETIME_SECONDS)


def encode(session: StaffSession, secret_key: str) -> str:
    payload = base64.urlsafe_b64encode(
        json.dumps([session.staff_id, session.csrf, session.expires]).encode()
    ).decode()
    return f"{payload}.{sign(secret_key, _PURPOSE, payload.encode())}"


def decode(cookie: str | None, secret_keys: str | Sequence[str]) -> StaffSession | None:
    """The session in a cookie, or None when missing, tampered with or expired.

    ``secret_keys`` is the key ring (``Settings.secret_keys``): a cookie signed with an old
    key is still good (``ROLLCALL_OLD_SECRET_KEYS``), marked ``stale`` so the response signs
    it again with the current key; so ``rollcall secrets rotate`` signs nobody out.
    """
    if not cookie or "." not in cookie:
        return None
    payload, signature = cookie.rsplit(".", 1)
    ring = [secret_keys] if isinstance(secret_keys, str) else list(secret_keys)
    signer = next(
        (
            position
            for position, key in enumerate(ring)
            if hmac.compare_digest(signature, sign(key, _PURPOSE, payload.encode()))
        ),
        None,
    )
    if signer is None:
        return None
    try:
        staff_id, csrf, expires = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, TypeError):
        return None
    session = StaffSession(str(staff_id), str(csrf), int(expires), stale=signer > 0)
    return None if session.expired else session


def set_cookie(response: Response, session: StaffSession, secret_key: str, secure: bool) -> None:
    """Put ``session``, signed with the current key, on ``response``."""
    response.set_cookie(
        COOKIE_NAME,
        encode(session, secret_key),
        max_age=max(session.expires - int(time.time()), 0),
        httponly=True,
        samesite="lax",
        path="/admin",
        secure=secure,
    )


def csrf_matches(session: StaffSession, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf, submitted or "")
