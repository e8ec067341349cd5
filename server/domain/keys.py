"""ID token signing keys (OpenID Connect Core §10.1): kept in the database, rotated on demand.

Each algorithm (RS256 by default, ES256 for clients that ask for it) has one current key with
a ``kid``. ``rotate_keys`` retires the current keys and makes new ones; a retired key stays in
the published key set for :data:`RETIRED_KEY_GRACE`, longer than any ID token it signed lives,
so relying parties can still verify those tokens. Private keys are stored encrypted with a
:class:`~server.domain.secrets.SecretBox` bound to their ``kid``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from joserfc.jwk import ECKey, KeyParameters, RSAKey, import_key
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import SigningKey, utcnow
from server.domain import audit
from server.domain.actors import Actor
from server.domain.secrets import SecretBox
from server.errors import InvalidValue

ALGORITHMS = ("RS256", "ES256")
DEFAULT_ALGORITHM = "RS256"
RETIRED_KEY_GRACE = timedelta(days=1)
SECRET_PURPOSE = "signing-key"
LOADED_KEYS = 8

# Private keys already unsealed and imported, by (kid, digest of the sealed key): importing an
# RSA key checks it (most of a code exchange's time, issue 15), so each is imported once per
# process. A rotated key is a new kid; a re-sealed one (secret key rotation) a new digest.
_loaded: dict[tuple[str, str], RSAKey | ECKey] = {}
_loaded_lock = threading.Lock()


def signing_box(secret_key: str | Sequence[str]) -> SecretBox:
    """The box that seals private signing keys (a key derived for this purpose only); made
    once per key ring and process (deriving its keys was ~1 ms of every code exchange)."""
    return _box((secret_key,) if isinstance(secret_key, str) else tuple(secret_key))


@functools.lru_cache(maxsize=8)
def _box(ring: tuple[str, ...]) -> SecretBox:
    return SecretBox(ring, SECRET_PURPOSE)


def _current_row(session: Session, box: SecretBox, alg: str) -> SigningKey:
    """The current key row of ``alg``; made if missing.

    :raises InvalidValue: an algorithm we do not sign with.
    """
    if alg not in ALGORITHMS:
        raise InvalidValue(f"Unsupported signing algorithm {alg!r}.", field="alg")
    row = session.scalars(
        select(SigningKey)
        .where(SigningKey.alg == alg, SigningKey.retired_at.is_(None))
        .order_by(SigningKey.created_at.desc())
    ).first()
    return row if row is not None else _create_key(session, box, alg)


def current_key(session: Session, box: SecretBox, alg: str = DEFAULT_ALGORITHM) -> dict[str, Any]:
    """The private JWK (a dict with ``kid``) that signs new tokens with ``alg``; made if missing.

    :raises InvalidValue: an algorithm we do not sign with.
    """
    row = _current_row(session, box, alg)
    private: dict[str, Any] = json.loads(box.open(row.sealed_private_key, row.kid))
    return private


def signing_key(session: Session, box: SecretBox, alg: str = DEFAULT_ALGORITHM) -> RSAKey | ECKey:
    """The current private key of ``alg``, ready to sign (OpenID Connect Core §10.1): the row is
    read each time (so a rotation takes effect at once), the key unsealed and imported only the
    first time this process meets it.

    :raises InvalidValue: an algorithm we do not sign with.
    """
    row = _current_row(session, box, alg)
    digest = hashlib.sha256(str(row.sealed_private_key).encode()).hexdigest()
    cache_key = (row.kid, digest)
    with _loaded_lock:
        key = _loaded.get(cache_key)
    if key is None:
        loaded = import_key(json.loads(box.open(row.sealed_private_key, row.kid)))
        assert isinstance(loaded, RSAKey | ECKey)
        key = loaded
        with _loaded_lock:
            while len(_loaded) >= LOADED_KEYS:
                _loaded.pop(next(iter(_loaded)))
            _loaded[cache_key] = key
    return key


def published_keys(session: Session, box: SecretBox) -> list[dict[str, Any]]:
    """The public JWKs of the JWKS document: current keys and recently retired ones."""
    for alg in ALGORITHMS:
        _current_row(session, box, alg)
    cutoff = utcnow() - RETIRED_KEY_GRACE
    rows = session.scalars(
        select(SigningKey)
        .where((SigningKey.retired_at.is_(None)) | (SigningKey.retired_at > cutoff))
        .order_by(SigningKey.created_at.desc())
    )
    return [dict(row.public_jwk) for row in rows]


def rotate_keys(session: Session, actor: Actor, box: SecretBox) -> list[str]:
    """Retire the current keys and make new ones; returns the new ``kid`` values (audited)."""
    now = utcnow()
    for row in session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
        row.retired_at = now
    kids = [_create_key(session, box, alg).kid for alg in ALGORITHMS]
    audit.record(
        session,
        actor,
        "keys.rotate",
        target_kind="signing_key",
        detail=f"New signing keys {', '.join(kids)}; previous keys stay published for a day.",
    )
    return kids


def _create_key(session: Session, box: SecretBox, alg: str) -> SigningKey:
    kid = f"{alg.lower()}-{utcnow():%Y%m%d}-{secrets.token_hex(4)}"
    parameters: KeyParameters = {"kid": kid, "alg": alg, "use": "sig"}
    if alg == "RS256":
        key: RSAKey | ECKey = RSAKey.generate_key(2048, parameters=parameters, private=True)
    else:
        key = ECKey.generate_key("P-256", parameters=parameters, private=True)
    private = key.as_dict(private=True)
    row = SigningKey(
        kid=kid,
        alg=alg,
        sealed_private_key=box.seal(json.dumps(private), kid),
        public_jwk=key.as_dict(private=False),
    )
    session.add(row)
    session.flush()
    return row
