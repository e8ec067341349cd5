"""The tenant's pseudonym key: what purged users' pseudonyms and typed-name hashes are keyed by.

Pseudonyms (``purged-…``, :func:`server.domain.erasure.pseudonym`) and the keyed hashes of typed
usernames (:func:`server.domain.signin.typed_name_digest`) must stay the same for as long as the
data they stand in for is kept: one purged student keeps one pseudonym in the log, and a throttle
keeps counting the same typed name. So they are keyed not by the server secret, which rotates,
but by a random per-tenant key generated once (on first use), stored sealed under the key ring
in ``tenants.sealed_pseudonym_key`` and re-sealed, never regenerated, by ``rollcall secrets
rotate`` (:mod:`server.domain.rotation`). Deleting the tenant deletes the key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.orm import Session

from server.db import Tenant
from server.domain.secrets import SecretBox
from server.errors import NotFound

PURPOSE = "pseudonym-key"


def pseudonym_box(keys: str | Sequence[str]) -> SecretBox:
    """The box the pseudonym keys are sealed in, each bound to its tenant id."""
    return SecretBox(keys, PURPOSE)


def tenant_key(session: Session, tenant_id: str, keys: str | Sequence[str]) -> bytes:
    """The tenant's pseudonym key, generated and sealed on first use.

    Two processes generating at once both write only where no key is stored yet, and both then
    read the one that won.

    :raises NotFound: no such tenant.
    """
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.")
    box = pseudonym_box(keys)
    if tenant.sealed_pseudonym_key is None:
        sealed = box.seal(secrets.token_hex(32), tenant_id)
        session.execute(
            update(Tenant)
            .where(Tenant.id == tenant_id, Tenant.sealed_pseudonym_key.is_(None))
            .values(sealed_pseudonym_key=sealed)
            .execution_options(synchronize_session=False)
        )
        session.refresh(tenant, ["sealed_pseudonym_key"])
    assert tenant.sealed_pseudonym_key is not None
    return bytes.fromhex(box.open(tenant.sealed_pseudonym_key, tenant_id))


def keyed_hash(key: bytes, purpose: str, message: str) -> str:
    """HMAC-SHA256 of ``message`` under ``key``, separated by ``purpose`` (hex)."""
    return hmac.new(key, f"{purpose}\x00{message}".encode(), hashlib.sha256).hexdigest()
