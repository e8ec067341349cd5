"""Bearer tokens (stored as digests) and the box that encrypts temporary passwords.

Tokens are 256-bit random values with a short readable prefix (``rc_``) so a leaked token is
easy to recognise in a log or a scanner; only their SHA-256 digest is stored.
Temporary passwords are encrypted with AES-256-GCM under a key derived from the server secret
by HKDF, and bound to their user id as associated data, so a ciphertext copied to another row
does not decrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TOKEN_PREFIX = "rc_"
_NONCE_BYTES = 12


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_hint(token: str) -> str:
    """What is shown of a token after creation: its prefix and last four characters."""
    return f"{token[:3]}…{token[-4:]}"


def derive_key(secret_key: str, purpose: str, length: int = 32) -> bytes:
    """A purpose-bound key from the server secret (HKDF-SHA256)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=None, info=f"rollcall:{purpose}".encode()
    ).derive(secret_key.encode())


def sign(secret_key: str, purpose: str, message: bytes) -> str:
    return hmac.new(derive_key(secret_key, purpose), message, hashlib.sha256).hexdigest()


class SecretBox:
    """AES-GCM encryption of short secrets, each bound to a record id.

    ``secret_key`` is the server secret, or a key ring: the current key first, then old ones
    (``ROLLCALL_OLD_SECRET_KEYS``). Sealing always uses the current key; opening tries each key
    in turn, so values sealed before a key change stay readable until ``rollcall secrets
    rotate`` re-seals them (:meth:`reseal`).

    :raises cryptography.exceptions.InvalidTag: (from :meth:`open`) no key of the ring opens it.
    """

    def __init__(
        self, secret_key: str | Sequence[str], purpose: str = "temporary-password"
    ) -> None:
        ring = [secret_key] if isinstance(secret_key, str) else list(secret_key)
        self._ring = [AESGCM(derive_key(key, purpose)) for key in ring]

    def seal(self, plaintext: str, bound_to: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._ring[0].encrypt(nonce, plaintext.encode(), bound_to.encode())

    def open(self, sealed: bytes, bound_to: str) -> str:
        return self._open(sealed, bound_to)[0]

    def reseal(self, sealed: bytes, bound_to: str) -> bytes | None:
        """The value sealed under the current key, or None if it already is."""
        plaintext, index = self._open(sealed, bound_to)
        return None if index == 0 else self.seal(plaintext, bound_to)

    def _open(self, sealed: bytes, bound_to: str) -> tuple[str, int]:
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        for index, aead in enumerate(self._ring):
            try:
                return aead.decrypt(nonce, ciphertext, bound_to.encode()).decode(), index
            except InvalidTag:
                continue
        raise InvalidTag()
