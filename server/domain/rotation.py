"""Secret key rotation: every sealed value re-sealed under the current ``ROLLCALL_SECRET_KEY``.

Sealed values (AES-GCM, each under a key derived from the server secret for its purpose and
bound to its record id):

=======================  ======================================  ==========================
what                     where                                   bound to
=======================  ======================================  ==========================
temporary passwords      ``credentials.temporary_secret``        the user id
QR badge tokens          ``badges.sealed_token``                 the badge id
ID token signing keys    ``signing_keys.sealed_private_key``     the key id (``kid``)
OAuth 1.0a secrets       ``oauth1_secrets.sealed_secret``        the client id
upstream client secrets  ``connections.settings`` (base64)       the connection id
pseudonym keys           ``tenants.sealed_pseudonym_key``        the tenant id
=======================  ======================================  ==========================

A pseudonym key is re-sealed, never regenerated: purged users' pseudonyms and the hashes of
typed usernames are keyed by it and must not change (:mod:`server.domain.pseudonyms`).

To rotate: set the new key as ``ROLLCALL_SECRET_KEY`` and the old one in
``ROLLCALL_OLD_SECRET_KEYS`` (the ring opens values under either), run ``rollcall secrets
rotate`` (:func:`reseal_all`), then drop the old key. :func:`unreadable` is the start-up check.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import select
from sqlalchemy.orm import Session, attributes

from server.db import Badge, Connection, Credential, OAuth1Secret, SigningKey, Tenant
from server.domain import upstream_signin
from server.domain.badges import badge_box
from server.domain.keys import signing_box
from server.domain.oauth1 import consumer_box
from server.domain.pseudonyms import pseudonym_box
from server.domain.secrets import SecretBox
from server.domain.sources import UPSTREAM_PURPOSE


@dataclass
class Sealed:
    """One sealed value: what it is, and how to read and replace it."""

    label: str
    value: bytes
    bound_to: str
    box: SecretBox
    replace: Callable[[bytes], None]


@dataclass
class RotationReport:
    resealed: dict[str, int] = field(default_factory=dict)
    current: int = 0
    unreadable: list[str] = field(default_factory=list)


def sealed_values(
    session: Session, keys: Sequence[str], *, sample: int | None = None
) -> Iterator[Sealed]:
    """Every sealed value in the database (all tenants), with the box of its purpose; with
    ``sample``, only the newest ``sample`` temporary passwords and badges (there may be a
    hundred thousand of them; keys and secrets are few and always all checked)."""
    temporary, badge = SecretBox(keys), badge_box(keys)
    signing, consumer = signing_box(keys), consumer_box(keys)
    upstream = SecretBox(keys, UPSTREAM_PURPOSE)
    sign_in = upstream_signin.box_for(keys)
    credentials = select(Credential).where(Credential.temporary_secret.is_not(None))
    badges = select(Badge)
    if sample is not None:
        credentials = credentials.order_by(Credential.updated_at.desc()).limit(sample)
        badges = badges.order_by(Badge.created_at.desc()).limit(sample)
    for credential in session.scalars(credentials):
        yield Sealed(
            "temporary password",
            credential.temporary_secret or b"",  # the query takes only rows that have one
            credential.user_id,
            temporary,
            _setter(credential, "temporary_secret"),
        )
    for row in session.scalars(badges):
        yield Sealed("badge", row.sealed_token, row.id, badge, _setter(row, "sealed_token"))
    for key in session.scalars(select(SigningKey)):
        yield Sealed(
            "signing key",
            key.sealed_private_key,
            key.kid,
            signing,
            _setter(key, "sealed_private_key"),
        )
    for secret in session.scalars(select(OAuth1Secret)):
        yield Sealed(
            "OAuth 1.0a secret",
            secret.sealed_secret,
            secret.client_id,
            consumer,
            _setter(secret, "sealed_secret"),
        )
    pseudonyms = pseudonym_box(keys)
    for tenant in session.scalars(select(Tenant).where(Tenant.sealed_pseudonym_key.is_not(None))):
        yield Sealed(
            f"pseudonym key of {tenant.name}",
            tenant.sealed_pseudonym_key,  # type: ignore[arg-type]
            tenant.id,
            pseudonyms,
            _setter(tenant, "sealed_pseudonym_key"),
        )
    for connection in session.scalars(select(Connection)):
        for setting, box, label in (
            ("upstream", upstream, "upstream secret"),
            ("sign_in", sign_in, "sign-in provider secret"),
        ):
            stored = (connection.settings or {}).get(setting) or {}
            if stored.get("client_secret_sealed"):
                yield Sealed(
                    f"{label} of {connection.name}",
                    base64.b64decode(stored["client_secret_sealed"]),
                    connection.id,
                    box,
                    _settings_setter(connection, setting),
                )


def reseal_all(session: Session, keys: Sequence[str]) -> RotationReport:
    """Re-seal under ``keys[0]`` every value sealed under an older key of the ring.

    Nothing is written if any value opens with no key of the ring: the report lists them and
    the caller rolls back (``rollcall secrets rotate`` exits 1).
    """
    report = RotationReport()
    for sealed in sealed_values(session, keys):
        try:
            fresh = sealed.box.reseal(sealed.value, sealed.bound_to)
        except InvalidTag:
            report.unreadable.append(f"{sealed.label} {sealed.bound_to}")
            continue
        if fresh is None:
            report.current += 1
        else:
            sealed.replace(fresh)
            report.resealed[sealed.label] = report.resealed.get(sealed.label, 0) + 1
    session.flush()
    return report


def unreadable(session: Session, keys: Sequence[str], *, limit: int = 5) -> list[str]:
    """The first ``limit`` sealed values that no key of the ring opens (the start-up check:
    every key and secret, and the newest temporary passwords and badges)."""
    found: list[str] = []
    for sealed in sealed_values(session, keys, sample=100):
        try:
            sealed.box.open(sealed.value, sealed.bound_to)
        except InvalidTag:
            found.append(f"{sealed.label} {sealed.bound_to}")
            if len(found) >= limit:
                break
    return found


def _setter(row: Any, name: str) -> Callable[[bytes], None]:
    return lambda value: setattr(row, name, value)


def _settings_setter(connection: Connection, key: str) -> Callable[[bytes], None]:
    def replace(value: bytes) -> None:
        settings = dict(connection.settings)
        settings[key] = {
            **settings[key],
            "client_secret_sealed": base64.b64encode(value).decode("ascii"),
        }
        connection.settings = settings
        attributes.flag_modified(connection, "settings")

    return replace
